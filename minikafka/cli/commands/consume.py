"""``minikafka consume TOPIC``: print records, following the log.

Output goes out one poll at a time (up to ``MAX_POLL`` records and about
``POLL_BYTES``, one write, never a flush per record); with ``-g`` the offsets committed are those of
records whose bytes were written (into a pipe whose reader went away: that
it read, :mod:`..pipe_output`), on exit (Ctrl-C, SIGTERM, ``-c``/``-e``, a
closed pipe), every second, and before a rebalance takes a partition away.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from itertools import accumulate
from typing import NamedTuple

from ...consumer import Consumer
from ...errors import CommitFailedError, InvalidPartitionError
from ...records import Record, TopicPartition
from ...send_front import MAX_TIMESTAMP_MS
from ..common import UsageError, non_negative, open_broker, stdout_bytes
from ..output import FormatError, compile_format, json_line
from ..pipe_output import PipeOutput

NAME = "consume"
HELP = "print records of a topic (follows the log; -e stops at the end)"
ORDER = 30
MAX_POLL = 5000
POLL_BYTES = 16 << 20  # about this much output per poll: 5000 records of 1 MiB would be 5 GB
FIRST_POLL = 16  # records in the first poll, before their size is known
COMMIT_EVERY = 1.0  # seconds
_OFFSET = re.compile(r"beginning|end|-?\d+|@\d+")


def register(parser: argparse.ArgumentParser, parent: argparse.ArgumentParser) -> None:
    parser.add_argument("topic")
    parser.add_argument("-o", "--offset", default="beginning", metavar="OFFSET",
                        help="where to start: beginning (default), end, N (that offset), "
                             "-N (N records before the end of each partition), @TIMESTAMP_MS; "
                             "with -g only beginning/end, for partitions without a committed offset")
    parser.add_argument("-c", "--count", type=non_negative, help="exit after COUNT records")
    parser.add_argument("-e", "--exit", action="store_true", help="exit at the end of every partition")
    parser.add_argument("-g", "--group", metavar="GROUP", help="join this consumer group and commit")
    parser.add_argument("-p", "--partition", type=non_negative, help="read only this partition")
    parser.add_argument("-f", "--format", metavar="FORMAT",
                        help="kcat tokens: %%t topic, %%p partition, %%o offset, %%k key, %%s value, "
                             "%%T timestamp, %%h headers, %%K/%%S key/value length; "
                             "\\n \\t \\r \\0 \\\\ \\xHH")
    parser.add_argument("-J", "--json", action="store_true", help="one JSON object per record")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not _OFFSET.fullmatch(args.offset):
        raise UsageError(f"-o {args.offset!r}: use beginning, end, N, -N or @TIMESTAMP_MS")
    if args.offset.startswith("@") and int(args.offset[1:]) > MAX_TIMESTAMP_MS:
        raise UsageError(f"-o {args.offset}: a timestamp is at most 2**63 - 1 (ms since the epoch)")
    if args.group is not None and args.offset not in ("beginning", "end"):
        raise UsageError("-o with -g: only beginning or end (where a partition without a committed "
                         "offset starts); use 'groups reset' to move a group")
    if args.group is not None and args.partition is not None:
        raise UsageError("-p and -g: the group assigns the partitions")
    if args.json and args.format is not None:
        raise UsageError("-J and -f: choose one")
    try:
        fmt = json_line if args.json else compile_format("%s\n" if args.format is None else args.format)
    except FormatError as e:
        raise UsageError(str(e)) from None
    with open_broker(args) as broker:
        topic = broker.topic(args.topic)  # -c 0 too: a missing topic is an error
        if args.count == 0:
            return 0
        reset = "latest" if args.offset == "end" else "earliest"
        printed = _Printed()
        consumer = Consumer(broker, group_id=args.group, auto_offset_reset=reset, enable_auto_commit=False,
                            on_revoke=printed.revoked if args.group is not None else None)
        printed.consumer = consumer
        # From here, not only in the loop: joining a group can wait for its lock.
        previous = signal.signal(signal.SIGTERM, _terminate)
        try:
            if args.group is not None:
                consumer.subscribe([args.topic])
            else:
                if args.partition is not None and args.partition >= topic.partitions:
                    raise InvalidPartitionError(
                        f"-p {args.partition}: topic {args.topic!r} has partitions 0..{topic.partitions - 1}")
                parts = [args.partition] if args.partition is not None else range(topic.partitions)
                tps = [TopicPartition(args.topic, p) for p in parts]
                consumer.assign(tps)
                _position(consumer, tps, args.offset)
            return _loop(consumer, printed, args, fmt)
        finally:
            signal.signal(signal.SIGTERM, previous)
            consumer.close()


def _position(consumer: Consumer, tps: list[TopicPartition], spec: str) -> None:
    if spec == "beginning":
        consumer.seek_to_beginning(*tps)
    elif spec == "end":
        consumer.seek_to_end(*tps)
    elif spec.startswith("@"):
        found = consumer.offsets_for_times({tp: int(spec[1:]) for tp in tps})
        for tp, offset in found.items():
            if offset is None:
                consumer.seek_to_end(tp)
            else:
                consumer.seek(tp, offset)
    elif spec.startswith("-"):
        n = int(spec[1:])
        begin, end = consumer.beginning_offsets(tps), consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, max(begin[tp], end[tp] - n))
    else:
        # Past the end means from the end: seeking there unchecked made the
        # consumer reset the out-of-range position to the beginning.
        end = consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, min(int(spec), end[tp]))


def _loop(consumer: Consumer, printed: _Printed, args: argparse.Namespace,
          fmt: Callable[[Record], bytes]) -> int:
    out = PipeOutput(stdout_bytes())
    recent: deque[_Written] = deque()  # the writes a pipe may still hold unread
    group = args.group is not None
    remaining = args.count
    batch = FIRST_POLL
    next_commit = time.monotonic() + COMMIT_EVERY
    dirty = False
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        while True:
            records: list[Record] = consumer.poll(timeout=0.1 if args.exit else 0.5, max_records=batch)
            if records:
                if remaining is not None:
                    records = records[:remaining]
                    remaining -= len(records)
                parts = [fmt(r) for r in records]
                size = sum(map(len, parts)) // len(parts) + 1  # the average record's output
                batch = max(1, min(MAX_POLL, POLL_BYTES // size))
                recent.append(_Written(out.written, list(accumulate(map(len, parts))), records))
                try:
                    out.write(b"".join(parts))
                except BrokenPipeError:  # commit only what the reader took
                    printed.rewind(recent, out.read_upto())
                    raise
                printed.wrote(records)
                while recent and recent[0].start + recent[0].ends[-1] <= out.written - out.capacity:
                    recent.popleft()  # read for sure
                if remaining == 0:
                    return 0
                dirty = True
            elif args.exit and consumer.at_end():  # not while a group hands partitions over
                return 0
            if dirty and group and time.monotonic() >= next_commit:
                printed.commit()
                dirty = False
                next_commit = time.monotonic() + COMMIT_EVERY
    except KeyboardInterrupt:
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        if group:
            printed.commit()


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM: leave like Ctrl-C (commit, close), status 143."""
    raise SystemExit(128 + signum)


