"""``minikafka produce TOPIC``: one record per line of stdin (or --file).

Lines are read in large chunks and written with ``Producer.send_many``
(the bulk path), one call per chunk; ``-H`` headers need ``send`` per
record, which is slower.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import BinaryIO

from ...broker import Broker
from ...producer import Producer
from ..common import UsageError, non_negative, open_broker
from ..escapes import unescape
from ..progress import Progress

NAME = "produce"
HELP = "write one record per input line"
ORDER = 20
CHUNK = 1 << 20  # bytes read at a time: one send_many call per chunk


def register(parser: argparse.ArgumentParser, parent: argparse.ArgumentParser) -> None:
    parser.add_argument("topic")
    parser.add_argument("-K", dest="key_sep", metavar="SEP",
                        help="each line is KEY SEP VALUE, split at the first SEP "
                             "(a line without SEP has no key)")
    parser.add_argument("-H", dest="headers", metavar="NAME=VALUE", action="append", default=[],
                        help="add this header to every record (repeatable)")
    parser.add_argument("-p", "--partition", type=non_negative, help="write to this partition")
    parser.add_argument("--file", metavar="PATH", help="read lines from PATH instead of stdin")
    parser.set_defaults(func=run)


def _headers(specs: list[str]) -> list[tuple[str, bytes]]:
    out = []
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep or not name:
            raise UsageError(f"-H {spec!r}: use NAME=VALUE")
        out.append((name, os.fsencode(value)))  # the bytes typed, as -K takes them
    return out


def run(args: argparse.Namespace) -> int:
    headers = _headers(args.headers)
    sep = unescape(args.key_sep, "-K") if args.key_sep is not None else None
    if sep == b"":
        raise UsageError("-K: the separator must not be empty")
    with open_broker(args) as broker:
        broker.topic(args.topic)  # fail before reading input if it does not exist
        if args.file is not None:
            total = os.stat(args.file).st_size
            with open(args.file, "rb") as f:
                return _produce(broker, args, f, sep, headers, Progress(f"produce {args.topic}"), total)
        return _produce(broker, args, sys.stdin.buffer, sep, headers, None, 0)


def _produce(broker: Broker, args: argparse.Namespace, stream: BinaryIO, sep: bytes | None,
             headers: list[tuple[str, bytes]], progress: Progress | None, total: int) -> int:
    topic, partition = args.topic, args.partition
    done = 0
    rest = b""
    read = getattr(stream, "read1", stream.read)  # read1: what is there now (interactive input)
    with Producer(broker, linger_ms=5 if headers else 0) as producer:
        while True:
            chunk = read(CHUNK)
            if not chunk:
                lines = [rest] if rest else []
                rest = b""
            else:
                done += len(chunk)
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
            if lines:
                _send(producer, topic, partition, lines, sep, headers)
            if progress is not None:
                progress.update(done, total)
            if not chunk:
                break
        if progress is not None:
            progress.close()
    return 0


def _send(producer: Producer, topic: str, partition: int | None, lines: list[bytes], sep: bytes | None,
          headers: list[tuple[str, bytes]]) -> None:
    keys: list[bytes | None] | None = None
    if sep is not None:
        keys, values = [], []
        for line in lines:
            k, s, v = line.partition(sep)
            if s:
                keys.append(k)
                values.append(v)
            else:
                keys.append(None)
                values.append(line)
        lines = values
    if headers:
        for i, value in enumerate(lines):
            producer.send(topic, value, None if keys is None else keys[i], partition=partition,
                          headers=headers)
        producer.flush()
    else:
        producer.send_many(topic, lines, keys, partition=partition)
