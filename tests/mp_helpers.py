"""Child-process entry points for tests/test_multiprocess.py.

Every function here runs in a fresh interpreter started with the "spawn"
start method (``SPAWN``), so a child shares nothing with the test process
but the data directory, the clocks and the few ``multiprocessing`` events
passed to it. Children report what they saw through JSON-lines files
written with one ``os.write`` per line on an ``O_APPEND`` descriptor: a
line written before a SIGKILL is in the page cache and survives it.

Times are ``time.monotonic()`` (or ``monotonic_ns``): CLOCK_MONOTONIC is
one clock for the whole system on Linux, so times taken in different
processes compare directly.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Iterable
from typing import Any

from minikafka import Broker, Consumer, Producer, TopicPartition
from minikafka.locking import FileLock

SPAWN = multiprocessing.get_context("spawn")


class EventLog:
    """Append-only JSON-lines file; each line is written by one syscall."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, **event: Any) -> None:
        os.write(self.fd, (json.dumps(event, separators=(",", ":")) + "\n").encode())

    def close(self) -> None:
        os.close(self.fd)


def read_events(path: str) -> list[dict[str, Any]]:
    """Every complete line of an EventLog (none if the file is absent)."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.endswith("}")]


# -- producers -------------------------------------------------------------------------------


def produce_sequence(path: str, topic: str, producer_id: int, count: int, start: Any,
                     linger_ms: float) -> None:
    """Send ``count`` values ``b"<producer_id>:<seq>"`` to partition 0 of
    ``topic`` once ``start`` is set, then flush."""
    with Broker(path) as broker:
        producer = Producer(broker, linger_ms=linger_ms)
        start.wait(60)  # a Barrier: every producer begins at once
        for seq in range(count):
            producer.send(topic, b"%d:%d" % (producer_id, seq), partition=0)
            if seq % 1000 == 999:
                time.sleep(0)  # give the other producers a chance to interleave
        producer.close()


def produce_forever(path: str, topic: str, ready: Any) -> None:
    """Append one record at a time (no batching) until killed; ``ready`` is
    set once 100 records are written."""
    with Broker(path) as broker:
        producer = Producer(broker, linger_ms=0)
        seq = 0
        while True:
            producer.send(topic, b"child-%d" % seq, partition=0).result(timeout=30)
            seq += 1
            if seq == 100:
                ready.set()


def hold_writer_lock(path: str, topic: str, holding: Any) -> None:
    """Append a record, then take the partition's writer lock the way an
    append does (flock on writer.lock) and stop there until killed."""
    with Broker(path) as broker:
        producer = Producer(broker, linger_ms=0)
        producer.send(topic, b"before-the-lock", partition=0).result(timeout=30)
        lock = FileLock(os.path.join(broker.path, "topics", topic, "0", "writer.lock"))
        lock.acquire()
        holding.set()
        while True:
            time.sleep(1)


def produce_throttled(path: str, topic: str, count: int, value_size: int, burst: int,
                      pause: float, start: int = 0) -> None:
    """Send ``count`` records of ``value_size`` bytes (the sequence number
    from ``start`` on, zero-padded, first), ``burst`` at a time with
    ``pause`` seconds between."""
    with Broker(path) as broker, Producer(broker, linger_ms=0) as producer:
        for seq in range(start, start + count):
            producer.send(topic, b"%012d" % seq + b"x" * (value_size - 12), partition=0)
            if seq % burst == burst - 1:
                time.sleep(pause)


def delete_topic_later(path: str, topic: str, go: Any) -> None:
    """Delete ``topic`` once ``go`` is set."""
    with Broker(path) as broker:
        if not go.wait(60):
            raise SystemExit("go event never came")
        broker.delete_topic(topic)


# -- consumers -------------------------------------------------------------------------------


def latency_consumer(path: str, topic: str, count: int, log_path: str, ready: Any) -> None:
    """Read ``count`` records of partition 0 and log, per record, the
    producer's send time (the value: monotonic_ns) and the receive time."""
    log = EventLog(log_path)
    with Broker(path) as broker:
        consumer = Consumer(broker, auto_offset_reset="earliest")
        consumer.assign([TopicPartition(topic, 0)])
        consumer.poll(timeout=0.05)
        ready.set()
        seen: list[tuple[int, int, int]] = []
        deadline = time.monotonic() + 60
        while len(seen) < count and time.monotonic() < deadline:
            records = consumer.poll(timeout=0.5)
            received = time.monotonic_ns()
            seen.extend((r.offset, int(r.value), received) for r in records)
        consumer.close()
    for offset, sent, received in seen:
        log.write(offset=offset, sent=sent, received=received)
    log.close()


def _tps(tps: Iterable[TopicPartition]) -> list[int]:
    return sorted(tp.partition for tp in tps)


def group_member(path: str, topic: str, group_id: str, name: str, log_path: str, stop: Any,
                 batch_delay: float = 0.0, max_poll_records: int = 50,
                 heartbeat_interval: float = 0.1) -> None:
    """One member of ``group_id`` consuming ``topic`` until ``stop`` is set.

    Logs (kind ``assign`` / ``revoke``, with the monotonic time, from the
    listeners; ``assign`` also records the committed offset of each
    partition as the member takes it over), one ``recs`` line per
    non-empty poll (``[partition, offset]`` pairs and the receive time),
    and a ``commit`` line after each commit. Processing is: log the
    records, sleep ``batch_delay``, commit the positions (manual commit,
    so the committed offset is exactly "processed + 1").
    """
    log = EventLog(log_path)
    with Broker(path) as broker:
        consumer: Consumer | None = None

        def on_assign(tps: set[TopicPartition]) -> None:
            now = time.monotonic()
            assert consumer is not None
            committed = {str(tp.partition): consumer.committed(tp) for tp in tps}
            log.write(kind="assign", member=name, t=now, parts=_tps(tps), committed=committed)

        def on_revoke(tps: set[TopicPartition]) -> None:
            log.write(kind="revoke", member=name, t=time.monotonic(), parts=_tps(tps))

        consumer = Consumer(
            broker, group_id=group_id, auto_offset_reset="earliest", enable_auto_commit=False,
            max_poll_records=max_poll_records, on_assign=on_assign, on_revoke=on_revoke,
            heartbeat_interval=heartbeat_interval,
        )
        consumer.subscribe([topic])
        log.write(kind="joined", member=name, t=time.monotonic(), pid=os.getpid(),
                  member_id=consumer.member_id)
        while not stop.is_set():
            records = consumer.poll(timeout=0.05)
            if not records:
                continue
            now = time.monotonic()
            log.write(kind="recs", member=name, t=now, recs=[[r.partition, r.offset] for r in records])
            if batch_delay:
                time.sleep(batch_delay)
            positions = {tp.partition: consumer.position(tp) for tp in consumer.assignment()}
            consumer.commit()
            log.write(kind="commit", member=name, t=time.monotonic(), positions=positions)
        consumer.close()
        log.write(kind="closed", member=name, t=time.monotonic())
    log.close()


def join_and_die_before_state(path: str, topic: str, group_id: str, entered: Any) -> None:
    """Join ``group_id`` but stop for good inside the first rebalance, after
    the member file exists and before ``state.json`` names the member
    (``entered`` is set there): the parent SIGKILLs it at that point."""
    from minikafka import membership

    def stuck(self: Any, state: Any) -> None:
        entered.set()
        time.sleep(600)

    membership.GroupMember._rebalance = stuck  # type: ignore[method-assign]
    with Broker(path) as broker:
        Consumer(broker, topic, group_id=group_id, session_timeout=0.5, heartbeat_interval=0.1)
