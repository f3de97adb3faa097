"""What every example does around its ``main``: take the data directory
from the command line (a temporary one if none is given), and turn the
errors a user can cause into one line and an exit status — a directory
that is not minikafka's or an unreachable URL exits 1, Ctrl-C exits 130 —
instead of a traceback. The examples import it from their own folder."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import minikafka


def parser_for(doc: str | None) -> argparse.ArgumentParser:
    """A parser described by the first paragraph of the example's docstring."""
    return argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])


@contextmanager
def reported_errors(parser: argparse.ArgumentParser) -> Iterator[None]:
    try:
        yield
    except minikafka.MiniKafkaError as e:
        parser.exit(1, f"{parser.prog}: error: {e}\n")
    except KeyboardInterrupt:  # the examples' with blocks have closed everything by now
        print("interrupted", file=sys.stderr)
        sys.exit(130)


def run_in_data_dir(main: Callable[[str], object], doc: str | None, prefix: str) -> None:
    """``main(data_dir)`` with the directory given on the command line, or
    a temporary one (named ``prefix...``) removed afterwards."""
    parser = parser_for(doc)
    parser.add_argument("data_dir", nargs="?",
                        help="data directory, created if needed (default: a temporary one)")
    args = parser.parse_args()
    if args.data_dir is not None and os.path.exists(args.data_dir) and not os.path.isdir(args.data_dir):
        parser.error(f"{args.data_dir!r} is not a directory")
    with reported_errors(parser):
        if args.data_dir is not None:
            main(args.data_dir)
        else:
            with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
                main(tmp)
