"""``minikafka mirror SOURCE DEST --topic T [-g GROUP]``: copy a topic
between two brokers (a directory and a cluster, either way) with
:func:`minikafka.mirror`; exit 130 on Ctrl-C, progress committed."""

from __future__ import annotations

import argparse

from ...kafka import mirror_cli

NAME = "mirror"
HELP = "copy a topic between two brokers (directory or kafka://), keeping every record's fields"
ORDER = 70


def register(parser: argparse.ArgumentParser, parent: argparse.ArgumentParser) -> None:
    mirror_cli.add_arguments(parser)
    parser.set_defaults(func=mirror_cli.copy)  # main(): one error line, 130 on Ctrl-C
