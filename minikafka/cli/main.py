"""Parsing, dispatch, and the error rules: one line on stderr and exit
status 1 for a runtime error, 2 for a usage error, 130 on Ctrl-C; a
traceback only with ``--debug``."""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import sys
from collections.abc import Iterator, Sequence

from .. import __version__
from ..errors import MiniKafkaError
from .commands import command_modules
from .common import ENV_DATA, UsageError

PROG = "minikafka"


def _options(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("-d", "--data", metavar="DIR", default=default,
                        help=f"the data directory (default: ${ENV_DATA})")
    parser.add_argument("--debug", action="store_true", default=default,
                        help="show a traceback on errors")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Topics, records and consumer groups of a minikafka data directory.",
        epilog="Run 'minikafka COMMAND --help' for a command's options. Documentation: docs/cli.md",
    )
    _options(parser, None)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    # The same options after the command name too ("minikafka topics list -d DIR");
    # SUPPRESS keeps a value given before the command.
    parent = argparse.ArgumentParser(add_help=False)
    _options(parent, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in command_modules():
        cmd = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP, parents=[parent])
        cmd.set_defaults(usage_of=cmd)  # a usage error shows this command's usage
        module.register(cmd, parent)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    except KeyboardInterrupt:  # Ctrl-C while starting up
        return 130
    with _warnings_as_lines(), _utf8_stdout():
        return _run(parser, args)


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        status: int = args.func(args)
        if sys.stdout is not None:  # None: started with stdout closed (>&-)
            sys.stdout.flush()  # here, so a closed pipe is caught below and not at exit
        return status
    except UsageError as e:
        getattr(args, "usage_of", parser).print_usage(sys.stderr)
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _broken_pipe()
    except (MiniKafkaError, OSError, ValueError) as e:
        if args.debug:
            raise
        message = " ".join(str(e).split()) or type(e).__name__
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1
    except Exception as e:  # a bug: still one line, the traceback on request
        if args.debug:
            raise
        message = " ".join(str(e).split())
        print(f"{PROG}: error: {type(e).__name__}: {message} (--debug shows the traceback)",
              file=sys.stderr)
        return 1


class _Lines(logging.Handler):
    """The library's log records as ``minikafka: warning: ...`` lines on
    the stderr of the moment (tests swap it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # librdkafka's own lines (kafka/logs.py): about 20 a second while a
        # cluster is unreachable; the error line says the last of them.
        return not getattr(record, "librdkafka", False)

    def emit(self, record: logging.LogRecord) -> None:
        text = " ".join(record.getMessage().split())
        print(f"{PROG}: {record.levelname.lower()}: {text}", file=sys.stderr)


@contextlib.contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """Unless logging is configured (an embedding program), warnings of
    the ``minikafka`` logger are one line each, named as errors are."""
    log = logging.getLogger("minikafka")
    if log.handlers or logging.getLogger().handlers:
        yield
        return
    handler = _Lines(logging.WARNING)
    log.addHandler(handler)
    try:
        yield
    finally:
        log.removeHandler(handler)


@contextlib.contextmanager
def _utf8_stdout() -> Iterator[None]:
    """Text on stdout as UTF-8 whatever the locale (records are written as
    bytes anyway), and names that are not UTF-8 (file names, ``dump``'s and
    ``check``'s paths) as their bytes: never an encoding error halfway
    through a listing. The stream is put back as it was after the command."""
    out = sys.stdout
    if not isinstance(out, io.TextIOWrapper):
        yield
        return
    saved = out.encoding, out.errors
    out.reconfigure(encoding="utf-8", errors="surrogateescape")
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: _broken_pipe said so
            out.reconfigure(encoding=saved[0], errors=saved[1])


def _broken_pipe() -> int:
    """The reader went away (``| head``): exit quietly. Point stdout at
    /dev/null so the interpreter's final flush does not complain again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141  # as a process killed by SIGPIPE, so `set -o pipefail` scripts notice
