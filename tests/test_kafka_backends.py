"""The Kafka-side halves of Producer and Consumer (minikafka/kafka/producing.py,
consuming.py) against a real broker, before they sit behind the facades.

Over 500 lines, kept as one file: both halves' tests share the fixtures
here (a broker client, a topic, a bare writer, consumer backends), and a
record written by one half is read back by the other."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from kafka_broker import FAST_GROUP, xfail_on_tansu

import minikafka
from minikafka import TopicPartition as TP
from minikafka.kafka.admin import KafkaBroker
from minikafka.kafka.consuming import KafkaConsumerBackend
from minikafka.kafka.producing import KafkaRecordWriter

FAST_CONSUMER = {"fetch.wait.max.ms": FAST_GROUP["fetch.wait.max.ms"]}


@attrs.frozen
class Settings:
    group_id: str | None = None
    auto_offset_reset: str = "earliest"
    key_deserializer: Any = None
    value_deserializer: Any = None
    session_timeout: float = FAST_GROUP["session.timeout.ms"] / 1000
    heartbeat_interval: float = FAST_GROUP["heartbeat.interval.ms"] / 1000
    max_poll_interval: float = 300.0


class Hooks:
    def __init__(self) -> None:
        self.calls: list[tuple[str, set[TP], str]] = []

    def assigned(self, partitions: set[TP]) -> None:
        self.calls.append(("assigned", set(partitions), ""))

    def revoking(self, partitions: set[TP], reason: str) -> None:
        self.calls.append(("revoking", set(partitions), reason))


@pytest.fixture
def kbroker(kafka_url: str) -> Iterator[KafkaBroker]:
    broker = minikafka.connect(kafka_url, request_timeout=10, consumer_config=FAST_CONSUMER)
    assert isinstance(broker, KafkaBroker)
    yield broker
    broker.close()


@pytest.fixture
def topic(kbroker: KafkaBroker) -> str:
    name = f"b-{uuid.uuid4().hex[:10]}"
    kbroker.create_topic(name, partitions=3)
    return name


@pytest.fixture
def writer(kbroker: KafkaBroker) -> Iterator[KafkaRecordWriter]:
    w = KafkaRecordWriter(kbroker.config, request_timeout=10)
    yield w
    w.close()


@pytest.fixture
def make_backend(kbroker: KafkaBroker) -> Iterator[Any]:
    made: list[KafkaConsumerBackend] = []

    def make(hooks: Hooks | None = None, **settings: Any) -> KafkaConsumerBackend:
        backend = KafkaConsumerBackend(kbroker, Settings(**settings), hooks or Hooks())
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


def fetch_all(backend: KafkaConsumerBackend, count: int, timeout: float = 10.0) -> list[minikafka.Record]:
    out: list[minikafka.Record] = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        out.extend(backend.fetch(500, 0.2))
    return out


def test_round_trip_keeps_every_field(writer: KafkaRecordWriter, make_backend: Any, topic: str) -> None:
    sent = [
        (0, b"k0", b"v0", [("a", b"1"), ("a", b"2"), ("b", None)], 1_600_000_000_000),
        (0, None, b"no key", [], 1_600_000_000_001),
        (1, b"", b"", [("x", b"")], 1_600_000_000_002),
        (2, b"k", None, None, 1_700_000_000_000),
    ]
    deliveries = [writer.produce(topic, p, k, v, h, ts) for p, k, v, h, ts in sent]
    metas = [d.result(timeout=10) for d in deliveries]
    assert [(m.partition, m.offset, m.timestamp) for m in metas] == [
        (0, 0, 1_600_000_000_000), (0, 1, 1_600_000_000_001), (1, 0, 1_600_000_000_002),
        (2, 0, 1_700_000_000_000)]
    backend = make_backend()
    backend.assign([TP(topic, p) for p in range(3)])
    got = sorted(fetch_all(backend, 4), key=lambda r: (r.partition, r.offset))
    assert [(r.partition, r.offset, r.key, r.value, r.headers, r.timestamp) for r in got] == [
        (0, 0, b"k0", b"v0", (("a", b"1"), ("a", b"2"), ("b", None)), 1_600_000_000_000),
        (0, 1, None, b"no key", (), 1_600_000_000_001),
        (1, 0, b"", b"", (("x", b""),), 1_600_000_000_002),
        (2, 0, b"k", None, (), 1_700_000_000_000),
    ]
    assert {tp: backend.position(tp) for tp in backend.assignment()} == {
        TP(topic, 0): 2, TP(topic, 1): 1, TP(topic, 2): 1}


def test_deliveries_settle_without_flush(writer: KafkaRecordWriter, topic: str) -> None:
    done: list[int] = []
    d = writer.produce(topic, 1, b"k", b"v", None, int(time.time() * 1000))
    d.add_done_callback(lambda delivery: done.append(delivery.result(0).offset))
    deadline = time.monotonic() + 10
    while not d.done() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert d.done() and done == [0]
    assert d.result(timeout=0).offset == 0


def test_callbacks_and_waiters_racing_delivery_reports_each_run_once(writer: KafkaRecordWriter,
                                                                    topic: str) -> None:
    """Reports skip the callback lock when nobody holds it (HeldCountLock):
    callbacks added and result() waits started while reports arrive in the
    poller thread still see every record once, with its own offset."""
    n = 3000
    futures: list[Any] = []
    seen: list[int] = []
    waited: list[int] = []
    added = threading.Event()

    def add_callbacks() -> None:  # races the deliveries of what was just produced
        i = 0
        while i < n:
            if i < len(futures):
                futures[i].add_done_callback(lambda f: seen.append(f.result(0).offset))
                i += 1
            else:
                time.sleep(0)
        added.set()

    def wait_some() -> None:
        for i in range(0, n, 97):
            while i >= len(futures):
                time.sleep(0)
            waited.append(futures[i].result(timeout=10).offset)

    threads = [threading.Thread(target=add_callbacks), threading.Thread(target=wait_some)]
    for t in threads:
        t.start()
    for i in range(n):
        futures.append(writer.produce(topic, 0, None, b"%d" % i, None, 1000 + i))
    for t in threads:
        t.join(30)
    writer.flush(10)
    assert added.is_set()
    assert sorted(seen) == list(range(n))
    assert waited == list(range(0, n, 97))
    assert [f.result(0).offset for f in futures] == list(range(n))


def test_a_report_settles_under_the_lock_while_a_callback_or_waiter_holds_it(writer: KafkaRecordWriter,
                                                                           topic: str) -> None:
    """The HeldCountLock rule, made to happen: a report that arrives while
    add_done_callback is between its check and its append waits for it and
    runs the callback; a result() waiting (serving reports in turn) sees a
    report that another thread served."""
    import confluent_kafka

    calls: list[int] = []
    d = fut = writer.delivery_class(topic, 0)()
    with d.lock:  # as add_done_callback: the lock taken, the record not done yet
        assert not fut.done()
        report = threading.Thread(target=d, args=(None, confluent_kafka.Message(offset=5)))
        report.start()
        report.join(0.2)
        assert report.is_alive() and fut.done()  # offset set, settling waits for the lock
        d.callbacks = [(lambda f: calls.append(f.result(0).offset), fut)]
    report.join(5)
    assert calls == [5]

    d2 = fut2 = writer.delivery_class(topic, 0)()
    got: list[int] = []
    waiter = threading.Thread(target=lambda: got.append(fut2.result(timeout=10).offset))
    waiter.start()
    time.sleep(0.2)  # the waiter is in wait_for
    t0 = time.monotonic()
    d2(None, confluent_kafka.Message(offset=7))
    waiter.join(5)
    assert got == [7] and time.monotonic() - t0 < 1
    assert writer.callback_lock.held == 0


def test_records_name_their_topic_after_the_consumer_moves_to_another(
        writer: KafkaRecordWriter, kbroker: KafkaBroker, make_backend: Any, topic: str) -> None:
    """A consumer that only ever had one topic takes the records' topic from
    it, not from each message; once it had a second, from each message."""
    other = f"b-{uuid.uuid4().hex[:10]}"
    kbroker.create_topic(other, partitions=1)
    for t in (topic, other):
        writer.produce(t, 0, None, t.encode(), None, 0)
    writer.flush(10)
    backend = make_backend()
    backend.assign([TP(topic, 0)])
    assert backend._one_topic == topic
    assert [(r.topic, r.value) for r in fetch_all(backend, 1)] == [(topic, topic.encode())]
    backend.assign([TP(other, 0)])
    assert backend._one_topic is None
    assert [(r.topic, r.value) for r in fetch_all(backend, 1)] == [(other, other.encode())]
    backend.assign([TP(topic, 0), TP(other, 0)])
    backend.seek(TP(topic, 0), 0)
    backend.seek(TP(other, 0), 0)
    got = sorted((r.topic, r.value) for r in fetch_all(backend, 2))
    assert got == sorted([(topic, topic.encode()), (other, other.encode())])


def _wait_idle(writer: KafkaRecordWriter) -> None:
    deadline = time.monotonic() + 10
    while not writer.idle and time.monotonic() < deadline:
        time.sleep(0.005)
    assert writer.idle, "the poller did not go idle with nothing in flight"


def test_the_sending_thread_serves_delivery_reports(kbroker: KafkaBroker, topic: str) -> None:
    """As a confluent-kafka application calls poll(0): the thread that sends
    serves the reports every SERVE_EVERY sends (a poller thread serving them
    would wait for the GIL once per report)."""
    from minikafka.kafka import producing

    p = minikafka.Producer(kbroker, linger_ms=1)
    sender = threading.get_ident()
    threads: list[int] = []
    futures = []
    deadline = time.monotonic() + 20
    while sum(t == sender for t in threads) < 100 and time.monotonic() < deadline:
        for i in range(producing.SERVE_EVERY):
            f = p.send(topic, b"%d" % i, partition=0)
            f.add_done_callback(lambda f: threads.append(threading.get_ident()))
            futures.append(f)
        time.sleep(0.002)  # replies arrive while the sender is still sending
    p.flush(10)
    p.close()
    assert len(threads) == len(futures)
    assert sum(t == sender for t in threads) >= 100


def test_a_waiting_result_serves_the_reports_itself(writer: KafkaRecordWriter, topic: str) -> None:
    """result() and flush() do not depend on the poller thread: they serve
    the delivery reports while they wait."""
    writer._stop.set()
    writer._wake.ring()
    writer._poller.join(5)
    assert not writer._poller.is_alive()
    f = writer.produce(topic, 0, None, b"v", None, 0)
    assert f.result(timeout=10).offset == 0
    rest = [writer.produce(topic, 0, None, b"w", None, 0) for _ in range(50)]
    writer.flush(10)
    assert [r.result(0).offset for r in rest] == list(range(1, 51))


def test_a_bell_keeps_one_ring_and_wakes_a_waiting_thread() -> None:
    """The idle poller's Bell: a ring before the wait is kept, rings before
    one wait count as one, and a ring wakes a thread already waiting."""
    from minikafka.kafka.producing import Bell

    bell = Bell()
    bell.ring()
    bell.ring()
    bell.wait()  # the kept ring: returns at once
    woke = threading.Event()

    def waiter() -> None:
        bell.wait()  # the second ring was not kept: waits for the next
        woke.set()

    t = threading.Thread(target=waiter)
    t.start()
    assert not woke.wait(0.2)
    bell.ring()
    assert woke.wait(5)
    t.join(5)


def test_an_idle_poller_wakes_for_the_next_send(writer: KafkaRecordWriter, topic: str) -> None:
    """With nothing in flight the poller sleeps until a send wakes it; a
    record whose only observer is a done callback (no flush, no result, no
    more sends) still settles. Repeated, since the send can race the
    poller going idle."""
    for i in range(40):
        if i % 2 == 0:
            _wait_idle(writer)
        done = threading.Event()
        writer.produce(topic, 1, None, b"%d" % i, None, 0).add_done_callback(lambda f, d=done: d.set())
        assert done.wait(10), f"round {i}: a callback-only record did not settle"


def test_a_record_left_pending_by_close_raises_closed_error(writer: KafkaRecordWriter, topic: str) -> None:
    never_sent = writer.delivery_class(topic, 0)()
    writer.close()
    with pytest.raises(minikafka.ClosedError, match="closed before it was acknowledged"):
        never_sent.result(timeout=1)


def test_a_future_is_a_record_future_and_reports_the_stored_timestamp(kbroker: KafkaBroker,
                                                                      topic: str) -> None:
    """The Kafka future is the record's Delivery: a RecordFuture whose
    metadata timestamp is what the report says was stored."""
    p = minikafka.Producer(kbroker)
    before = int(time.time() * 1000)
    f = p.send(topic, b"v", b"k")
    given = p.send(topic, b"v", partition=0, timestamp_ms=1_600_000_000_000)
    assert isinstance(f, minikafka.RecordFuture) and isinstance(given, minikafka.RecordFuture)
    md = f.get(10)
    assert before <= md.timestamp <= int(time.time() * 1000) + 1
    assert given.result(10).timestamp == 1_600_000_000_000
    assert f.exception(0) is None and f.done() and "done" in repr(f)
    p.close()


def test_timestamp_zero_means_now_to_confluent_kafka(writer: KafkaRecordWriter, make_backend: Any,
                                                     topic: str) -> None:
    """A KAFKA.md difference: confluent-kafka sends timestamp 0 as "now"."""
    before = int(time.time() * 1000)
    writer.produce(topic, 0, None, b"v", None, 0).result(timeout=10)
    backend = make_backend()
    backend.assign([TP(topic, 0)])
    [record] = fetch_all(backend, 1)
    assert record.timestamp >= before


def test_deserializers_apply_to_non_none_only(writer: KafkaRecordWriter, make_backend: Any,
                                              topic: str) -> None:
    writer.produce(topic, 0, b"7", b"hello", None, 1).result(timeout=10)
    writer.produce(topic, 0, None, None, None, 2).result(timeout=10)
    backend = make_backend(key_deserializer=int, value_deserializer=bytes.decode)
    backend.assign([TP(topic, 0)])
    assert [(r.key, r.value) for r in fetch_all(backend, 2)] == [(7, "hello"), (None, None)]


def _fill(writer: KafkaRecordWriter, topic: str, partition: int, n: int) -> None:
    deliveries = [writer.produce(topic, partition, None, b"%d" % i, None, 1000 + i) for i in range(n)]
    writer.flush(10)
    assert [d.result(0).offset for d in deliveries] == list(range(n))


def test_latest_position_is_the_high_watermark(writer: KafkaRecordWriter, make_backend: Any,
                                               topic: str) -> None:
    """Known at once (librdkafka says -1001 until a fetch), and right even
    where ListOffsets 'latest' is not (Tansu: last batch base + 1)."""
    _fill(writer, topic, 0, 10)  # one batch
    backend = make_backend(auto_offset_reset="latest")
    backend.assign([TP(topic, 0)])
    assert backend.position(TP(topic, 0)) == 10
    assert backend.fetch(10, 0.3) == []
    writer.produce(topic, 0, None, b"new", None, 5000).result(timeout=10)
    [record] = fetch_all(backend, 1)
    assert (record.offset, record.value) == (10, b"new")


def test_seek_right_after_assign_and_back(writer: KafkaRecordWriter, make_backend: Any, topic: str) -> None:
    _fill(writer, topic, 0, 10)
    tp = TP(topic, 0)
    backend = make_backend()
    backend.assign([tp])
    backend.seek(tp, 7)
    assert backend.position(tp) == 7
    assert [r.offset for r in fetch_all(backend, 3)] == [7, 8, 9]
    backend.seek(tp, 2)
    assert [r.offset for r in fetch_all(backend, 8)] == list(range(2, 10))


def test_pause_and_resume(writer: KafkaRecordWriter, make_backend: Any, topic: str) -> None:
    _fill(writer, topic, 0, 5)
    _fill(writer, topic, 1, 5)
    tp0, tp1 = TP(topic, 0), TP(topic, 1)
    backend = make_backend()
    backend.assign([tp0, tp1])
    backend.pause([tp1])
    assert backend.paused() == {tp1}
    got = fetch_all(backend, 5)
    assert {r.partition for r in got} == {0}
    assert backend.fetch(100, 0.3) == []
    backend.resume([tp1])
    assert [r.offset for r in fetch_all(backend, 5) if r.partition == 1] == list(range(5))


def test_commit_and_committed_with_assign(writer: KafkaRecordWriter, make_backend: Any, topic: str,
                                          kbroker: KafkaBroker) -> None:
    _fill(writer, topic, 2, 6)
    group = f"g-{uuid.uuid4().hex[:8]}"
    tp = TP(topic, 2)
    first = make_backend(group_id=group)
    first.assign([tp])
    assert first.committed(tp) is None
    assert [r.offset for r in fetch_all(first, 4)][:4] == [0, 1, 2, 3]
    first.commit({tp: 4})
    assert first.committed(tp) == 4
    assert kbroker.lag(group) == {tp: 2}
    second = make_backend(group_id=group, auto_offset_reset="none")
    second.assign([tp])
    assert second.position(tp) == 4
    assert [r.offset for r in fetch_all(second, 2)] == [4, 5]


def test_no_offset_with_reset_none(make_backend: Any, topic: str) -> None:
    """Assigned all the same (a seek gives it a start); position and fetch raise."""
    backend = make_backend(group_id=f"g-{uuid.uuid4().hex[:8]}", auto_offset_reset="none")
    backend.assign([TP(topic, 0)])
    assert backend.assignment() == {TP(topic, 0)}
    with pytest.raises(minikafka.NoOffsetError, match=rf"{topic}/0: no committed offset"):
        backend.position(TP(topic, 0))
    with pytest.raises(minikafka.NoOffsetError, match=rf"{topic}/0: no committed offset"):
        backend.fetch(10, 0.1)


def test_lookups(writer: KafkaRecordWriter, make_backend: Any, topic: str) -> None:
    _fill(writer, topic, 0, 10)
    backend = make_backend()
    tps = [TP(topic, 0), TP(topic, 1)]
    assert backend.beginning_offsets(tps) == {tps[0]: 0, tps[1]: 0}
    assert backend.end_offsets(tps) == {tps[0]: 10, tps[1]: 0}


def test_at_end_asks_the_broker_only_once_fetches_saw_no_more(writer: KafkaRecordWriter,
                                                               kbroker: KafkaBroker, topic: str) -> None:
    """While a fetch has seen records past the position, ``at_end`` needs no
    request (stop_at_end iteration asks on every batch)."""
    _fill(writer, topic, 0, 10)
    with minikafka.Consumer(kbroker, auto_offset_reset="earliest") as c:
        c.assign([TP(topic, 0)])
        got = c.poll(timeout=10, max_records=2)
        assert [r.offset for r in got] == [0, 1]
        assert not c.at_end()
        assert kbroker._probe is None  # no end offset was asked for
        while len(got) < 10:
            got += c.poll(timeout=10)
        assert c.at_end()  # seen up to the position: asked, and at the end
        assert kbroker._probe is not None


@xfail_on_tansu("ListOffsets by timestamp always answers 0")
def test_offsets_for_times(writer: KafkaRecordWriter, make_backend: Any, topic: str) -> None:
    _fill(writer, topic, 0, 10)  # timestamps 1000..1009
    backend = make_backend()
    tp = TP(topic, 0)
    assert backend.offsets_for_times({tp: 1004}) == {tp: 4}
    assert backend.offsets_for_times({tp: 99_999}) == {tp: None}


def test_seek_past_the_end_falls_back_to_reset(writer: KafkaRecordWriter, make_backend: Any,
                                                topic: str) -> None:
    _fill(writer, topic, 0, 3)
    tp = TP(topic, 0)
    backend = make_backend(auto_offset_reset="earliest")
    backend.assign([tp])
    backend.seek(tp, 50)
    assert [r.offset for r in fetch_all(backend, 3, timeout=2)] == [0, 1, 2]


def test_group_subscription_runs_the_hooks(writer: KafkaRecordWriter, make_backend: Any, topic: str) -> None:
    _fill(writer, topic, 0, 3)
    group = f"g-{uuid.uuid4().hex[:8]}"
    hooks = Hooks()
    backend = make_backend(hooks, group_id=group)
    backend.subscribe((topic,))
    assert backend.rebalancing()
    got = fetch_all(backend, 3, timeout=15)
    assert [r.offset for r in got if r.partition == 0] == [0, 1, 2]
    assert not backend.rebalancing()
    everything = {TP(topic, p) for p in range(3)}
    assert hooks.calls[0] == ("assigned", everything, "")
    assert backend.assignment() == everything
    backend.commit({TP(topic, 0): 3})
    assert backend.committed(TP(topic, 0)) == 3
    with pytest.raises(minikafka.CommitFailedError, match="does not own"):
        backend.commit({TP(topic + "-other", 0): 1})
    backend.close()
    assert hooks.calls[-1] == ("revoking", everything, "leave")


def test_closed_backends_refuse_calls(writer: KafkaRecordWriter, make_backend: Any, topic: str) -> None:
    backend = make_backend()
    backend.close()
    backend.close()
    with pytest.raises(minikafka.ClosedError):
        backend.fetch(1, 0)
    writer.close()
    writer.close()
    with pytest.raises(minikafka.ClosedError):
        writer.produce(topic, 0, None, b"v", None, 1)


def test_a_failing_deserializer_loses_no_record(writer: KafkaRecordWriter, make_backend: Any,
                                                topic: str) -> None:
    for i, v in enumerate([b"a", b"b", b"bad", b"c"]):
        writer.produce(topic, 0, None, v, None, 1 + i)
    writer.flush(10)
    failing = [True]

    def decode(value: bytes) -> str:
        if value == b"bad" and failing[0]:
            failing[0] = False
            raise ValueError("cannot decode")
        return value.decode()

    backend = make_backend(value_deserializer=decode)
    tp = TP(topic, 0)
    backend.assign([tp])
    got: list[minikafka.Record] = []
    deadline = time.monotonic() + 10
    raised = False
    while len(got) < 4 and time.monotonic() < deadline:
        try:
            got.extend(backend.fetch(500, 0.2))
        except ValueError:
            raised = True
    assert raised
    assert [(r.offset, r.value) for r in got] == [(0, "a"), (1, "b"), (2, "bad"), (3, "c")]
    assert backend.position(tp) == 4


def test_a_header_name_with_a_nul_is_refused_not_cut(kbroker: KafkaBroker, topic: str) -> None:
    """librdkafka takes header names as C strings: "a\\x00b" came back as "a"
    (the local backend keeps it). send now refuses it, naming the header,
    and writes nothing; values may hold NUL bytes."""
    with minikafka.Producer(kbroker) as p:
        with pytest.raises(minikafka.InvalidArgumentError, match=r"header name 'a\\x00b'"):
            p.send(topic, b"v", headers=[("ok", b"1"), ("a\x00b", b"x")])
        p.send(topic, b"v\x00w", headers=[("ok", b"x\x00y")])
    from minikafka.testing import read_topic
    records = read_topic(kbroker, topic, timeout=30)
    assert [(r.value, r.headers) for r in records] == [(b"v\x00w", (("ok", b"x\x00y"),))]
