"""``python -m minikafka``: the command line (see docs/cli.md)."""

from .cli import main

raise SystemExit(main())
