"""The Broker/Producer/Consumer surface, the same tests on both backends.

``backend`` is a data directory ("dir") or the session's Tansu broker
("kafka"; a real Kafka with MINIKAFKA_TEST_KAFKA=host:port). Where Tansu 0.6
deviates from Apache Kafka the test is an expected failure on Tansu only.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

import pytest
from kafka_broker import xfail_on_tansu

import minikafka
from minikafka import Consumer, Producer, TopicPartition
from minikafka.partitioners import murmur2

# Group timeouts short enough for Tansu's join (about half the session timeout, >= 1 s).
GROUP = {"session_timeout": 1.5, "heartbeat_interval": 0.3}


def new_topic(broker: Any, partitions: int = 1) -> str:
    name = f"t-{uuid.uuid4().hex[:12]}"
    broker.create_topic(name, partitions=partitions)
    return name


def read_all(consumer: Consumer, n: int, timeout: float = 15.0) -> list[minikafka.Record]:
    got: list[minikafka.Record] = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        got.extend(consumer.poll(timeout=0.5))
    assert len(got) == n, f"{len(got)} of {n} records arrived"
    return got


def assigned(broker: Any, topic: str, partitions: int = 1, **options: Any) -> Consumer:
    c = Consumer(broker, auto_offset_reset="earliest", **options)
    c.assign([TopicPartition(topic, p) for p in range(partitions)])
    return c


def test_futures_give_record_metadata_and_records_keep_every_field(backend: Any) -> None:
    topic = new_topic(backend, 2)
    with Producer(backend) as p:
        f1 = p.send(topic, b"v1", b"k1", partition=1, headers=[("h", b"1"), ("h", b"2")],
                    timestamp_ms=1_700_000_000_000)
        f2 = p.send(topic, None, None, partition=0, timestamp_ms=1_700_000_000_001)
        p.flush(10)
        m1, m2 = f1.result(10), f2.result(10)
    assert f1.done() and f1.exception() is None
    assert (m1.topic, m1.partition, m1.offset, m1.timestamp) == (topic, 1, 0, 1_700_000_000_000)
    assert (m2.partition, m2.offset) == (0, 0)
    with assigned(backend, topic, 2) as c:
        got = sorted(read_all(c, 2), key=lambda r: r.partition)
    assert [(r.partition, r.key, r.value, list(r.headers), r.timestamp) for r in got] == [
        (0, None, None, [], 1_700_000_000_001),
        (1, b"k1", b"v1", [("h", b"1"), ("h", b"2")], 1_700_000_000_000),
    ]


def test_header_values_take_bytes_str_or_none_alike(backend: Any) -> None:
    """Header values may be bytes-like, str (UTF-8, as confluent-kafka) or
    None on both backends and come back as bytes or None; the error for
    another type names every accepted one (it said "bytes or None")."""
    topic = new_topic(backend)
    with Producer(backend) as p:
        p.send(topic, b"v",
               headers=[("s", "é"), ("b", bytearray(b"y")), ("n", None), ("m", memoryview(b"z"))])
        p.send(topic, b"w", headers={"s": "x"})
        with pytest.raises(TypeError, match="must be bytes, bytearray, memoryview, str or None, not int"):
            p.send(topic, b"bad", headers=[("a", 1)])
        p.flush(10)
    with assigned(backend, topic) as c:
        got = read_all(c, 2)
    assert [(r.value, r.headers) for r in got] == [
        (b"v", (("s", "é".encode()), ("b", b"y"), ("n", None), ("m", b"z"))),
        (b"w", (("s", b"x"),)),
    ]


def test_done_callbacks_run_once_delivered(backend: Any) -> None:
    topic = new_topic(backend)
    seen: list[int] = []
    with Producer(backend) as p:
        f = p.send(topic, b"x")
        f.add_done_callback(lambda fut: seen.append(fut.result().offset))
        p.flush(10)
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen == [0]


def test_serializers_both_ways(backend: Any) -> None:
    topic = new_topic(backend)
    with Producer(backend, key_serializer=str.encode, value_serializer=lambda v: json.dumps(v).encode()) as p:
        p.send(topic, {"n": 1}, "a").result(10)
        p.send(topic, None, None).result(10)
    with assigned(backend, topic, key_deserializer=bytes.decode, value_deserializer=json.loads) as c:
        got = read_all(c, 2)
    assert [(r.key, r.value) for r in got] == [("a", {"n": 1}), (None, None)]


def test_keyed_records_land_on_partition_for_key(backend: Any) -> None:
    topic = new_topic(backend, 4)
    keys = [b"key-%d" % i for i in range(40)]
    t = backend.topic(topic)
    with Producer(backend) as p:
        metas = [p.send(topic, b"v", k) for k in keys]
        p.flush(10)
        assert [m.result(10).partition for m in metas] == [t.partition_for(k) for k in keys]
    with Producer(backend, partitioner="murmur2") as p:
        metas = [p.send(topic, b"v", k) for k in keys]
        assert [m.result(10).partition for m in metas] == [murmur2(k, 4) for k in keys]


def test_plain_sends_check_like_any_other(backend: Any) -> None:
    """Plain bytes take a short path on both backends (local_producer.py,
    kafka/producing.py): tombstones, keyless records, records over the size
    limit and bad types behave as through the front half."""
    topic = new_topic(backend, 3)
    t = backend.topic(topic)
    with Producer(backend, max_record_bytes=1000) as p:
        tomb = p.send(topic, None, b"k")
        keyless = [p.send(topic, b"v%d" % i) for i in range(5)]
        bytes_like = p.send(topic, b"v", bytearray(b"k2"))  # not bytes: the front half
        with pytest.raises(minikafka.RecordTooLargeError):
            p.send(topic, b"x" * 1000, b"k")
        with pytest.raises(TypeError, match="value must be"):
            p.send(topic, 123, b"k")
        with pytest.raises(TypeError, match="key must be"):
            p.send(topic, b"v", 7)
        p.flush(10)
        metas = [f.result(10) for f in (tomb, *keyless, bytes_like)]
    assert metas[0].partition == t.partition_for(b"k")
    assert len({m.partition for m in metas[1:6]}) == 1  # keyless: one sticky partition per batch
    assert metas[6].partition == t.partition_for(b"k2")
    with assigned(backend, topic, 3) as c:
        got = {(r.partition, r.offset): (r.key, r.value) for r in read_all(c, 7)}
    assert got == {(m.partition, m.offset): kv for m, kv in zip(
        metas, [(b"k", None)] + [(None, b"v%d" % i) for i in range(5)] + [(b"k2", b"v")], strict=True)}


def test_partitioner_option_is_validated(backend: Any) -> None:
    with pytest.raises(minikafka.InvalidArgumentError, match="partitioner"):
        Producer(backend, partitioner="crc32")
    with pytest.raises(TypeError, match="partitioner"):
        Producer(backend, partitioner=3)  # type: ignore[arg-type]


def test_custom_partitioner_and_explicit_partitions(backend: Any) -> None:
    topic = new_topic(backend, 3)
    with Producer(backend, partitioner=lambda key, n: n - 1) as p:
        assert p.send(topic, b"a", b"k").result(10).partition == 2
        assert p.send(topic, b"b").result(10).partition == 2
        assert p.send(topic, b"c", partition=0).result(10).partition == 0
        with pytest.raises(minikafka.InvalidPartitionError):
            p.send(topic, b"d", partition=3)


def test_explicit_partitions_without_options(backend: Any) -> None:
    """A producer with no serializers or partitioner (the send fast path):
    each record lands on the partition named, keyed or not, and a bad
    partition raises naming it, with nothing written."""
    topic = new_topic(backend, 3)
    t = backend.topic(topic)
    with Producer(backend) as p:
        key = next(k for k in (b"k%d" % i for i in range(100)) if t.partition_for(k) != 2)
        assert p.send(topic, b"a", key, partition=2).result(10).partition == 2
        assert [p.send(topic, b"b", partition=i).result(10).partition for i in (1, 0, 1)] == [1, 0, 1]
        with pytest.raises(minikafka.InvalidPartitionError, match="partition 3 out of range"):
            p.send(topic, b"c", partition=3)
        with pytest.raises(minikafka.InvalidPartitionError, match="partition -1 out of range"):
            p.send(topic, b"c", key, partition=-1)
        for bad in (True, 1.0, "1"):
            with pytest.raises(TypeError, match="partition must be an int"):
                p.send(topic, b"c", partition=bad)  # type: ignore[arg-type]
        p.flush(10)
    assert t.end_offsets() == {0: 1, 1: 2, 2: 1}


def test_send_many_and_end_offsets(backend: Any) -> None:
    topic = new_topic(backend, 2)
    with Producer(backend) as p:
        res = p.send_many(topic, [b"a", b"b", b"c"], keys=[b"x", b"y", b"z"])
        metas = res.metadata()
    t = backend.topic(topic)
    assert [m.partition for m in metas] == [t.partition_for(k) for k in (b"x", b"y", b"z")]
    ends = t.end_offsets()
    assert sum(ends.values()) == 3
    assert t.beginning_offsets() == {0: 0, 1: 0}


def _fill(broker: Any, topic: str, n: int, partition: int = 0, ts0: int = 1_000_000) -> None:
    with Producer(broker) as p:
        for i in range(n):
            p.send(topic, b"%d" % i, partition=partition, timestamp_ms=ts0 + i * 10)
        p.flush(10)


def test_seek_position_and_stop_at_end(backend: Any) -> None:
    topic = new_topic(backend)
    _fill(backend, topic, 10)
    tp = TopicPartition(topic, 0)
    with assigned(backend, topic) as c:
        assert c.position(tp) == 0
        c.seek(tp, 7)
        assert [r.offset for r in read_all(c, 3)] == [7, 8, 9]
        assert c.position(tp) == 10
        c.seek_to_beginning(tp)
        assert c.position(tp) == 0
        c.seek_to_end(tp)
        assert c.position(tp) == 10
        assert c.end_offsets([tp]) == {tp: 10}
    with Consumer(backend, auto_offset_reset="earliest", stop_at_end=True) as c:
        c.assign([tp])
        assert [r.offset for r in c] == list(range(10))
        assert c.at_end()
        _fill(backend, topic, 1)  # acknowledged after the consumer's last fetch
        assert not c.at_end()
        assert [r.offset for r in c] == [10]


def test_pause_and_resume(backend: Any) -> None:
    topic = new_topic(backend, 2)
    _fill(backend, topic, 3, partition=0)
    _fill(backend, topic, 3, partition=1)
    p0 = TopicPartition(topic, 0)
    with assigned(backend, topic, 2) as c:
        c.pause(p0)
        assert c.paused() == {p0}
        got = read_all(c, 3)
        assert {r.partition for r in got} == {1}
        c.resume(p0)
        assert {r.partition for r in read_all(c, 3)} == {0}


def test_a_partition_paused_from_its_assignment_starts_where_latest_was_then(
    backend: Any,
) -> None:
    """auto_offset_reset="latest" resolves at the first poll after the
    assignment, paused partitions included: records written while paused
    are read after resume (the directory backend skipped them)."""
    topic = new_topic(backend, 2)
    _fill(backend, topic, 2, partition=0)
    p0, p1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    with Consumer(backend, auto_offset_reset="latest") as c:
        c.assign([p0, p1])
        c.pause(p0)
        c.poll(timeout=1.0)  # (position() here would resolve it either way)
        with Producer(backend) as p:
            p.send(topic, b"while-paused", partition=0).result(timeout=10)
        c.resume(p0)
        assert [r.value for r in read_all(c, 1)] == [b"while-paused"]
        assert c.position(p0) == 3


def on_kafka(request: pytest.FixtureRequest, deviation: str) -> None:
    """Mark this test an expected failure on Tansu (only on the kafka backend)."""
    if request.node.callspec.params["backend"] == "kafka":
        request.applymarker(xfail_on_tansu(deviation))


def test_offsets_for_times(backend: Any, request: pytest.FixtureRequest) -> None:
    on_kafka(request, "ListOffsets by timestamp always answers 0")
    topic = new_topic(backend)
    _fill(backend, topic, 5, ts0=1_000_000)  # timestamps 1_000_000, +10, ...
    tp = TopicPartition(topic, 0)
    with assigned(backend, topic) as c:
        assert c.offsets_for_times({tp: 1_000_015}) == {tp: 2}
        assert c.offsets_for_times({tp: 2_000_000}) == {tp: None}


def test_commit_and_committed(backend: Any) -> None:
    topic = new_topic(backend)
    _fill(backend, topic, 5)
    tp = TopicPartition(topic, 0)
    group = f"g-{uuid.uuid4().hex[:8]}"
    with assigned(backend, topic, group_id=group, enable_auto_commit=False) as c:
        c.seek(tp, 3)
        c.commit()
        assert c.committed(tp) == 3
    assert backend.committed_offsets(group) == {tp: 3}
    assert backend.lag(group) == {tp: 2}
    with assigned(backend, topic, group_id=group) as c:
        assert c.position(tp) == 3


@pytest.mark.slow
def test_group_on_assign_and_on_revoke(backend: Any) -> None:
    topic = new_topic(backend, 2)
    _fill(backend, topic, 4, partition=0)
    _fill(backend, topic, 4, partition=1)
    group = f"g-{uuid.uuid4().hex[:8]}"
    events: list[tuple[str, set[TopicPartition]]] = []
    c = Consumer(backend, topic, group_id=group, auto_offset_reset="earliest",
                 on_assign=lambda ps: events.append(("assign", set(ps))),
                 on_revoke=lambda ps: events.append(("revoke", set(ps))), **GROUP)
    try:
        got = read_all(c, 8, timeout=20)
        assert sorted((r.partition, r.offset) for r in got) == [(p, o) for p in (0, 1) for o in range(4)]
        assert events[0] == ("assign", {TopicPartition(topic, 0), TopicPartition(topic, 1)})
        assert c.member_id and c.generation >= 1  # a member of the group on either backend
        c.commit()
    finally:
        c.close()
    assert events[-1][0] == "revoke"
    assert backend.committed_offsets(group) == {TopicPartition(topic, 0): 4, TopicPartition(topic, 1): 4}
    assert group in backend.list_groups()


def test_asyncio_classes(backend: Any) -> None:
    import asyncio

    from minikafka.aio import AsyncConsumer, AsyncProducer

    topic = new_topic(backend)

    async def main() -> list[tuple[bytes | None, bytes | None]]:
        async with AsyncProducer(backend) as p:
            md = await (await p.send(topic, b"v", b"k", timestamp_ms=5))
            assert (md.partition, md.offset, md.timestamp) == (0, 0, 5)
        async with AsyncConsumer(backend, auto_offset_reset="earliest") as c:
            c.assign([TopicPartition(topic, 0)])
            got = await c.poll(timeout=10)
            return [(r.key, r.value) for r in got]

    assert asyncio.run(main()) == [(b"k", b"v")]


def test_partitions_for_looks_a_topic_up_as_a_send_does(backend: Any) -> None:
    import asyncio

    from minikafka.aio import AsyncProducer

    topic = new_topic(backend, partitions=3)
    with Producer(backend) as p:
        assert p.partitions_for(topic) == {0, 1, 2}
        with pytest.raises(minikafka.TopicNotFoundError):
            p.partitions_for(f"absent-{uuid.uuid4().hex[:8]}")
        with pytest.raises(TypeError, match="topic must be a str"):
            p.partitions_for(b"t")  # type: ignore[arg-type]

    async def main() -> set[int]:
        async with AsyncProducer(backend) as p:
            return await p.partitions_for(topic)

    assert asyncio.run(main()) == {0, 1, 2}


def test_producers_and_consumers_of_a_closed_broker_are_refused(backend: Any) -> None:
    """ClosedError at construction on both backends (a directory's
    Producer and topic-less Consumer were made, and failed only later)."""
    topic = new_topic(backend)
    backend.close()
    with pytest.raises(minikafka.ClosedError):
        Producer(backend)
    with pytest.raises(minikafka.ClosedError):
        Consumer(backend)
    with pytest.raises(minikafka.ClosedError):
        Consumer(backend, topic, group_id="g")
    with pytest.raises(minikafka.ClosedError), backend:  # a kafka:// broker was entered
        pass


def test_offsets_for_times_refuses_negative_timestamps(backend: Any) -> None:
    """Kafka reads -1 and -2 as "latest" and "earliest": a negative time is
    refused on both backends instead of meaning something else on one."""
    topic = new_topic(backend)
    with assigned(backend, topic) as c, \
            pytest.raises(minikafka.InvalidArgumentError, match="from 0 to 2\\*\\*63 - 1"):
        c.offsets_for_times({TopicPartition(topic, 0): -1})


@pytest.mark.parametrize("bad", [float("nan"), -1.0], ids=["nan", "negative"])
def test_a_bad_wait_is_refused_before_anything_is_lost_and_a_huge_one_is_no_limit(
        backend: Any, bad: float) -> None:
    """kafka:// took flush(-1) and close(-1) as "no wait", a future's
    result(nan) as "wait for ever" (min(0.05, nan) is 0.05), and gave a raw
    ValueError for flush(nan) — raised by close() after it had closed, so
    the queued records were purged; flush(1e300) raised OverflowError. Both
    backends now refuse a bad timeout first, naming it, losing nothing, and
    take one beyond a lock's reach as no limit."""
    topic = new_topic(backend)
    p = Producer(backend, linger_ms=2000)  # the record stays queued meanwhile
    try:
        pending = p.send(topic, b"queued")
        for call in (p.flush, p.close, pending.result):
            with pytest.raises(minikafka.InvalidArgumentError, match="timeout must be a number >= 0"):
                call(bad)
        with pytest.raises(TypeError, match="timeout must be a number"):
            p.flush("1")  # type: ignore[arg-type]
        assert not pending.done()
        p.send(topic, b"after")
        p.flush(1e300)
        assert pending.result(1e300).offset == 0
        p.send(topic, b"last")
    finally:
        p.close(1e300)
    with assigned(backend, topic) as c:
        assert [r.value for r in read_all(c, 3)] == [b"queued", b"after", b"last"]
        with pytest.raises(minikafka.InvalidArgumentError, match="timeout must be a number >= 0"):
            c.poll(float("nan"))


