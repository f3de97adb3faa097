"""``mirror``: copy a topic between any two brokers ``connect`` accepts.

Written against the public Producer/Consumer API only, so it works for a
directory and a cluster either way. Every record keeps its partition, key,
value, headers and timestamp. Progress is committed (as the group
``group_id`` on the source; by default one per topic and destination,
:func:`default_group`) after each chunk the destination acknowledged,
and at least every ``COMMIT_INTERVAL``, only up to the last record it
acknowledged, so a second run continues where the first stopped: nothing
is lost, and after a crash at most the last chunk or second (not yet
committed) is copied again (at-least-once). While it
runs, a mirror holds its group (mirror_hold.py): a second mirror of the
same group is refused.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any, TextIO
from urllib.parse import unquote, urlparse

import attrs

from ..errors import InvalidArgumentError, TimeoutError, TopicNotFoundError
from ..futures import RecordFuture
from ..records import TopicPartition
from .mirror_hold import FREE, hold_group

#: Records copied between two flush + commit steps.
CHUNK = 5000
#: Seconds at most between a copy and its commit (a ``--follow`` mirror of a
#: trickle never fills a chunk: killed, it would copy hours again).
COMMIT_INTERVAL = 1.0
PROGRESS_EVERY = 0.25  # seconds between progress-line updates


@attrs.frozen
class MirrorResult:
    """What one ``mirror`` call copied."""

    #: the source topic
    topic: str
    #: the source-side group that holds the progress
    group_id: str
    #: records copied in this run
    records: int
    #: partition -> records copied from it in this run
    partitions: dict[int, int] = attrs.field(hash=False)
    #: wall time of the run
    seconds: float


def default_group(topic: str, destination: str, destination_topic: str | None = None) -> str:
    """The source-side group a mirror of ``topic`` to ``destination`` (its
    :func:`destination_identity`) commits its progress as:
    ``minikafka-mirror.<topic>.<10 hex digits>``, the digits a hash of the
    destination and its topic, so each destination has its own progress."""
    target = topic if destination_topic is None else destination_topic
    digest = hashlib.sha256(f"{destination}\0{target}".encode()).hexdigest()[:10]
    return f"minikafka-mirror.{topic}.{digest}"


def _legacy_group(topic: str) -> str:
    """The default group before it named the destination: one per topic,
    shared by every destination."""
    return f"minikafka-mirror.{topic}"


def destination_identity(broker: Any) -> str:
    """What names a destination in :func:`default_group`: a data
    directory's resolved path; a cluster's id (from its metadata; the
    advertised broker addresses if it reports none)."""
    path: str | os.PathLike[str] | None = getattr(broker, "path", None)
    if path is not None:
        return "dir:" + os.path.realpath(path)
    identity = getattr(broker, "identity", None)
    if callable(identity):
        cluster: str | None
        cluster, addresses = identity()
        return "kafka:" + (cluster or ",".join(sorted(addresses)))
    return f"{type(broker).__name__}:{getattr(broker, 'url', repr(broker))}"


def _check_legacy_progress(src: Any, dst: Any, topic: str, target: str, group: str) -> None:
    """Refuse to guess which destination an earlier minikafka's mirror
    (default group one per topic, :func:`_legacy_group`) copied to.

    When the new default ``group`` has no progress for ``topic``, the old
    group has some, and the destination topic already holds records, this
    may be the destination the old group copied to (continue from it) or
    another one (copy everything): carrying its offsets over on a wrong
    guess would never copy the records before them. An empty or missing
    destination topic is a new destination and gets everything.
    """
    if any(tp.topic == topic for tp in src.committed_offsets(group)):
        return
    old = _legacy_group(topic)
    if not any(tp.topic == topic for tp in src.committed_offsets(old)):
        return
    try:
        held = any(dst.topic(target).end_offsets().values())
    except TopicNotFoundError:
        return
    if held:
        raise InvalidArgumentError(
            f"an earlier minikafka's mirror of {topic!r} committed its progress as {old!r}, and "
            f"destination topic {target!r} already holds records: if that mirror copied to this "
            f"destination, pass group_id={old!r} / -g {old} to continue from it; otherwise pass "
            f"another group_id / -g to copy everything")


def _local_path(target: str | os.PathLike[str]) -> str | None:
    """The directory a path or ``file://`` URL names (None for other URLs)."""
    if isinstance(target, os.PathLike):
        return os.fspath(target)
    parsed = urlparse(target)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    return target if len(parsed.scheme) <= 1 else None


