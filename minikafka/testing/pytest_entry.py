"""What the ``pytest11`` entry point ``minikafka`` loads: the fixtures of
:mod:`minikafka.testing.plugin`, re-exported.

A module of its own because pytest registers a plugin module once, under
one name: were the entry point the plugin module itself, a project that
also names it (``-p minikafka.testing.plugin``, ``pytest_plugins = [...]``
in a conftest.py) would stop pytest with "Plugin already registered under a
different name". As two modules, both register and offer the same fixtures.
"""

from __future__ import annotations

from .plugin import minikafka_broker, minikafka_broker_options

__all__ = ["minikafka_broker", "minikafka_broker_options"]