def test_lookups_of_a_missing_topic_or_partition_raise_what_a_directory_raises(backend: Any) -> None:
    """kafka:// raised InvalidPartitionError ("Unknown partition") for a
    topic that does not exist, where a directory raises TopicNotFoundError,
    and KafkaBackendError ("int too big to convert") for a time past int64."""
    topic = new_topic(backend, partitions=2)
    absent = f"absent-{uuid.uuid4().hex[:8]}"
    with Consumer(backend) as c:
        for lookup in (c.end_offsets, c.beginning_offsets, c.assign):
            with pytest.raises(minikafka.TopicNotFoundError, match=absent):
                lookup([TopicPartition(absent, 0)])
            with pytest.raises(minikafka.InvalidPartitionError, match=f"{topic}/5: .*partitions 0..1"):
                lookup([TopicPartition(topic, 5)])
        with pytest.raises(minikafka.TopicNotFoundError, match=absent):
            c.offsets_for_times({TopicPartition(absent, 0): 0})
        with pytest.raises(minikafka.InvalidPartitionError, match=f"{topic}/5"):
            c.offsets_for_times({TopicPartition(topic, 5): 0})
        with pytest.raises(minikafka.InvalidArgumentError, match="2\\*\\*63 - 1"):
            c.offsets_for_times({TopicPartition(topic, 0): 2**63})
        assert set(c.offsets_for_times({TopicPartition(topic, 0): 2**63 - 1})) == {TopicPartition(topic, 0)}
    # Commits of partitions never assigned: Tansu stored an offset for t/5.
    group = f"g-{uuid.uuid4().hex[:8]}"
    with Consumer(backend, group_id=group, enable_auto_commit=False) as c:
        c.assign([TopicPartition(topic, 0)])
        with pytest.raises(minikafka.InvalidPartitionError, match=f"{topic}/5: .*partitions 0..1"):
            c.commit({TopicPartition(topic, 5): 1})
        with pytest.raises(minikafka.TopicNotFoundError, match=absent):
            c.commit({TopicPartition(absent, 0): 1})
        c.commit({TopicPartition(topic, 1): 0, TopicPartition(topic, 0): 0})
    assert backend.committed_offsets(group) == {TopicPartition(topic, 0): 0, TopicPartition(topic, 1): 0}