class _Written(NamedTuple):
    """One write of records: where it starts in the output, and where each
    record's bytes end, from that start."""

    start: int
    ends: list[int]
    records: list[Record]


class _Printed:
    """Per partition, the offset after the last record written to stdout,
    and its commits: of a partition the group takes away, before it goes
    (``on_revoke``, so its next owner does not print those records again);
    of the others, every second and on exit. A commit that names a
    partition this member no longer owns stores nothing, so only owned
    ones are named. ``on_revoke`` may run in the heartbeat thread (a
    ``max_poll_interval`` expiry): the lock guards the dict, never a call
    into the consumer (which holds its own lock while calling us)."""

    def __init__(self) -> None:
        self.consumer: Consumer | None = None
        self._next: dict[TopicPartition, int] = {}
        self._lock = threading.Lock()

    def wrote(self, records: list[Record]) -> None:
        with self._lock:
            for r in records:
                self._next[TopicPartition(r.topic, r.partition)] = r.offset + 1

    def rewind(self, recent: deque[_Written], upto: int) -> None:
        """The reader took ``upto`` bytes of the output and went away: the
        offsets after what it took, of every partition in ``recent``."""
        with self._lock:
            unread: set[TopicPartition] = set()
            for w in recent:
                for end, r in zip(w.ends, w.records, strict=True):
                    tp = TopicPartition(r.topic, r.partition)
                    if tp not in unread:
                        if w.start + end > upto:
                            unread.add(tp)
                        self._next[tp] = r.offset + (0 if tp in unread else 1)

    def revoked(self, partitions: set[TopicPartition]) -> None:
        with self._lock:
            offsets = {tp: self._next.pop(tp) for tp in partitions if tp in self._next}
        self._commit(offsets)

    def commit(self) -> None:
        assert self.consumer is not None
        owned = self.consumer.assignment()
        with self._lock:
            offsets = {tp: o for tp, o in self._next.items() if tp in owned}
        self._commit(offsets)

    def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        if not offsets or self.consumer is None:
            return
        try:
            self.consumer.commit(offsets)
        except CommitFailedError as e:  # taken away without on_revoke: nothing to do but say so
            print(f"minikafka: warning: {e}", file=sys.stderr)
