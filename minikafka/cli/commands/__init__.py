"""The commands: one module each, found by name.

A command module defines ``NAME``, ``HELP``, ``ORDER`` (its place in
``--help``) and ``register(parser)``, which adds its arguments to its own
``argparse`` parser and sets ``func`` — ``func(args) -> int`` runs it.
Adding a command (``mirror``, say) is adding one module here.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def command_modules() -> list[ModuleType]:
    """Every command module of this package, in ``--help`` order."""
    modules = [importlib.import_module(f"{__name__}.{info.name}")
               for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")]
    return sorted((m for m in modules if hasattr(m, "register")), key=lambda m: (m.ORDER, m.NAME))
