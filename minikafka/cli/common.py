"""What the commands share: the data directory, errors, argument types."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from ..broker import Broker
from ..errors import MiniKafkaError

ENV_DATA = "MINIKAFKA_DATA"


class CliError(MiniKafkaError):
    """A runtime error of a command: printed as one line, exit status 1."""


class UsageError(Exception):
    """A bad combination of arguments: printed with the usage, exit status 2."""


def add_action(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help: str,
               parent: argparse.ArgumentParser, func: Callable[[argparse.Namespace], int],
               ) -> argparse.ArgumentParser:
    """A sub-command (``topics create``, ``groups reset``) running ``func``;
    a usage error in it shows its own usage."""
    p = sub.add_parser(name, help=help, description=help, parents=[parent])
    p.set_defaults(func=func, usage_of=p)
    return p


KAFKA_SCHEMES = ("kafka://", "kafka+ssl://")


def kafka_url(args: argparse.Namespace) -> str | None:
    """The ``-d`` (or ``$MINIKAFKA_DATA``) value when it is a ``kafka://`` URL."""
    value = getattr(args, "data", None) or os.environ.get(ENV_DATA)
    return value if isinstance(value, str) and value.startswith(KAFKA_SCHEMES) else None


def data_dir(args: argparse.Namespace) -> Path:
    url = kafka_url(args)
    if url is not None:  # as a path it would name a local directory "kafka:"
        raise CliError(f"{args.command} works on a data directory only, not on a Kafka cluster ({url})")
    path = getattr(args, "data", None)
    if path == "":  # -d "$UNSET": not the environment's directory instead
        raise UsageError("-d: the data directory is an empty string")
    path = path or os.environ.get(ENV_DATA)
    if not path:
        raise UsageError(f"no data directory: give -d DIR or set {ENV_DATA}")
    return Path(path)


def open_broker(args: argparse.Namespace, create: bool = False) -> Any:
    """The Broker of the data directory; it must exist unless ``create``
    (a typo must not make a new, empty directory); a ``kafka://`` URL opens
    that cluster (``minikafka.connect``)."""
    url = kafka_url(args)
    if url is not None:
        from ..broker import connect

        return connect(url)
    path = data_dir(args)
    if not create and not (path / "minikafka.json").exists():
        if not path.exists():
            raise CliError(f"data directory {str(path)!r} does not exist "
                           f"(create a topic in it first: minikafka -d {path} topics create NAME)")
        raise CliError(f"{str(path)!r} is not a minikafka data directory (no minikafka.json)")
    return Broker(path)


def stdin_bytes() -> BinaryIO:
    """Standard input as bytes; a CliError if the process has none (``<&-``)."""
    if sys.stdin is None:
        raise CliError("standard input is closed (give --file PATH to read a file)")
    return sys.stdin.buffer


def stdout_bytes() -> BinaryIO:
    """Standard output as bytes; a CliError if the process has none (``>&-``)."""
    if sys.stdout is None:
        raise CliError("standard output is closed: nowhere to write the records")
    return sys.stdout.buffer


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def non_negative(text: str) -> int:
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive(text: str) -> int:
    value = _integer(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def optional_ms(text: str) -> int | None:
    """A retention value: a non-negative int, or ``none`` for no limit."""
    if text.lower() in ("none", "-1", "unlimited"):
        return None
    try:
        return non_negative(text)
    except argparse.ArgumentTypeError as e:
        raise argparse.ArgumentTypeError(f"{e} (or none for no limit)") from None


def print_table(rows: Sequence[tuple[str, ...]]) -> None:
    """Columns padded to their widest cell, as the Kafka tools print."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