def _two_partitions_and_a_group(backend: Any, n: int) -> tuple[str, str, TopicPartition, TopicPartition]:
    """A new 2-partition topic with ``n`` records b"0".. in partition 0, and a new group's name."""
    topic = new_topic(backend, partitions=2)
    with Producer(backend) as p:
        for i in range(n):
            p.send(topic, b"%d" % i, partition=0)
    return topic, f"g-{uuid.uuid4().hex[:8]}", TopicPartition(topic, 0), TopicPartition(topic, 1)


def test_alter_group_offsets_and_delete_group_on_both_backends(backend: Any) -> None:
    """kafka:// had neither (AttributeError): a group's offsets could be
    reset, and a group deleted, only on a directory. Both now check the
    arguments, refuse while a consumer of the group runs and an unknown
    group as a directory does (Tansu would delete a running or unknown
    group without a word), and keep the group's other offsets."""
    topic, group, tp0, tp1 = _two_partitions_and_a_group(backend, 3)
    with Consumer(backend, group_id=group, enable_auto_commit=False) as c:
        c.assign([tp0, tp1])
        c.commit({tp0: 3, tp1: 0})
    backend.alter_group_offsets(group, {tp0: 1}, validate_only=True)
    assert backend.committed_offsets(group) == {tp0: 3, tp1: 0}
    backend.alter_group_offsets(group, {tp0: 1})
    assert backend.committed_offsets(group) == {tp0: 1, tp1: 0}
    with pytest.raises(minikafka.InvalidPartitionError, match=r"partitions 0\.\.1"):
        backend.alter_group_offsets(group, {TopicPartition(topic, 5): 0})
    with pytest.raises(minikafka.InvalidArgumentError, match=r"offsets: offset of .* got -1"):
        backend.alter_group_offsets(group, {tp0: -1})
    with pytest.raises(minikafka.TopicNotFoundError):
        backend.alter_group_offsets(group, {TopicPartition(f"absent-{uuid.uuid4().hex[:8]}", 0): 0})
    with pytest.raises(minikafka.InvalidArgumentError, match="does not exist"):
        backend.delete_group(f"absent-{uuid.uuid4().hex[:8]}")
    assert backend.committed_offsets(group) == {tp0: 1, tp1: 0}

    with Consumer(backend, topic, group_id=group, auto_offset_reset="earliest", **GROUP) as running:
        deadline = time.monotonic() + 20
        while not running.assignment() and time.monotonic() < deadline:
            running.poll(timeout=0.2)
        assert running.assignment() == {tp0, tp1}
        with pytest.raises(minikafka.GroupNotEmptyError):
            backend.alter_group_offsets(group, {tp0: 0})
        with pytest.raises(minikafka.GroupNotEmptyError):
            backend.delete_group(group)
    deadline = time.monotonic() + 20  # Kafka: the member's leave reaches the coordinator
    while True:
        try:
            backend.delete_group(group)
            break
        except minikafka.GroupNotEmptyError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert group not in backend.list_groups()
    assert backend.committed_offsets(group) == {}


