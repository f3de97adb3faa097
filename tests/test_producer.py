"""Producer: futures, metadata, partitioning, serialization, headers,
timestamps, size limits and lifecycle."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import pytest
import xxhash

import minikafka
from minikafka import Producer, RecordMetadata, RecordTooLargeError, TopicPartition


def read_all(broker, topic, partition=0, **consumer_options):
    """Every record of one partition, from its beginning."""
    end = broker.topic(topic).end_offsets()[partition]
    begin = broker.topic(topic).beginning_offsets()[partition]
    out = []
    with minikafka.Consumer(broker, auto_offset_reset="earliest", **consumer_options) as c:
        c.assign([TopicPartition(topic, partition)])
        deadline = time.monotonic() + 5
        while len(out) < end - begin and time.monotonic() < deadline:
            out.extend(c.poll(timeout=0.5))
    return out


def partition_counts(broker, topic):
    return broker.topic(topic).end_offsets()


# -- futures and metadata ---------------------------------------------------------


def test_send_returns_future_with_record_metadata(broker, producer):
    broker.create_topic("t")
    before = int(time.time() * 1000)
    fut = producer.send("t", b"hello")
    meta = fut.result(timeout=5)
    after = int(time.time() * 1000)
    assert isinstance(meta, RecordMetadata)
    assert meta.topic == "t"
    assert meta.partition == 0
    assert meta.offset == 0
    assert isinstance(meta.timestamp, int)
    assert before - 5 <= meta.timestamp <= after + 5
    assert fut.done()
    assert fut.exception() is None


def test_record_metadata_is_immutable(broker, producer):
    broker.create_topic("t")
    meta = producer.send("t", b"x").result(timeout=5)
    with pytest.raises(AttributeError):
        meta.offset = 5


def test_offsets_are_dense_per_partition(broker, producer):
    broker.create_topic("t", 2)
    futs = [producer.send("t", b"%d" % i, partition=i % 2) for i in range(200)]
    producer.flush()
    metas = [f.result() for f in futs]
    assert [m.offset for m in metas if m.partition == 0] == list(range(100))
    assert [m.offset for m in metas if m.partition == 1] == list(range(100))


def test_result_without_flush_writes_the_record(broker):
    broker.create_topic("t")
    with Producer(broker, linger_ms=10_000) as p:
        fut = p.send("t", b"v")
        start = time.monotonic()
        meta = fut.result(timeout=5)
        assert time.monotonic() - start < 2  # did not wait for the 10 s linger
        assert meta.offset == 0
        assert broker.topic("t").end_offsets() == {0: 1}


def test_flush_makes_every_future_done(broker):
    broker.create_topic("t", 3)
    with Producer(broker, linger_ms=10_000) as p:
        futs = [p.send("t", b"x" * 50) for _ in range(500)]
        futs += [p.send("t", b"k", key=b"key%d" % i) for i in range(100)]
        assert p.flush() is None
        assert all(f.done() for f in futs)
        assert all(f.exception() is None for f in futs)
        assert sum(broker.topic("t").end_offsets().values()) == 600


def test_records_wait_in_batch_until_flush(broker):
    broker.create_topic("t")
    with Producer(broker, linger_ms=60_000) as p:
        futs = [p.send("t", b"small") for _ in range(3)]
        time.sleep(0.05)
        # below batch_size and long before linger: nothing written yet
        assert broker.topic("t").end_offsets() == {0: 0}
        assert not any(f.done() for f in futs)
        p.flush()
        assert broker.topic("t").end_offsets() == {0: 3}
        assert [f.result().offset for f in futs] == [0, 1, 2]


def test_flush_with_timeout(broker, producer):
    broker.create_topic("t")
    futs = [producer.send("t", b"x") for _ in range(10)]
    producer.flush(timeout=5.0)
    assert all(f.done() for f in futs)


def test_linger_writes_without_flush(broker):
    broker.create_topic("t")
    with Producer(broker, linger_ms=5) as p:
        fut = p.send("t", b"x")
        deadline = time.monotonic() + 3
        while broker.topic("t").end_offsets()[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert broker.topic("t").end_offsets() == {0: 1}
        assert fut.result(timeout=1).offset == 0


def test_batch_size_triggers_write(broker):
    broker.create_topic("t")
    with Producer(broker, linger_ms=60_000, batch_size=1024) as p:
        for _ in range(50):
            p.send("t", b"x" * 100)
        # 5000 bytes > batch_size: full batches were written without flush
        assert broker.topic("t").end_offsets()[0] > 0


def test_add_done_callback_called_once_with_future(broker):
    broker.create_topic("t")
    calls = []
    with Producer(broker, linger_ms=10_000) as p:
        fut = p.send("t", b"x")
        fut.add_done_callback(calls.append)
        p.flush()
        assert calls == [fut]
        assert calls[0].result().offset == 0


def test_add_done_callback_on_done_future_runs_immediately(broker, producer):
    broker.create_topic("t")
    fut = producer.send("t", b"x")
    fut.result(timeout=5)
    calls = []
    fut.add_done_callback(calls.append)
    assert calls == [fut]


def test_close_flushes_pending_records(broker):
    broker.create_topic("t")
    p = Producer(broker, linger_ms=60_000)
    futs = [p.send("t", b"%d" % i) for i in range(25)]
    p.close()
    assert all(f.done() for f in futs)
    assert broker.topic("t").end_offsets() == {0: 25}
    assert [r.value for r in read_all(broker, "t")] == [b"%d" % i for i in range(25)]


def test_broker_close_writes_what_open_producers_hold(tmp_path):
    """Closing the broker before its producer (a ``with Broker`` block, a
    fixture's teardown) writes the records the producer still holds; they
    used to fail with "partition is closed" and were lost."""
    with minikafka.Broker(tmp_path) as b:
        b.create_topic("t", partitions=2)
        p = Producer(b, linger_ms=60_000)
        futs = [p.send("t", b"v%d" % i, key=b"k%d" % i) for i in range(20)]
        other = Producer(b, linger_ms=60_000)
        late = other.send("t", b"other", partition=0)
    metas = [f.result(timeout=0) for f in futs]
    assert late.result(timeout=0).partition == 0
    with pytest.raises(minikafka.ClosedError):
        p.send("t", b"after")
    p.close()  # nothing left to write; closing after the broker is fine
    with minikafka.Broker(tmp_path) as b:
        assert sum(b.topic("t").end_offsets().values()) == 21
        for meta in metas:
            assert meta.partition == b.topic("t").partition_for(b"k%d" % metas.index(meta))


def test_broker_close_warns_of_what_it_could_not_write(tmp_path, caplog):
    """A producer whose partition's writer lock is held elsewhere: close()
    waits request_timeout, the futures raise TimeoutError, a warning says so."""
    from minikafka.locking import FileLock

    b = minikafka.Broker(tmp_path, request_timeout=0.3)
    b.create_topic("t")
    p = Producer(b, linger_ms=60_000)
    fut = p.send("t", b"x")
    lock = FileLock(str(tmp_path / "topics" / "t" / "0" / "writer.lock"))
    holder = threading.Thread(target=lambda: (lock.acquire(), time.sleep(1.0), lock.release()))
    holder.start()
    time.sleep(0.1)
    started = time.monotonic()
    with caplog.at_level("WARNING", logger="minikafka"):
        b.close()
    assert time.monotonic() - started < 0.9
    holder.join()
    with pytest.raises(minikafka.TimeoutError):
        fut.result(timeout=0)
    assert "not written" in caplog.text


def test_context_manager_flushes_and_closes(broker):
    broker.create_topic("t")
    with Producer(broker, linger_ms=60_000) as p:
        assert p.send("t", b"a") is not None
    assert broker.topic("t").end_offsets() == {0: 1}
    with pytest.raises(minikafka.ClosedError):
        p.send("t", b"b")


def test_send_to_unknown_topic_raises_not_found(broker, producer):
    with pytest.raises(minikafka.TopicNotFoundError) as exc_info:
        producer.send("missing", b"x").result(timeout=5)
    assert "missing" in str(exc_info.value)
    assert broker.list_topics() == []


def test_auto_create_topics_creates_one_partition(make_broker):
    b = make_broker(auto_create_topics=True)
    with Producer(b) as p:
        meta = p.send("fresh", b"x").result(timeout=5)
    assert b.list_topics() == ["fresh"]
    assert b.topic("fresh").partitions == 1
    assert (meta.topic, meta.partition, meta.offset) == ("fresh", 0, 0)


def test_concurrent_producers_threads_dense_offsets(broker):
    broker.create_topic("t")
    per_thread, threads_n = 300, 4
    results: list[list[RecordMetadata]] = [[] for _ in range(threads_n)]

    def work(i, p):
        futs = [p.send("t", b"%d-%d" % (i, j)) for j in range(per_thread)]
        p.flush()
        results[i] = [f.result() for f in futs]

    with Producer(broker) as shared:
        threads = [threading.Thread(target=work, args=(i, shared)) for i in range(threads_n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    offsets = sorted(m.offset for r in results for m in r)
    assert offsets == list(range(per_thread * threads_n))
    for r in results:  # one thread's records keep their order
        assert [m.offset for m in r] == sorted(m.offset for m in r)


def test_two_producers_same_partition_dense(broker):
    broker.create_topic("t")
    with Producer(broker) as a, Producer(broker) as b:
        fa = [a.send("t", b"a") for _ in range(50)]
        fb = [b.send("t", b"b") for _ in range(50)]
        a.flush()
        b.flush()
    offsets = sorted(f.result().offset for f in fa + fb)
    assert offsets == list(range(100))


# -- partitioning --------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [{}, {"batch_size": 1024}, {"linger_ms": 0}],
    ids=["defaults", "small-batches", "no-linger"],
)
def test_keyless_records_spread_over_all_partitions(broker, options):
    partitions = 4
    broker.create_topic("t", partitions)
    n = 4000
    with Producer(broker, **options) as p:
        for _ in range(n):
            p.send("t", b"v" * 100)
    counts = partition_counts(broker, "t")
    assert sum(counts.values()) == n
    assert all(c > 0 for c in counts.values()), counts
    assert max(counts.values()) < 0.6 * n, counts


def test_explicit_partition_overrides_key(broker, producer):
    broker.create_topic("t", 4)
    key = b"some-key"
    natural = xxhash.xxh3_64_intdigest(key) % 4
    target = (natural + 1) % 4
    meta = producer.send("t", b"v", key=key, partition=target).result(timeout=5)
    assert meta.partition == target
    assert broker.topic("t").end_offsets()[target] == 1
    assert broker.topic("t").end_offsets()[natural] == 0


@pytest.mark.parametrize("partition", [0, 1, 2])
def test_explicit_partition_keyless(broker, producer, partition):
    broker.create_topic("t", 3)
    metas = [producer.send("t", b"v", partition=partition).result(timeout=5) for _ in range(5)]
    assert {m.partition for m in metas} == {partition}
    assert [m.offset for m in metas] == list(range(5))


def test_custom_partitioner_receives_key_and_count(broker):
    broker.create_topic("t", 3)
    calls = []

    def partitioner(key, num_partitions):
        calls.append((key, num_partitions))
        return 2 if key is None else len(key) % num_partitions

    with Producer(broker, partitioner=partitioner) as p:
        m_keyed = p.send("t", b"v", key=b"abcd").result(timeout=5)
        m_none = p.send("t", b"v").result(timeout=5)
        m_str = p.send("t", b"v", key="ab").result(timeout=5)
    assert m_keyed.partition == 4 % 3
    assert m_none.partition == 2
    assert m_str.partition == 2
    assert (b"abcd", 3) in calls
    assert (None, 3) in calls  # called for keyless records too
    assert (b"ab", 3) in calls  # str keys are passed encoded
    assert all(isinstance(k, (bytes, type(None))) and n == 3 for k, n in calls)


def test_custom_partitioner_gets_serialized_key(broker):
    broker.create_topic("t", 5)
    seen = []

    def partitioner(key, num_partitions):
        seen.append(key)
        return 4

    with Producer(broker, key_serializer=lambda k: json.dumps(k).encode(), partitioner=partitioner) as p:
        meta = p.send("t", b"v", key={"id": 1}).result(timeout=5)
    assert meta.partition == 4
    assert seen == [b'{"id": 1}']


def test_explicit_partition_bypasses_partitioner(broker):
    broker.create_topic("t", 3)
    calls = []

    def partitioner(key, n):
        calls.append(key)
        return 0

    with Producer(broker, partitioner=partitioner) as p:
        assert p.send("t", b"v", key=b"k", partition=1).result(timeout=5).partition == 1


def test_keyed_records_with_serializer_use_serialized_key(broker):
    topic = broker.create_topic("t", 7)
    with Producer(broker, key_serializer=lambda k: str(k).encode()) as p:
        metas = [(k, p.send("t", b"v", key=k).result(timeout=5)) for k in range(30)]
    for k, meta in metas:
        assert meta.partition == topic.partition_for(str(k).encode())


# -- values, keys, serializers -----------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (b"raw", b"raw"),
        (bytearray(b"array"), b"array"),
        (memoryview(b"view"), b"view"),
        ("héllo wörld ✓", "héllo wörld ✓".encode()),
        ("", b""),
        (b"", b""),
        (None, None),
    ],
    ids=["bytes", "bytearray", "memoryview", "str", "empty-str", "empty-bytes", "none"],
)
def test_value_and_key_types_accepted(broker, producer, given, stored):
    broker.create_topic("t")
    producer.send("t", given, key=given).result(timeout=5)
    (record,) = read_all(broker, "t")
    assert record.value == stored
    assert record.key == stored
    if stored is not None:
        assert type(record.value) is bytes
        assert type(record.key) is bytes


@pytest.mark.parametrize(
    "bad", [123, 1.5, {"a": 1}, [b"x"], object()], ids=["int", "float", "dict", "list", "object"]
)
def test_bad_value_type_raises_type_error_naming_value(broker, producer, bad):
    broker.create_topic("t")
    with pytest.raises(TypeError) as exc_info:
        producer.send("t", bad).result(timeout=5)
    assert "value" in str(exc_info.value)
    producer.flush()
    assert broker.topic("t").end_offsets() == {0: 0}


@pytest.mark.parametrize("bad", [123, 1.5, ("a",)], ids=["int", "float", "tuple"])
def test_bad_key_type_raises_type_error_naming_key(broker, producer, bad):
    broker.create_topic("t")
    with pytest.raises(TypeError) as exc_info:
        producer.send("t", b"ok", key=bad).result(timeout=5)
    assert "key" in str(exc_info.value)
    producer.flush()
    assert broker.topic("t").end_offsets() == {0: 0}


@pytest.mark.parametrize("what", ["key", "value"])
def test_text_that_is_not_utf8_raises_naming_the_argument(broker, producer, what):
    """A str with a lone surrogate raised a bare UnicodeEncodeError ("surrogates
    not allowed"), naming neither key nor value; send_many too."""
    broker.create_topic("t")
    bad = "ok\ud800"
    kwargs = {"key": bad} if what == "key" else {"value": bad}
    with pytest.raises(minikafka.InvalidArgumentError, match=rf"^{what} 'ok\\ud800' is not valid UTF-8"):
        producer.send("t", **kwargs)
    with pytest.raises(minikafka.InvalidArgumentError, match=rf"^{what} .* is not valid UTF-8"):
        producer.send_many("t", [bad] if what == "value" else [b"v"], keys=[bad] if what == "key" else None)
    producer.flush()
    assert broker.topic("t").end_offsets() == {0: 0}


def test_bad_type_does_not_break_later_sends(broker, producer):
    broker.create_topic("t")
    producer.send("t", b"a")
    with pytest.raises(TypeError):
        producer.send("t", 42)
    producer.send("t", b"b")
    producer.flush()
    assert [r.value for r in read_all(broker, "t")] == [b"a", b"b"]


def test_none_and_empty_are_distinct_after_round_trip(broker, producer):
    broker.create_topic("t")
    producer.send("t", None, key=None)
    producer.send("t", b"", key=b"")
    producer.send("t", b"", key=None)
    producer.send("t", None, key=b"")
    producer.flush()
    got = [(r.key, r.value) for r in read_all(broker, "t")]
    assert got == [(None, None), (b"", b""), (None, b""), (b"", None)]


def test_serializers_and_deserializers_round_trip(broker):
    broker.create_topic("t")
    values = [{"n": i, "s": "ü" * i} for i in range(5)]
    with Producer(
        broker,
        key_serializer=lambda k: k.encode("utf-8"),
        value_serializer=lambda v: json.dumps(v).encode("utf-8"),
    ) as p:
        for i, v in enumerate(values):
            p.send("t", v, key=f"k{i}")
    raw = read_all(broker, "t")
    assert raw[0].value == json.dumps(values[0]).encode()
    assert raw[0].key == b"k0"
    decoded = read_all(
        broker, "t", key_deserializer=lambda b: b.decode("utf-8"), value_deserializer=json.loads
    )
    assert [r.value for r in decoded] == values
    assert [r.key for r in decoded] == [f"k{i}" for i in range(5)]


def test_value_serializer_applies_to_non_bytes_objects(broker):
    broker.create_topic("t")
    with Producer(broker, value_serializer=lambda v: str(v).encode()) as p:
        p.send("t", 12345)  # an int is fine once a serializer turns it into bytes
    assert [r.value for r in read_all(broker, "t")] == [b"12345"]


def test_a_serializer_returning_a_wrong_type_is_named(broker):
    # The TypeError told a user who had set a value_serializer to "set a
    # value_serializer", not that the one set returned an int.
    broker.create_topic("t")
    with Producer(broker, value_serializer=lambda v: 5, key_serializer=lambda k: 5.0) as p:
        with pytest.raises(TypeError, match=r"value must be .*not int.*value_serializer.*return"):
            p.send("t", {"a": 1})
        with pytest.raises(TypeError, match=r"key must be .*not float.*key_serializer.*return"):
            p.send("t", b"v", key="k")
        with pytest.raises(TypeError, match=r"value must be .*not int.*value_serializer.*return"):
            p.send_many("t", [{"a": 1}])
    assert read_all(broker, "t") == []


@pytest.mark.parametrize(("values", "keys", "names"), [
    (None, None, "values"), (5, None, "values"), ([b"a"], 5, "keys"), ([b"a"], b"k", "keys")])
def test_send_many_of_a_non_iterable_names_the_argument(broker, producer, values, keys, names):
    # "'NoneType' object is not iterable" named neither values nor keys.
    broker.create_topic("t")
    with pytest.raises(TypeError, match=f"send_many {names} must be an iterable"):
        producer.send_many("t", values, keys)
    producer.flush()
    assert read_all(broker, "t") == []


def test_reprs_say_where_a_record_went_and_what_is_closed(broker):
    # A done future said only "done" (not its offset, nor that it failed);
    # a closed consumer looked like an open one with no partitions.
    broker.create_topic("t")
    with Producer(broker, linger_ms=10_000) as p:
        p.send("t", b"a").result(timeout=5)
        future = p.send("t", b"b")
        assert repr(future) == "<RecordFuture t/0 pending>"
        future.result(timeout=5)
        assert repr(future) == "<RecordFuture t/0 offset=1>"
    c = minikafka.Consumer(broker, "t", group_id="g")
    c.close()
    assert repr(c) == "<Consumer group='g' closed>"


def test_large_record_within_limit_round_trips(broker, producer):
    broker.create_topic("t")
    value = bytes(range(256)) * 1000  # 256 000 bytes
    producer.send("t", value, key=b"k").result(timeout=5)
    (record,) = read_all(broker, "t")
    assert record.value == value


# -- headers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, ()),
        ({}, ()),
        ([], ()),
        ({"a": b"1", "b": b"2"}, (("a", b"1"), ("b", b"2"))),
        ([("x", b"1"), ("x", b"2"), ("a", b"3")], (("x", b"1"), ("x", b"2"), ("a", b"3"))),
        ((("z", b""), ("y", b"\x00\xff")), (("z", b""), ("y", b"\x00\xff"))),
        ([("ünï", b"v")], (("ünï", b"v"),)),
    ],
    ids=["none", "empty-dict", "empty-list", "mapping", "pairs-duplicates", "tuple-pairs", "unicode-name"],
)
def test_headers_round_trip(broker, producer, given, expected):
    broker.create_topic("t")
    producer.send("t", b"v", headers=given).result(timeout=5)
    (record,) = read_all(broker, "t")
    assert record.headers == expected
    assert isinstance(record.headers, tuple)
    assert all(isinstance(h, tuple) and len(h) == 2 for h in record.headers)


