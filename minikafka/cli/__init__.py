"""The ``minikafka`` command line: kcat-like tools over a data directory.

Each command is one module of :mod:`minikafka.cli.commands` and a thin
layer over the public API; ``main(argv)`` parses, dispatches and turns
errors into one line on stderr and an exit status (docs/cli.md).
"""

from .main import main

__all__ = ["main"]