def test_alter_group_offsets_of_a_new_group_makes_it(backend: Any) -> None:
    """Setting the offsets of a group nobody has run yet makes the group, as
    ``kafka-consumer-groups --reset-offsets`` does and a directory did;
    kafka:// refused it ("does not exist"). A dry run makes nothing."""
    _, group, tp0, tp1 = _two_partitions_and_a_group(backend, 4)
    backend.alter_group_offsets(group, {tp0: 2}, validate_only=True)
    assert group not in backend.list_groups()
    assert backend.committed_offsets(group) == {}
    backend.alter_group_offsets(group, {tp0: 2, tp1: 0})
    assert group in backend.list_groups()
    assert backend.committed_offsets(group) == {tp0: 2, tp1: 0}
    with Consumer(backend, group_id=group, enable_auto_commit=False) as c:
        c.assign([tp0])
        assert [r.value for r in read_all(c, 2)] == [b"2", b"3"]


def test_a_subscription_without_a_group_has_every_partition_at_once(backend: Any) -> None:
    """On kafka:// a group-less subscription joined a throwaway group: no
    partition until its join round ended (5 s on Tansu), so reading a topic
    to its end (``stop_at_end``) took 5 s where a directory takes
    milliseconds. Now both assign every partition of the subscribed topics
    at once, and pick up a topic created later."""
    topic = new_topic(backend, partitions=2)
    with Producer(backend) as p:
        for i in range(3):
            p.send(topic, b"%d" % i, partition=i % 2)
    later = f"t-{uuid.uuid4().hex[:12]}"
    started = time.monotonic()
    with Consumer(backend, topic, later, auto_offset_reset="earliest") as c:
        assert c.assignment() == {TopicPartition(topic, 0), TopicPartition(topic, 1)}
        assert c.position(TopicPartition(topic, 1)) == 0
        assert sorted(r.value for r in read_all(c, 3)) == [b"0", b"1", b"2"]
        assert time.monotonic() - started < 2.5, "the records took a group join"
        backend.create_topic(later, partitions=1)
        with Producer(backend) as p:
            p.send(later, b"new")
        assert [r.value for r in read_all(c, 1)] == [b"new"]
        assert TopicPartition(later, 0) in c.assignment()
        c.unsubscribe()
        assert c.assignment() == set()
    started = time.monotonic()
    with Consumer(backend, topic, auto_offset_reset="earliest", stop_at_end=True) as c:
        assert len(list(c)) == 3
    assert time.monotonic() - started < 2.5