def test_header_order_kept_for_many_headers(broker, producer):
    broker.create_topic("t")
    headers = [(f"h{i % 7}", b"%d" % i) for i in range(50)]
    producer.send("t", b"v", headers=headers).result(timeout=5)
    (record,) = read_all(broker, "t")
    assert record.headers == tuple(headers)


def test_header_with_non_str_name_raises_type_error(broker, producer):
    broker.create_topic("t")
    with pytest.raises(TypeError):
        producer.send("t", b"v", headers=[(1, b"x")]).result(timeout=5)


# -- timestamps -------------------------------------------------------------------------


@pytest.mark.parametrize("ts", [0, 1, 1_000_000_000_000, 1_700_000_000_123, 4_102_444_800_000])
def test_explicit_timestamp_round_trips(broker, producer, ts):
    broker.create_topic("t")
    meta = producer.send("t", b"v", timestamp_ms=ts).result(timeout=5)
    assert meta.timestamp == ts
    (record,) = read_all(broker, "t")
    assert record.timestamp == ts
    assert isinstance(record.timestamp, int)


def test_default_timestamp_is_now(broker, producer):
    broker.create_topic("t")
    before = int(time.time() * 1000)
    producer.send("t", b"v").result(timeout=5)
    after = int(time.time() * 1000)
    (record,) = read_all(broker, "t")
    assert before - 5 <= record.timestamp <= after + 5


