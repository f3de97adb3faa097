"""Producer.send_many: the bulk path."""

from __future__ import annotations

import json

import pytest
import xxhash

import minikafka
from minikafka import Consumer, Producer, TopicPartition


def drain(consumer: Consumer) -> list[minikafka.Record]:
    out: list[minikafka.Record] = []
    while True:
        got = consumer.poll(timeout=0.05)
        if not got:
            return out
        out += got


def test_send_many_keyless_goes_to_one_partition_in_order(broker):
    broker.create_topic("t", partitions=3)
    with Producer(broker) as p:
        result = p.send_many("t", [b"v%d" % i for i in range(1000)])
    assert result.count == 1000
    partitions = {part for part, _, _ in result.batches}
    assert len(partitions) == 1
    (part,) = partitions
    c = Consumer(broker, group_id=None, auto_offset_reset="earliest")
    c.assign([TopicPartition("t", part)])
    records = drain(c)
    assert [r.value for r in records] == [b"v%d" % i for i in range(1000)]
    assert [r.offset for r in records] == list(range(1000))
    assert {r.timestamp for r in records} == {result.timestamp}


def test_send_many_keyed_uses_key_hash_and_metadata_matches(broker):
    topic = broker.create_topic("t", partitions=4)
    keys = [b"k%d" % (i % 13) for i in range(500)]
    values = [b"v%d" % i for i in range(500)]
    with Producer(broker) as p:
        result = p.send_many("t", values, keys)
    metadata = result.metadata()
    assert len(metadata) == 500
    for key, md in zip(keys, metadata, strict=True):
        assert md.partition == xxhash.xxh3_64_intdigest(key) % 4 == topic.partition_for(key)
    c = Consumer(broker, "t", auto_offset_reset="earliest")
    by_position = {(r.partition, r.offset): r for r in drain(c)}
    for key, value, md in zip(keys, values, metadata, strict=True):
        record = by_position[(md.partition, md.offset)]
        assert (record.key, record.value) == (key, value)


def test_send_many_after_send_keeps_producer_order(broker):
    broker.create_topic("t")
    with Producer(broker, linger_ms=10_000) as p:
        p.send("t", b"first")  # still buffered when send_many runs
        p.send_many("t", [b"second", b"third"], partition=0)
    c = Consumer(broker, "t", auto_offset_reset="earliest")
    assert [r.value for r in drain(c)] == [b"first", b"second", b"third"]


def test_send_many_spans_several_segments(make_broker):
    broker = make_broker(segment_bytes=64 * 1024)
    broker.create_topic("t")
    values = [bytes([i % 251]) * 300 for i in range(2000)]
    with Producer(broker) as p:
        result = p.send_many("t", values)
    assert len(result.batches) > 1
    assert len(list((broker.path / "topics" / "t" / "0").glob("*.log"))) > 1
    c = Consumer(broker, "t", auto_offset_reset="earliest")
    assert [r.value for r in drain(c)] == values


def test_send_many_null_and_empty_and_serializers(broker):
    broker.create_topic("t")
    with Producer(broker, value_serializer=lambda v: json.dumps(v).encode()) as p:
        p.send_many("t", [{"a": 1}, None, ""], [None, b"", b"k"])
    c = Consumer(broker, "t", auto_offset_reset="earliest", value_deserializer=json.loads)
    records = drain(c)
    assert [(r.key, r.value) for r in records[:1]] == [(None, {"a": 1})]
    assert records[1].key == b"" and records[1].value is None
    assert records[2].key == b"k" and records[2].value == ""