def test_a_consumer_outside_a_running_group_cannot_commit_over_its_offsets(
        backend: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A consumer with the group's id but its own assign() could commit over
    the offsets of partitions a running member owns (the member's progress
    lost, records redelivered or skipped). Kafka's coordinator takes a
    commit from outside the group only while the group is empty
    (UNKNOWN_MEMBER_ID otherwise: CommitFailedError, Tansu too); a
    directory now does the same."""
    topic = new_topic(backend)
    group = f"g-{uuid.uuid4().hex[:8]}"
    tp = TopicPartition(topic, 0)
    with Producer(backend) as p:
        for i in range(3):
            p.send(topic, b"%d" % i)
    with Consumer(backend, topic, group_id=group, enable_auto_commit=False, **GROUP) as member:
        deadline = time.monotonic() + 20
        while not member.assignment() and time.monotonic() < deadline:
            member.poll(timeout=0.2)
        member.commit({tp: 2})
        with Consumer(backend, group_id=group, enable_auto_commit=False) as outsider:
            outsider.assign([tp])
            with pytest.raises(minikafka.CommitFailedError):
                outsider.commit({tp: 0})
        assert backend.committed_offsets(group) == {tp: 2}
        # Its auto-commit fails the same way: logged, not raised by poll.
        with Consumer(backend, group_id=group, auto_offset_reset="earliest",
                      auto_commit_interval=0.05) as outsider, caplog.at_level(logging.WARNING, "minikafka"):
            outsider.assign([tp])
            assert [r.offset for r in read_all(outsider, 1)] == [2]  # from the group's offset
            time.sleep(0.1)
            assert outsider.poll(timeout=0.1) == []
        assert "auto-commit of group" in caplog.text
        assert backend.committed_offsets(group) == {tp: 2}
    with Consumer(backend, group_id=group, enable_auto_commit=False) as outsider:
        outsider.assign([tp])
        deadline = time.monotonic() + 20  # Kafka: until the member's leave empties the group
        while True:
            try:
                outsider.commit({tp: 0})
                break
            except minikafka.CommitFailedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    assert backend.committed_offsets(group) == {tp: 0}
