"""``minikafka mirror SOURCE DEST --topic T [-g GROUP]``: the command line of
:func:`minikafka.mirror`. ``main(argv)`` returns the exit status (0 done,
1 runtime error, 2 usage error, 130 after Ctrl-C), so the CLI can register it as a subcommand.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import MiniKafkaError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The mirror command's arguments, for a parser of its own or a CLI subparser."""
    parser.add_argument("source", metavar="SOURCE",
                        help="data directory, file:// or kafka://host:port[?config] to copy from")
    parser.add_argument("destination", metavar="DEST", help="where to copy to (same forms)")
    parser.add_argument("-t", "--topic", required=True, help="topic to copy")
    parser.add_argument("-g", "--group", default=None,
                        help="source-side group that records the progress (default "
                             "minikafka-mirror.TOPIC.<hash of DEST and its topic>)")
    parser.add_argument("--to-topic", default=None, help="destination topic (default: same name)")
    parser.add_argument("-f", "--follow", action="store_true",
                        help="keep copying new records until interrupted")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress line")


def copy(args: argparse.Namespace) -> int:
    """Run a parsed mirror command; prints a summary line on stdout. Errors
    and Ctrl-C propagate (the CLI turns them into its exit statuses)."""
    from .mirror import mirror

    try:
        result = mirror(args.source, args.destination, args.topic, group_id=args.group,
                        destination_topic=args.to_topic, follow=args.follow,
                        progress=False if args.quiet else None)
    except KeyboardInterrupt as e:
        lost = [n for n in getattr(e, "__notes__", ()) if "not committed" in n]
        print(f"mirror: interrupted; {lost[0] if lost else 'progress was committed'}", file=sys.stderr)
        raise
    print(f"copied {result.records} records of {result.topic} in {result.seconds:.1f} s "
          f"(group {result.group_id})")
    return 0


def run(args: argparse.Namespace) -> int:
    """:func:`copy` with the exit statuses of a program of its own."""
    try:
        return copy(args)
    except KeyboardInterrupt:
        return 130  # the CLI's status for Ctrl-C
    except (MiniKafkaError, OSError) as e:
        print(f"minikafka mirror: {e}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="minikafka mirror",
                                     description="Copy a topic between two brokers, keeping "
                                                 "partitions, keys, values, headers, timestamps.")
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: 2 on usage errors, 0 for --help
        return int(e.code or 0)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