def test_send_many_validates_before_writing(broker):
    topic = broker.create_topic("t")
    with Producer(broker) as p:
        with pytest.raises(TypeError, match="value"):
            p.send_many("t", [b"ok", 42])
        with pytest.raises(TypeError, match="key"):
            p.send_many("t", [b"ok", b"ok"], [b"k", 1.5])
        with pytest.raises(minikafka.RecordTooLargeError, match="record 1"):
            p.send_many("t", [b"ok", b"x" * (2 << 20)])
        with pytest.raises(minikafka.InvalidArgumentError, match="lengths"):
            p.send_many("t", [b"a", b"b"], [b"k"])
        with pytest.raises(minikafka.InvalidPartitionError):
            p.send_many("t", [b"a"], partition=5)
        with pytest.raises(minikafka.TopicNotFoundError):
            p.send_many("nope", [b"a"])
    assert topic.end_offsets() == {0: 0}


def test_send_many_on_closed_producer(broker):
    broker.create_topic("t")
    p = Producer(broker)
    p.close()
    with pytest.raises(minikafka.ClosedError):
        p.send_many("t", [b"a"])


@pytest.mark.parametrize(
    ("keys", "values"),
    [
        ([b"k%04d" % i for i in range(3000)], [b"%06d" % i * 10 for i in range(3000)]),  # one shape
        (None, [b"%06d" % i for i in range(3000)]),  # keyless
        ([b"k%04d" % i for i in range(3000)], [b""] * 3000),  # empty values, not null
        ([b""] * 3000, [b""] * 3000),  # empty keys and values
        ([b"k%04d" % i for i in range(3000)], [None] * 3000),  # null values: the general loop
        ([b"k%04d" % i for i in range(3000)], [b"x" * (i % 7) for i in range(3000)]),  # mixed lengths
    ],
)
def test_send_many_uniform_and_mixed_shapes_read_back_exactly(make_broker, keys, values):
    # 16 KiB segments: batches must split to fit and segments roll.
    broker = make_broker(segment_bytes=16384)
    broker.create_topic("t")
    with Producer(broker) as p:
        result = p.send_many("t", values, keys, timestamp_ms=1234)
    assert sum(count for _, _, count in result.batches) == 3000
    assert [m.offset for m in result.metadata()] == list(range(3000))
    c = Consumer(broker, auto_offset_reset="earliest")
    c.assign([TopicPartition("t", 0)])
    records = drain(c)
    assert [r.offset for r in records] == list(range(3000))
    assert [r.value for r in records] == values
    assert [r.key for r in records] == (keys if keys is not None else [None] * 3000)
    assert {r.timestamp for r in records} == {1234}
    c.close()


def test_send_many_uniform_too_large_writes_nothing(broker):
    broker.create_topic("t")
    with Producer(broker, max_record_bytes=1000) as p:
        with pytest.raises(minikafka.RecordTooLargeError, match="'t'"):
            p.send_many("t", [b"x" * 2000] * 10, [b"k" * 8] * 10)
        p.send("t", b"after")
    assert broker.topic("t").end_offsets() == {0: 1}


def test_send_many_uniform_batches_match_the_general_loop(make_broker):
    """The uniform fast path cuts batches where the per-record loop would."""
    from minikafka.batch import build_uniform
    from minikafka.bulk import encode_bulk

    broker = make_broker()
    topic = broker.create_topic("t")
    values = [b"v" * 100] * 5000
    keys = [b"k" * 16] * 5000
    limits = {"batch_bytes": 16384, "max_batch": topic.config.max_batch_bytes,
              "max_record": topic.config.max_record_bytes}
    fast = encode_bulk("t", keys, values, 99, **limits)
    # A trailing mixed-length record forces the general loop for the rest.
    slow = encode_bulk("t", [*keys, b"kk"], [*values, b"v"], 99, **limits)
    fast_counts = [b.count for b in fast]
    slow_counts = [b.count for b in slow]
    assert fast_counts[:-1] == slow_counts[: len(fast) - 1]  # the same full batches
    assert bytes(fast[0].buf) == bytes(slow[0].buf)
    assert build_uniform(None, [b"ab"] * 3, -1, 2, 7, 2)[1].count == 1