def test_mixed_timestamps_in_one_batch(broker):
    broker.create_topic("t")
    stamps = [5_000, 1_000, 9_000, 1_000]
    with Producer(broker, linger_ms=10_000) as p:
        futs = [p.send("t", b"v", timestamp_ms=ts) for ts in stamps]
        p.flush()
        assert [f.result().timestamp for f in futs] == stamps
    assert [r.timestamp for r in read_all(broker, "t")] == stamps


# -- size limits -------------------------------------------------------------------------


def test_record_too_large_default_limit_writes_nothing(broker, producer):
    broker.create_topic("t")
    producer.send("t", b"before").result(timeout=5)
    with pytest.raises(RecordTooLargeError):
        producer.send("t", b"x" * ((1 << 20) + 1)).result(timeout=5)
    producer.flush()
    assert broker.topic("t").end_offsets() == {0: 1}
    meta = producer.send("t", b"after").result(timeout=5)
    assert meta.offset == 1  # no gap left by the rejected record
    assert [r.value for r in read_all(broker, "t")] == [b"before", b"after"]


def test_record_too_large_custom_limit(broker):
    broker.create_topic("t")
    with Producer(broker, max_record_bytes=1000) as p:
        p.send("t", b"x" * 100).result(timeout=5)
        with pytest.raises(RecordTooLargeError) as exc_info:
            p.send("t", b"x" * 2000)
        assert isinstance(exc_info.value, minikafka.MiniKafkaError)
        p.flush()
    assert broker.topic("t").end_offsets() == {0: 1}


