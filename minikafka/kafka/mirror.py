"""``mirror``: copy a topic between any two brokers ``connect`` accepts.

Written against the public Producer/Consumer API only, so it works for a
directory and a cluster either way. Every record keeps its partition, key,
value, headers and timestamp. Progress is committed (as the group
``group_id`` on the source) after each flushed chunk, so a second run
continues where the first stopped: after a clean run it copies nothing
twice; after a crash, at most the last unflushed chunk is copied again.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any, TextIO

import attrs

from ..errors import InvalidArgumentError, TopicNotFoundError
from ..records import TopicPartition

#: Records copied between two flush + commit steps.
CHUNK = 5000
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


def default_group(topic: str) -> str:
    """The source-side group a mirror of ``topic`` commits its progress as."""
    return f"minikafka-mirror.{topic}"


def _open(target: Any, stack: ExitStack) -> Any:
    from ..broker import connect

    if isinstance(target, (str, os.PathLike)):
        return stack.enter_context(connect(target))
    return target


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


def mirror(source: Any, destination: Any, topic: str, *, group_id: str | None = None,
           destination_topic: str | None = None, follow: bool = False, chunk: int = CHUNK,
           progress: bool | TextIO | None = None, poll_timeout: float = 0.5) -> MirrorResult:
    """Copy ``topic`` from ``source`` to ``destination`` (brokers, paths or URLs).

    The destination topic (``destination_topic``, default the same name) is
    created with the source's partition count if it does not exist; one
    with fewer partitions is refused. Copies what the source holds when the
    call starts (``follow=True``: keeps copying until interrupted).
    ``progress``: a stream for a progress line, True for stderr, None for
    stderr when it is a terminal.
    """
    from ..consumer import Consumer
    from ..producer import Producer

    if not isinstance(topic, str):
        raise TypeError(f"topic must be a str, not {type(topic).__name__}")
    if not isinstance(chunk, int) or isinstance(chunk, bool):
        raise TypeError(f"chunk must be an int, not {type(chunk).__name__}")
    if chunk <= 0:
        raise InvalidArgumentError(f"chunk must be > 0, got {chunk}")
    group = default_group(topic) if group_id is None else group_id
    target = topic if destination_topic is None else destination_topic
    stream: TextIO | None
    if progress is None:
        stream = sys.stderr if sys.stderr.isatty() else None
    elif progress is True:
        stream = sys.stderr
    else:
        stream = progress or None
    started = time.monotonic()
    with ExitStack() as stack:
        src = _open(source, stack)
        dst = _open(destination, stack)
        partitions = src.topic(topic).partitions
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
        count = unsaved = 0
        send = producer.send

        def save() -> None:
            producer.flush()
            consumer.commit()

        try:
            while follow or any(consumer.position(tp) < ends[tp] for tp in tps):
                for r in consumer.poll(timeout=poll_timeout, max_records=chunk):
                    send(target, r.value, r.key, partition=r.partition,  # no headers: None, not ()
                         headers=r.headers or None,  # type: ignore[arg-type]  # None header values copy as None
                         timestamp_ms=r.timestamp)
                    copied[r.partition] += 1
                    count += 1
                    unsaved += 1
                if unsaved >= chunk:
                    save()
                    unsaved = 0
                if show is not None:
                    show(count, False)
        finally:
            save()  # also on KeyboardInterrupt: what was copied is recorded
        if show is not None:
            show(count, True)
    return MirrorResult(topic=topic, group_id=group, records=count, partitions=copied,
                        seconds=time.monotonic() - started)
