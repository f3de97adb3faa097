"""``minikafka produce TOPIC``: one record per line of stdin (or --file).

Lines are read in large chunks and written with ``Producer.send_many``
(the bulk path), one call per chunk; ``-H`` headers need ``send`` per
record, which is slower. SIGINT/SIGTERM stop the reading and every
complete line read is written; a line too large for a record stops the
command after the lines before it are written (docs/cli.md).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator
from typing import BinaryIO

from ...broker import Broker
from ...errors import InvalidPartitionError, MiniKafkaError, RecordTooLargeError
from ...format import RECORD_PREFIX_SIZE
from ...producer import Producer
from ..common import CliError, UsageError, non_negative, open_broker, stdin_bytes
from ..escapes import unescape
from ..interrupt import StopSignals
from ..progress import Progress

NAME = "produce"
HELP = "write one record per input line"
ORDER = 20
CHUNK = 1 << 20  # bytes read at a time: one send_many call per chunk
MAX_HEADER_NAME = 0xFFFF  # a header name's length is a u16 in the record format


def register(parser: argparse.ArgumentParser, parent: argparse.ArgumentParser) -> None:
    parser.add_argument("topic")
    parser.add_argument("-K", dest="key_sep", metavar="SEP",
                        help="each line is KEY SEP VALUE, split at the first SEP "
                             "(a line without SEP has no key); escapes: \\t \\n \\r \\0 \\\\ \\xHH")
    parser.add_argument("-H", dest="headers", metavar="NAME=VALUE", action="append", default=[],
                        help="add this header to every record (repeatable)")
    parser.add_argument("-p", "--partition", type=non_negative, help="write to this partition")
    parser.add_argument("--file", metavar="PATH", help="read lines from PATH instead of stdin")
    parser.set_defaults(func=run)


def _headers(specs: list[str]) -> list[tuple[str, bytes]]:
    """The ``-H`` headers, checked before any input is read: a name is
    UTF-8 text of at most 65535 bytes (the record format's), a value any bytes."""
    out = []
    for spec in specs:
        name, sep, value = spec.partition("=")
        shown = repr(spec if len(spec) <= 60 else spec[:60] + "...")
        if not sep or not name:
            raise UsageError(f"-H {shown}: use NAME=VALUE")
        try:
            size = len(name.encode())
        except UnicodeEncodeError:
            raise UsageError(f"-H {shown}: the header name is not valid UTF-8 "
                             f"(a name is text; the value may be any bytes)") from None
        if size > MAX_HEADER_NAME:
            raise UsageError(f"-H {shown}: the header name is {size} bytes, "
                             f"over the limit of {MAX_HEADER_NAME}")
        out.append((name, os.fsencode(value)))  # the bytes typed, as -K takes them
    return out


def run(args: argparse.Namespace) -> int:
    headers = _headers(args.headers)
    sep = unescape(args.key_sep, "-K") if args.key_sep is not None else None
    if sep == b"":
        raise UsageError("-K: the separator must not be empty")
    if sep is not None and b"\n" in sep:  # it would never be found: no record would get a key
        raise UsageError("-K: the separator must not contain a newline (each line is one record)")
    with open_broker(args) as broker:
        topic = broker.topic(args.topic)  # fail before reading input if it does not exist
        if args.partition is not None and args.partition >= topic.partitions:  # or a bad -p
            raise InvalidPartitionError(
                f"-p {args.partition}: topic {args.topic!r} has partitions 0..{topic.partitions - 1}")
        if args.file is not None:
            total = os.stat(args.file).st_size
            with open(args.file, "rb") as f:
                return _produce(broker, args, f, sep, headers, Progress(f"produce {args.topic}"), total)
        return _produce(broker, args, stdin_bytes(), sep, headers, None, 0)


def _produce(broker: Broker, args: argparse.Namespace, stream: BinaryIO, sep: bytes | None,
             headers: list[tuple[str, bytes]], progress: Progress | None, total: int) -> int:
    with StopSignals() as stop, _closing(Producer(broker, linger_ms=5 if headers else 0)) as producer:
        read = stop.reader(stream, CHUNK)
        # What the producer takes for one topic's record (framing included).
        limit = producer.config.max_record_bytes
        topic_config = getattr(broker.topic(args.topic), "config", None)  # a Kafka topic has none
        if topic_config is not None:
            limit = min(limit, topic_config.max_record_bytes)
        else:  # kafka://: no more than librdkafka's message.max.bytes takes (KafkaProducer)
            limit = min(limit, getattr(producer._backend, "max_record_bytes", limit))
        try:
            rest, written = _loop(read, producer, limit, args, sep, headers, progress, total)
        finally:
            if progress is not None:
                progress.close()
    if not stop.signum:
        return 0
    torn = f"; {len(rest)} bytes of an unfinished last line were not" if rest else ""
    print(f"minikafka: produce interrupted by {signal.Signals(stop.signum).name}: "
          f"{written} records written{torn}", file=sys.stderr)
    return 128 + stop.signum


@contextlib.contextmanager
def _closing(producer: Producer) -> Iterator[Producer]:
    """The producer, closed after use. After a failure (a write that failed,
    a second signal) the error already says how far the input was written:
    the close waits for nothing more and cannot replace that error (it
    waited ``request_timeout`` again for a cluster that was gone, then its
    timeout was the error, exit status 1 after a second Ctrl-C)."""
    try:
        yield producer
    except BaseException:
        with contextlib.suppress(MiniKafkaError, OSError):
            producer.close(timeout=0)
        raise
    producer.close()


def _loop(read: Callable[[], bytes | None], producer: Producer, limit: int, args: argparse.Namespace,
          sep: bytes | None, headers: list[tuple[str, bytes]], progress: Progress | None,
          total: int) -> tuple[bytes, int]:
    """Read and write until the end or a signal; returns the unfinished
    last line (not written) and the number of records written."""
    topic, partition = args.topic, args.partition
    longest = limit + len(sep or b"")  # a line that can be a record
    done = written = sending = 0
    rest = b""
    try:
        while True:
            chunk = read()
            if chunk:
                done += len(chunk)
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
            elif chunk is None:  # a signal: the complete lines read are all written
                lines = []
            else:  # the end: a last line without \n is a record too
                lines = [rest] if rest else []
                rest = b""
            if lines:
                sending = len(lines)
                try:
                    _send(producer, limit, topic, partition, lines, sep, headers, written)
                except CliError:
                    raise
                except (MiniKafkaError, OSError) as e:  # the topic deleted meanwhile, a full disk...
                    raise CliError(f"{e}; {_how_far(written, len(lines))}") from e
                written += len(lines)
                sending = 0
            if len(rest) > longest:  # too large already: stop before reading all of it
                raise _too_large(written, f"over {len(rest)} bytes", limit)
            if progress is not None:
                progress.update(done, total)
            if not chunk:
                return rest, written
    except (KeyboardInterrupt, SystemExit):  # a second signal: leave at once, saying how far
        what = _how_far(written, sending) if sending else f"{written} records written"
        print(f"minikafka: produce interrupted: {what}", file=sys.stderr)
        raise


def _send(producer: Producer, limit: int, topic: str, partition: int | None, lines: list[bytes],
          sep: bytes | None, headers: list[tuple[str, bytes]], before: int) -> None:
    """Write ``lines`` (the ``before`` lines of the input before them are
    written): all of them, or those before the first that is too large for
    a record, then a CliError naming that line."""
    keys: list[bytes | None] | None = None
    values = lines
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
    try:
        if headers:
            for i, value in enumerate(values):
                try:
                    producer.send(topic, value, None if keys is None else keys[i], partition=partition,
                                  headers=headers)
                except RecordTooLargeError:
                    producer.flush()  # the lines before it are written, as the error says
                    raise _too_large(before + i, f"{len(lines[i])} bytes", limit) from None
            producer.flush()
            return
        producer.send_many(topic, values, keys, partition=partition)
    except RecordTooLargeError:
        # send_many wrote nothing: write the lines before the first too large.
        bad = _write_prefix(lambda a, b: producer.send_many(
            topic, values[a:b], None if keys is None else keys[a:b], partition=partition), len(values))
        raise _too_large(before + bad, f"{len(lines[bad])} bytes", limit) from None


def _how_far(written: int, sending: int) -> str:
    """What a failed send left written, for resuming the input."""
    last = written + sending
    some = (f"line {last} may or may not be" if sending == 1
            else f"of lines {written + 1}..{last} some may be")
    return f"the {written} lines before line {written + 1} were written, {some}, the lines after were not"


def _write_prefix(send: Callable[[int, int], object], n: int) -> int:
    """Given that ``send(0, n)`` failed (writing nothing), write items
    ``0..i-1`` in order and return ``i``, the first item ``send`` rejects
    (a bisection: a failed call writes nothing, a successful one all)."""
    start, end = 0, n  # [0, start) written; the first bad item is in [start, end)
    while end - start > 1:
        mid = (start + end) // 2
        try:
            send(start, mid)
            start = mid
        except RecordTooLargeError:
            end = mid
    return start


def _too_large(index: int, size: str, limit: int) -> CliError:
    return CliError(f"line {index + 1} ({size}) is too large for one record: its key, value and "
                    f"headers with {RECORD_PREFIX_SIZE} bytes of record framing may take at most "
                    f"{limit} bytes (max_record_bytes, or what one segment of the topic holds, or on "
                    f"kafka:// what librdkafka's message.max.bytes takes); "
                    f"the {index} lines before it were written, it and the lines after it were not")