def test_record_too_large_counts_key_and_headers(broker):
    broker.create_topic("t")
    with Producer(broker, max_record_bytes=1000) as p:
        with pytest.raises(RecordTooLargeError):
            p.send("t", b"v", key=b"k" * 2000)
        with pytest.raises(RecordTooLargeError):
            p.send("t", b"v", headers=[("h", b"x" * 2000)])
        p.flush()
    assert broker.topic("t").end_offsets() == {0: 0}


def test_record_larger_than_segment_raises(broker):
    broker.create_topic("small", segment_bytes=4096)
    with Producer(broker) as p:  # default max_record_bytes (1 MiB) > segment
        with pytest.raises(RecordTooLargeError):
            p.send("small", b"x" * 8000)
        p.flush()
    assert broker.topic("small").end_offsets() == {0: 0}


def test_record_too_large_does_not_drop_batched_records(broker):
    broker.create_topic("t")
    with Producer(broker, linger_ms=10_000, max_record_bytes=500) as p:
        f1 = p.send("t", b"a")
        with pytest.raises(RecordTooLargeError):
            p.send("t", b"x" * 1000)
        f2 = p.send("t", b"b")
        p.flush()
        assert [f1.result().offset, f2.result().offset] == [0, 1]


# -- partitions out of range, closed -------------------------------------------------------


