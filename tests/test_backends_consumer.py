"""Consumer behaviours the same on both backends: the cases an audit of
kafka:// against a data directory found to differ (docs/scaling.md lists
the differences that remain, and why).

``backend`` is a data directory or the session's Kafka (tests/kafka_broker.py).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

import minikafka
from minikafka import Consumer, NoOffsetError, Producer, TopicPartition

# Group timeouts short enough for Tansu's join (about half the session timeout, >= 1 s).
GROUP = {"session_timeout": 1.5, "heartbeat_interval": 0.3}


def new_topic(broker: Any, partitions: int = 1) -> str:
    name = f"t-{uuid.uuid4().hex[:12]}"
    broker.create_topic(name, partitions=partitions)
    return name


def fill(broker: Any, topic: str, n: int, partition: int = 0) -> None:
    with Producer(broker) as p:
        for i in range(n):
            p.send(topic, b"%d" % i, partition=partition)
        p.flush(10)


def offsets_read(consumer: Consumer, n: int, timeout: float = 10.0) -> list[tuple[int, int]]:
    """(partition, offset) of the next ``n`` records, then one more short poll
    (nothing more may come)."""
    got: list[tuple[int, int]] = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        got += [(r.partition, r.offset) for r in consumer.poll(timeout=0.2)]
    got += [(r.partition, r.offset) for r in consumer.poll(timeout=0.3)]
    return got


def test_reset_none_assigns_then_raises_at_poll_until_a_seek(backend: Any) -> None:
    """kafka:// raised NoOffsetError from assign() (the assignment unchanged),
    so a partition without a committed offset could not be assigned and
    then sought; a directory assigns it and raises at poll/position."""
    topic = new_topic(backend, 2)
    fill(backend, topic, 5, partition=0)
    fill(backend, topic, 2, partition=1)
    p0, p1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    group = f"g-{uuid.uuid4().hex[:8]}"
    with Consumer(backend, group_id=group, enable_auto_commit=False) as c:
        c.assign([p1])
        c.commit({p1: 1})
    with Consumer(backend, group_id=group, auto_offset_reset="none", enable_auto_commit=False) as c:
        c.assign([p0, p1])
        assert c.assignment() == {p0, p1}
        assert c.position(p1) == 1
        for call in (lambda: c.poll(timeout=0.2), lambda: c.position(p0), c.at_end):
            with pytest.raises(NoOffsetError, match=rf"{topic}/0: no committed offset and "
                                                    r"auto_offset_reset='none'"):
                call()
        c.commit()  # the unknown position is not committed
        assert c.committed(p0) is None
        c.pause(p0)
        c.seek(p0, 3)
        assert c.position(p0) == 3
        assert offsets_read(c, 1) == [(1, 1)]  # p0 is paused
        c.resume(p0)
        assert offsets_read(c, 2) == [(0, 3), (0, 4)]


@pytest.mark.slow
def test_reset_none_in_a_group_runs_on_assign_and_a_seek_there_starts_reading(backend: Any) -> None:
    """kafka:// lost the whole assignment of a group member with
    auto_offset_reset="none" and no committed offset: on_assign never ran,
    assignment() stayed empty, and seeking raised "not assigned"."""
    topic = new_topic(backend)
    fill(backend, topic, 5)
    tp = TopicPartition(topic, 0)
    events: list[set[TopicPartition]] = []
    with Consumer(backend, group_id=f"g-{uuid.uuid4().hex[:8]}", auto_offset_reset="none",
                  on_assign=events.append, **GROUP) as c:
        c.subscribe([topic])
        deadline = time.monotonic() + 15
        with pytest.raises(NoOffsetError, match=rf"{topic}/0: no committed offset"):
            while time.monotonic() < deadline:
                c.poll(timeout=0.2)
        assert events == [{tp}]
        assert c.assignment() == {tp}
        c.seek(tp, 2)
        assert offsets_read(c, 3) == [(0, 2), (0, 3), (0, 4)]


@pytest.mark.parametrize("reset", ["earliest", "latest"])
def test_a_seek_outside_the_log_goes_where_auto_offset_reset_says(backend: Any, reset: str) -> None:
    """kafka:// kept position() at the offset sought (50) and, on Tansu,
    never read again (no OFFSET_OUT_OF_RANGE); a directory resolves the
    reset at once."""
    topic = new_topic(backend)
    fill(backend, topic, 3)
    tp = TopicPartition(topic, 0)
    with Consumer(backend, auto_offset_reset=reset) as c:
        c.assign([tp])
        c.seek(tp, 50)
        assert c.position(tp) == (0 if reset == "earliest" else 3)
        fill(backend, topic, 1)
        c.seek(tp, 50)  # resolved when reading: the end is 4 by then
        expected = [(0, o) for o in range(4)] if reset == "earliest" else []
        assert offsets_read(c, len(expected)) == expected
        assert c.position(tp) == 4


def test_a_seek_outside_the_log_with_reset_none_raises_until_sought_back(backend: Any) -> None:
    topic = new_topic(backend)
    fill(backend, topic, 3)
    tp = TopicPartition(topic, 0)
    group = f"g-{uuid.uuid4().hex[:8]}"
    with Consumer(backend, group_id=group, enable_auto_commit=False) as c:
        c.assign([tp])
        c.commit({tp: 1})
    with Consumer(backend, group_id=group, auto_offset_reset="none", enable_auto_commit=False) as c:
        c.assign([tp])
        c.seek(tp, 50)
        for call in (lambda: c.poll(timeout=0.2), lambda: c.position(tp), lambda: c.poll(timeout=0.2)):
            with pytest.raises(NoOffsetError, match=rf"{topic}/0: offset 50 is outside the retained "
                                                    r"range 0\.\.3 and auto_offset_reset='none'"):
                call()
        c.seek(tp, 3)  # the end is in the range
        assert c.position(tp) == 3
        c.seek(tp, 1)
        assert offsets_read(c, 2) == [(0, 1), (0, 2)]


def test_seeks_back_within_the_log_cost_no_reset(backend: Any) -> None:
    """A seek inside the range (the one iteration's put-back makes) reads from there."""
    topic = new_topic(backend)
    fill(backend, topic, 6)
    tp = TopicPartition(topic, 0)
    with Consumer(backend, auto_offset_reset="earliest") as c:
        c.assign([tp])
        for record in c:
            if record.offset == 2:
                break
        assert c.position(tp) == 3
        assert offsets_read(c, 3) == [(0, 3), (0, 4), (0, 5)]
        c.seek(tp, 1)
        assert c.position(tp) == 1
        assert offsets_read(c, 5) == [(0, o) for o in range(1, 6)]



@pytest.mark.slow
def test_a_seek_in_on_assign_works_where_one_right_after_subscribe_may_not(backend: Any) -> None:
    """On Kafka subscribe returns before the group's first assignment
    (docs/scaling.md), so a seek right after it is refused, with a message
    saying what to do; a seek in on_assign works on both backends."""
    topic = new_topic(backend)
    fill(backend, topic, 5)
    tp = TopicPartition(topic, 0)
    with Consumer(backend, group_id=f"g-{uuid.uuid4().hex[:8]}", auto_offset_reset="earliest",
                  **GROUP) as c:
        c.subscribe([topic], listener=type("Seeker", (), {"on_assign": lambda self, tps: c.seek(tp, 3)})())
        if c.assignment():  # a directory joins in subscribe()
            assert c.position(tp) == 3
        else:
            with pytest.raises(minikafka.InvalidArgumentError,
                               match=rf"{topic}/0 is not assigned .*seek in on_assign"):
                c.seek(tp, 0)
        assert offsets_read(c, 2) == [(0, 3), (0, 4)]


def test_latest_is_the_end_at_the_first_poll_or_position_after_assign(backend: Any) -> None:
    """kafka:// read "latest" at assign, so records written between assign
    and the first poll were read there and skipped on a directory."""
    topic = new_topic(backend, partitions=2)
    fill(backend, topic, 3, partition=0)
    fill(backend, topic, 2, partition=1)
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    with Consumer(backend, auto_offset_reset="latest") as c:
        c.assign([tp0, tp1])
        fill(backend, topic, 1, partition=0)
        fill(backend, topic, 1, partition=1)
        assert c.position(tp0) == 4  # position() reads the end
        assert c.poll(timeout=0.2) == []  # so does the first poll
        assert c.position(tp1) == 3
        fill(backend, topic, 1, partition=0)
        fill(backend, topic, 1, partition=1)
        assert sorted(offsets_read(c, 2)) == [(0, 4), (1, 3)]


def test_a_start_nobody_read_is_not_committed(backend: Any) -> None:
    """Positions are committed once read (by a poll, ``position()`` or a
    seek), as on a directory and in Kafka's Java client. kafka:// read the
    start at assign and committed it: ``commit()``, or the auto-commit of a
    close, right after ``assign`` wrote the beginning offset for a group
    that had read nothing."""
    topic = new_topic(backend, partitions=2)
    fill(backend, topic, 3, partition=0)
    fill(backend, topic, 2, partition=1)
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    group = f"g-{uuid.uuid4().hex[:8]}"
    with Consumer(backend, group_id=group, auto_offset_reset="earliest") as c:
        c.assign([tp0, tp1])
        c.commit()
        assert (c.committed(tp0), c.committed(tp1)) == (None, None)
    assert backend.committed_offsets(group) == {}  # nor by the close's auto-commit
    with Consumer(backend, group_id=group, auto_offset_reset="earliest") as c:
        c.assign([tp0, tp1])
        assert c.position(tp1) == 0
        c.commit()
        assert (c.committed(tp0), c.committed(tp1)) == (None, 0)
        c.seek(tp0, 2)
        c.commit()
        assert (c.committed(tp0), c.committed(tp1)) == (2, 0)
    with Consumer(backend, group_id=group, auto_offset_reset="earliest") as c:
        c.assign([tp0, tp1])
        assert sorted(offsets_read(c, 3)) == [(0, 2), (1, 0), (1, 1)]
    assert backend.committed_offsets(group) == {tp0: 3, tp1: 2}


def test_latest_is_read_when_a_paused_partition_is_first_polled(backend: Any) -> None:
    """A partition paused right after assign gets its "latest" start at
    the first poll, while paused, and reads from there once resumed."""
    topic = new_topic(backend)
    fill(backend, topic, 3)
    tp = TopicPartition(topic, 0)
    with Consumer(backend, auto_offset_reset="latest") as c:
        c.assign([tp])
        c.pause(tp)
        fill(backend, topic, 2)
        assert c.poll(timeout=0.2) == []
        c.resume(tp)
        fill(backend, topic, 1)
        assert offsets_read(c, 1) == [(0, 5)]