def _open(target: Any, stack: ExitStack, *, must_exist: bool = False) -> Any:
    from ..broker import connect

    if isinstance(target, (str, os.PathLike)):
        path = _local_path(target) if must_exist else None
        if path is not None and not os.path.exists(os.path.join(path, "minikafka.json")):
            # A typo must not become a new, empty data directory.
            what = "does not exist" if not os.path.exists(path) else "is not a minikafka data directory"
            raise InvalidArgumentError(f"source {str(target)!r} {what}: nothing to mirror")
        return stack.enter_context(connect(target))
    return target


def _same_broker(a: Any, b: Any) -> bool:
    """Whether two opened brokers are one data directory or one cluster."""
    pa: str | os.PathLike[str] | None = getattr(a, "path", None)
    pb: str | os.PathLike[str] | None = getattr(b, "path", None)
    if pa is not None and pb is not None:
        return os.path.realpath(pa) == os.path.realpath(pb)
    ia, ib = getattr(a, "identity", None), getattr(b, "identity", None)
    if callable(ia) and callable(ib):
        (ca, na), (cb, nb) = ia(), ib()
        return bool(ca == cb and na & nb)
    return False


def _timeout(broker: Any) -> float:
    """The broker's ``request_timeout`` (seconds): what a mirror waits for it."""
    options = getattr(broker, "options", None)
    value: Any = getattr(options, "request_timeout", None) or getattr(broker, "request_timeout", 30.0)
    return float(value)


def _progress_printer(stream: TextIO, topic: str, total: int) -> Callable[[int, bool], None]:
    last = [0.0]

    def show(copied: int, final: bool) -> None:
        now = time.monotonic()
        if not final and now - last[0] < PROGRESS_EVERY:
            return
        last[0] = now
        share = f" ({100 * copied // total}%)" if total else ""
        stream.write(f"\rmirror {topic}: {copied:,}/{total:,} records{share}")
        if final:
            stream.write("\n")
        stream.flush()

    return show


class _Chunk:
    """The records sent since the last commit, and what may be committed.

    ``marks[tp]`` is the offset to commit once everything sent is
    acknowledged: past the last record sent, or the consumer's position
    once a whole poll batch was sent (it also skips offsets that hold no
    record, such as a Kafka transaction's commit marker). A record whose
    send raised, or that was polled but never sent (an interrupt), is past
    every mark, so it is never committed uncopied.
    """

    def __init__(self, marks: dict[TopicPartition, int]) -> None:
        self.marks = marks
        self.sent: list[tuple[RecordFuture, TopicPartition, int]] = []

    def __len__(self) -> int:
        return len(self.sent)

    def add(self, future: RecordFuture, tp: TopicPartition, offset: int) -> None:
        self.sent.append((future, tp, offset))
        self.marks[tp] = offset + 1

    def settle(self) -> tuple[dict[TopicPartition, int], BaseException | None]:
        """After a flush: the offsets to commit (a partition stops at its
        first record the destination did not acknowledge) and that error."""
        offsets = dict(self.marks)
        error: BaseException | None = None
        failed: set[TopicPartition] = set()
        for future, tp, offset in self.sent:
            if tp in failed:
                continue
            problem = future.exception(0) if future.done() else TimeoutError("not acknowledged")
            if problem is not None:
                failed.add(tp)
                offsets[tp] = offset
                if error is None:
                    error = problem
                    error.add_note(f"mirror: {tp.topic}/{tp.partition} offset {offset} was not copied; "
                                   f"progress is committed up to it")
        self.sent.clear()
        self.marks.update({tp: offsets[tp] for tp in failed})
        return offsets, error