@pytest.mark.parametrize("partition", [2, 7, -1])
def test_send_to_partition_out_of_range(broker, producer, partition):
    broker.create_topic("t", 2)
    with pytest.raises(minikafka.InvalidPartitionError) as exc_info:
        producer.send("t", b"x", partition=partition).result(timeout=5)
    assert isinstance(exc_info.value, ValueError)
    assert str(partition) in str(exc_info.value)
    producer.flush()
    assert broker.topic("t").end_offsets() == {0: 0, 1: 0}


def test_send_with_non_int_partition_raises_type_error(broker, producer):
    broker.create_topic("t", 2)
    with pytest.raises(TypeError):
        producer.send("t", b"x", partition="1")


def test_partitioner_returning_out_of_range_is_an_error(broker):
    broker.create_topic("t", 2)
    with Producer(broker, partitioner=lambda key, n: 9) as p:
        with pytest.raises(minikafka.InvalidPartitionError):
            p.send("t", b"x", key=b"k").result(timeout=5)
        p.flush()
    assert broker.topic("t").end_offsets() == {0: 0, 1: 0}


@pytest.mark.parametrize(
    "call",
    [
        lambda p: p.send("t", b"x"),
        lambda p: p.flush(),
    ],
    ids=["send", "flush"],
)
def test_closed_producer_raises_closed_error(broker, call):
    broker.create_topic("t")
    p = Producer(broker)
    p.close()
    with pytest.raises(minikafka.ClosedError):
        call(p)


def test_producer_requires_a_broker():
    with pytest.raises(TypeError):
        Producer("not a broker")


def test_many_small_records_all_arrive_in_order(broker):
    broker.create_topic("t")
    n = 5000
    with Producer(broker) as p:
        for i in range(n):
            p.send("t", b"%d" % i)
    records = read_all(broker, "t", max_poll_records=1000)
    assert [r.offset for r in records] == list(range(n))
    assert Counter(r.value for r in records) == Counter(b"%d" % i for i in range(n))
    assert [r.value for r in records] == [b"%d" % i for i in range(n)]


def test_linger_writes_a_batch_opened_while_the_linger_thread_slept(broker):
    """The linger thread is only woken when idle; a batch opened while it
    waits for an older one (since written by size) is still written on time."""
    broker.create_topic("t", partitions=2)
    with Producer(broker, linger_ms=200, batch_size=1024) as p:
        first = p.send("t", b"a", partition=0)  # the thread now waits ~200 ms for it
        time.sleep(0.05)
        for _ in range(20):  # fills and writes partition 0's batch by size
            p.send("t", b"x" * 100, partition=0)
        late = p.send("t", b"b", partition=1)  # a new batch while the thread sleeps
        assert first.done() and not late.done()
        deadline = time.monotonic() + 5
        while not late.done() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert late.done(), "a batch opened while the linger thread slept was never written"
        assert late.result().offset == 0
    with Producer(broker, linger_ms=20) as p:
        for _ in range(3):  # written, idle, then a new record: the idle thread is woken
            fut = p.send("t", b"c", partition=1)
            deadline = time.monotonic() + 5
            while not fut.done() and time.monotonic() < deadline:
                time.sleep(0.01)
            assert fut.done()
            time.sleep(0.1)