def mirror(source: Any, destination: Any, topic: str, *, group_id: str | None = None,
           destination_topic: str | None = None, follow: bool = False, chunk: int = CHUNK,
           progress: bool | TextIO | None = None, poll_timeout: float = 0.5) -> MirrorResult:
    """Copy ``topic`` from ``source`` to ``destination`` (brokers, paths or URLs).

    The destination topic (``destination_topic``, default the same name) is
    created with the source's partition count if it does not exist; one
    with fewer partitions is refused, and so is the source topic itself
    (same broker, same name), a group that has live members or that
    another running mirror holds, and (default group only) a non-empty
    destination when only an earlier minikafka's default group
    ``minikafka-mirror.<topic>`` has progress: pass that group to continue
    from it, or another to copy everything. Copies
    what the source holds when the call starts (``follow=True``: keeps
    copying until interrupted); ``TimeoutError`` once the source has sent
    nothing for its ``request_timeout`` while records are still due.
    Progress is committed every ``chunk`` records or second, whichever
    comes first, after the destination acknowledged them. ``progress``: a stream for a progress line, True
    for stderr, None for stderr when it is a terminal.
    """
    from ..consumer import Consumer
    from ..producer import Producer

    if not isinstance(topic, str):
        raise TypeError(f"topic must be a str, not {type(topic).__name__}")
    if not isinstance(chunk, int) or isinstance(chunk, bool):
        raise TypeError(f"chunk must be an int, not {type(chunk).__name__}")
    if chunk <= 0:
        raise InvalidArgumentError(f"chunk must be > 0, got {chunk}")
    if group_id is not None and not isinstance(group_id, str):
        raise TypeError(f"group_id must be a str or None, not {type(group_id).__name__}")
    target = topic if destination_topic is None else destination_topic
    stream: TextIO | None
    if progress is None:
        stream = sys.stderr if sys.stderr is not None and sys.stderr.isatty() else None
    elif progress is True:
        stream = sys.stderr
    else:
        stream = progress or None
    started = time.monotonic()
    with ExitStack() as stack:
        src = _open(source, stack, must_exist=True)
        partitions = src.topic(topic).partitions
        dst = _open(destination, stack)
        if target == topic and _same_broker(src, dst):
            raise InvalidArgumentError(
                f"source and destination are the same topic {topic!r} of one broker: a mirror "
                f"would copy it onto itself (name another destination_topic / --to-topic)")
        group = default_group(topic, destination_identity(dst), target) if group_id is None else group_id
        stack.enter_context(hold_group(src, group, topic, partitions))
        members = len(src.describe_group(group).members)
        state = src.group_state(group) if not members and hasattr(src, "group_state") else "empty"
        if members or state not in FREE:  # Tansu 0.6 lists no members, but the group's state
            who = f"{members} live member(s)" if members else f"members (it is {state})"
            raise InvalidArgumentError(
                f"group {group!r} has {who}: "
                f"a mirror's progress needs a group of its own (its commits would move theirs); "
                f"choose another group_id / -g")
        if group_id is None:
            _check_legacy_progress(src, dst, topic, target, group)
        try:
            have = dst.topic(target).partitions
        except TopicNotFoundError:
            have = dst.create_topic(target, partitions=partitions).partitions
        if have < partitions:
            raise InvalidArgumentError(
                f"destination topic {target!r} has {have} partitions, fewer than the "
                f"{partitions} of {topic!r}: records could not keep their partition")
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer = stack.enter_context(Consumer(src, group_id=group, enable_auto_commit=False,
                                                auto_offset_reset="earliest"))
        consumer.assign(tps)
        producer = stack.enter_context(Producer(dst))
        ends = consumer.end_offsets(tps)
        starts = {tp: consumer.position(tp) for tp in tps}
        total = sum(max(0, ends[tp] - starts[tp]) for tp in tps)
        show = _progress_printer(stream, topic, total) if stream is not None else None
        copied = dict.fromkeys(range(partitions), 0)
        count = 0
        pending = _Chunk(dict(starts))
        send = producer.send
        source_wait, flush_wait = _timeout(src), _timeout(dst)
        last_news = last_save = time.monotonic()

        def save() -> None:
            nonlocal last_save
            last_save = time.monotonic()
            producer.flush(flush_wait)
            offsets, error = pending.settle()
            consumer.commit(offsets)
            if error is not None:
                raise error

        try:
            while follow or any(consumer.position(tp) < ends[tp] for tp in tps):
                records = consumer.poll(timeout=poll_timeout, max_records=chunk - len(pending))
                for r in records:
                    tp = TopicPartition(topic, r.partition)
                    future = send(target, r.value, r.key, partition=r.partition,  # no headers: None, not ()
                                  headers=r.headers or None,  # None header values copy as None
                                  timestamp_ms=r.timestamp)
                    pending.add(future, tp, r.offset)
                    copied[r.partition] += 1
                    count += 1
                # the whole batch was sent: what it skipped is done as well
                pending.marks.update({tp: max(pending.marks[tp], consumer.position(tp)) for tp in tps})
                now = time.monotonic()
                if records:
                    last_news = now
                elif not follow and now - last_news > source_wait:
                    behind = [f"{tp.partition} ({consumer.position(tp)} < {ends[tp]})"
                              for tp in tps if consumer.position(tp) < ends[tp]]
                    raise TimeoutError(f"mirror of {topic!r}: no record from the source for "
                                       f"{source_wait:g} s while partitions {', '.join(behind)} are "
                                       f"below their end offsets (is the source reachable?)")
                if len(pending) >= chunk or (len(pending) and now - last_save >= COMMIT_INTERVAL):
                    save()
                if show is not None:
                    show(count, False)
        except BaseException as e:
            try:
                save()  # also on KeyboardInterrupt: what was copied is recorded
            except Exception as failed:
                e.add_note(f"mirror: progress of this run's last chunk was not committed ({failed})")
            raise
        save()
        if show is not None:
            show(count, True)
    return MirrorResult(topic=topic, group_id=group, records=count, partitions=copied,
                        seconds=time.monotonic() - started)
