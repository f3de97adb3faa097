"""Clients dropped without close(), on both backends: like an unclosed
file, a Producer or Consumer that is garbage-collected warns
(ResourceWarning) and closes itself, so a group rebalances and no thread
is left running (an AsyncProducer's or a remote AsyncConsumer's in a thread of its
own, off the event loop: tests wait for it with ``_join_closers``)."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

import pytest

import minikafka
from minikafka import AsyncConsumer, AsyncProducer, Consumer, Producer
from minikafka.closeable import wait_for_closes
from minikafka.testing import read_topic

# Long sessions: a member that merely stopped heartbeating is not dropped
# within the test, so a rebalance in time means the dropped member left.
DIR_GROUP = {"session_timeout": 60.0, "heartbeat_interval": 0.05}
# Tansu's join takes about half the session timeout (KAFKA.md).
KAFKA_GROUP = {"session_timeout": 1.5, "heartbeat_interval": 0.3}


def _group(broker: Any) -> dict[str, Any]:
    return DIR_GROUP if isinstance(broker, minikafka.Broker) else KAFKA_GROUP


def _threads(prefix: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


def _take_all(consumer: Consumer, partitions: int, timeout: float) -> float:
    """Poll until ``consumer`` owns ``partitions`` partitions; the seconds it took."""
    t0 = time.monotonic()
    while len(consumer.assignment()) < partitions:
        assert time.monotonic() - t0 < timeout, f"owns {consumer.assignment()} after {timeout} s"
        consumer.poll(0.05)
    return time.monotonic() - t0


def _join_closers(timeout: float = 10.0) -> None:
    """Wait for the closes of dropped async clients (``closeable.close_in_thread``)."""
    assert wait_for_closes(timeout), f"dropped clients still closing after {timeout} s"


def _collect_warnings() -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    return [w for w in caught if issubclass(w.category, ResourceWarning)]


def test_a_dropped_group_consumer_leaves_its_group(backend: Any) -> None:
    """The heartbeat thread held the consumer: one dropped without close()
    was never collected, kept heartbeating and kept its partitions, so the
    other members never got them (until the process exited)."""
    topic = f"t-{uuid.uuid4().hex[:12]}"
    backend.create_topic(topic, partitions=4)
    group = f"g-{uuid.uuid4().hex[:8]}"
    first = Consumer(backend, topic, group_id=group, auto_offset_reset="earliest", **_group(backend))
    _take_all(first, 4, 20)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del first
        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) and "unclosed" in str(w.message)
               for w in caught), [str(w.message) for w in caught]
    if isinstance(backend, minikafka.Broker):
        assert _threads("minikafka-heartbeat") == []
    second = Consumer(backend, topic, group_id=group, auto_offset_reset="earliest", **_group(backend))
    try:
        _take_all(second, 4, 15)
    finally:
        second.close()


def test_a_dropped_consumer_in_a_cycle_still_commits_and_runs_on_revoke(tmp_path: Path) -> None:
    """Only the cycle collector frees a consumer its own listener refers to;
    it clears weak references first, yet the close still runs the listener
    and the final auto-commit."""
    with minikafka.Broker(tmp_path / "data") as broker:
        broker.create_topic("t", partitions=2)
        with Producer(broker) as p:
            for i in range(6):
                p.send("t", b"%d" % i, partition=i % 2)
        revoked: list[set[minikafka.TopicPartition]] = []

        def read_three() -> None:
            c = Consumer(broker, group_id="g", auto_offset_reset="earliest", **DIR_GROUP)
            c.subscribe(["t"], listener=type("L", (), {
                "on_revoke": lambda self, ps: revoked.append(ps) or c.assignment()})())
            got = 0
            while got < 3:
                got += len(c.poll(0.5, max_records=3 - got))

        gc.disable()  # only the explicit collection below frees it
        try:
            read_three()
            found = _collect_warnings()
        finally:
            gc.enable()
        assert found, "no ResourceWarning"
        assert revoked and set().union(*revoked) == {minikafka.TopicPartition("t", 0),
                                                      minikafka.TopicPartition("t", 1)}
        assert sum(broker.committed_offsets("g").values()) == 3


def test_a_dropped_async_consumer_leaves_its_group(tmp_path: Path) -> None:
    with minikafka.Broker(tmp_path / "data") as broker:
        broker.create_topic("t", partitions=3)

        async def main() -> None:
            async def join_and_drop() -> None:
                c = AsyncConsumer(broker, "t", group_id="g", **DIR_GROUP)
                assert len(c.assignment()) == 3

            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                await join_and_drop()
                gc.collect()
            assert any(issubclass(w.category, ResourceWarning) for w in caught)
            other = AsyncConsumer(broker, "t", group_id="g", **DIR_GROUP)
            try:
                t0 = time.monotonic()
                while len(other.assignment()) < 3:
                    assert time.monotonic() - t0 < 10, other.assignment()
                    await other.getmany(timeout_ms=50)
            finally:
                await other.close()

        asyncio.run(main())
        _join_closers()
        assert _threads("minikafka-heartbeat") == []


def test_a_dropped_producer_writes_what_it_held_and_stops_its_thread(backend: Any) -> None:
    """A producer dropped without close() left its linger (local) or
    delivery (Kafka) thread running until exit: one more thread per
    dropped producer."""
    topic = f"t-{uuid.uuid4().hex[:12]}"
    backend.create_topic(topic)
    prefix = "minikafka-linger" if isinstance(backend, minikafka.Broker) else "minikafka-kafka-delivery"
    before = len(_threads(prefix))

    def send_and_drop(n: int) -> None:
        p = Producer(backend, linger_ms=60_000)
        p.send(topic, b"r%d" % n)

    for n in range(3):
        send_and_drop(n)
    gc.collect()
    deadline = time.monotonic() + 5
    while len(_threads(prefix)) > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(_threads(prefix)) == before
    c = Consumer(backend, auto_offset_reset="earliest")
    c.assign([minikafka.TopicPartition(topic, 0)])
    got: list[bytes] = []
    deadline = time.monotonic() + 15
    while len(got) < 3 and time.monotonic() < deadline:
        got += [r.value for r in c.poll(0.2)]
    c.close()
    assert sorted(got) == [b"r0", b"r1", b"r2"]


def test_a_dropped_producer_warns(tmp_path: Path) -> None:
    with minikafka.Broker(tmp_path / "data") as broker:
        broker.create_topic("t")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            p = Producer(broker, linger_ms=60_000)
            p.send("t", b"held")
            del p
        assert [w.category for w in caught] == [ResourceWarning]
        assert [r.value for r in read_topic(broker, "t")] == [b"held"]

        async def main() -> None:
            p = AsyncProducer(broker, linger_ms=60_000)
            await p.send("t", b"async")

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            asyncio.run(main())
            gc.collect()
        assert ResourceWarning in [w.category for w in caught]
        _join_closers()  # it closes in a thread of its own
        assert [r.value for r in read_topic(broker, "t")] == [b"held", b"async"]


def test_closed_clients_do_not_warn(tmp_path: Path) -> None:
    with minikafka.Broker(tmp_path / "data") as broker:
        broker.create_topic("t")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with Producer(broker) as p:
                p.send("t", b"x")
            with Consumer(broker, "t", group_id="g", **DIR_GROUP):
                pass
            del p
            gc.collect()
        assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_commit_and_close_against_a_frozen_kafka_broker_honour_request_timeout(frozen_kafka: Any) -> None:
    """librdkafka's sync commit and close have no timeout: against a broker
    that stopped answering (SIGSTOP: connected, silent) Consumer.commit()
    and Consumer.close() waited for minutes (over 100 s measured), and an
    AsyncConsumer's cancelled close left its worker thread stuck there."""
    bootstrap, freeze = frozen_kafka
    broker = minikafka.connect(f"kafka://{bootstrap}", request_timeout=2.0,
                               consumer_config={"fetch.wait.max.ms": 50})
    try:
        broker.create_topic("t")
        with Producer(broker) as p:
            p.send("t", b"x")
        c = Consumer(broker, "t", group_id="g", auto_offset_reset="earliest", **KAFKA_GROUP)
        got: list[minikafka.Record] = []
        deadline = time.monotonic() + 20
        while not got and time.monotonic() < deadline:
            got = c.poll(0.2)
        assert got
        freeze()
        t0 = time.monotonic()
        with pytest.raises(minikafka.TimeoutError, match="request_timeout"):
            c.commit()
        assert time.monotonic() - t0 < 5
        t0 = time.monotonic()
        with pytest.raises(minikafka.TimeoutError):
            c.close()  # the final commit, then leaving: request_timeout for both
        assert time.monotonic() - t0 < 3.5
        with pytest.raises(minikafka.ClosedError):
            c.poll(0)
    finally:
        broker.close()


def test_commit_of_an_assigned_group_consumer_against_a_frozen_kafka_broker_is_bounded(
        frozen_kafka: Any) -> None:
    """A consumer with a group_id but assign()ed partitions: its commit to a
    frozen broker hung for good (the timeout's explanation polled the
    client, which waited behind the commit still running in the
    background); it must raise TimeoutError after request_timeout."""
    bootstrap, freeze = frozen_kafka
    broker = minikafka.connect(f"kafka://{bootstrap}?log_level=0", request_timeout=1.0,
                               consumer_config={"fetch.wait.max.ms": 50})
    try:
        broker.create_topic("t")
        with Producer(broker) as p:
            p.send("t", b"x").result(10)  # not left to close's flush (request_timeout, 1 s)
        c = Consumer(broker, group_id="g", auto_offset_reset="earliest")
        c.assign([minikafka.TopicPartition("t", 0)])
        got: list[minikafka.Record] = []
        deadline = time.monotonic() + 20
        while not got and time.monotonic() < deadline:
            got = c.poll(0.2)
        assert got
        freeze()
        outcome: list[BaseException] = []

        def commit() -> None:
            try:
                c.commit()
            except BaseException as e:
                outcome.append(e)

        worker = threading.Thread(target=commit, daemon=True)
        t0 = time.monotonic()
        worker.start()
        worker.join(10)
        assert not worker.is_alive(), "commit() still waiting 10 s after request_timeout=1"
        assert time.monotonic() - t0 < 3
        assert len(outcome) == 1 and isinstance(outcome[0], minikafka.TimeoutError), outcome
        assert "request_timeout" in str(outcome[0])
    finally:
        broker.close()


def test_records_a_timed_out_kafka_close_did_not_deliver_fail_their_futures(frozen_kafka: Any) -> None:
    """close() against a frozen broker raised TimeoutError after
    request_timeout, but the futures of the records it had not delivered
    stayed pending forever: the poller had stopped, so their done callbacks
    (an AsyncProducer's futures) never ran, and awaiting one hung."""
    bootstrap, freeze = frozen_kafka
    broker = minikafka.connect(f"kafka://{bootstrap}", request_timeout=2.0)
    try:
        broker.create_topic("t")

        async def main() -> None:
            p = AsyncProducer(broker, linger_ms=500)
            await p.send_and_wait("t", b"before")
            freeze()
            held = await p.send("t", b"held")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(p.close(), 0.2)  # the close goes on in its thread
            with pytest.raises(minikafka.ClosedError):
                await p.send("t", b"after")
            t0 = time.monotonic()
            with pytest.raises(minikafka.TimeoutError):
                await asyncio.wait_for(held, 10)  # fails once close gives up, not never
            assert time.monotonic() - t0 < 5

        asyncio.run(main())
    finally:
        broker.close()


def test_a_forked_child_dropping_its_copies_closes_nothing_of_its_parent(tmp_path: Path) -> None:
    """The child of a fork holds copies of its parent's clients; when it
    drops them (a function returning in the child) they must not close:
    that would take the parent's member out of its group and write the
    parent's held records from the child."""
    with minikafka.Broker(tmp_path / "data") as broker:
        broker.create_topic("t", partitions=2)
        consumer = Consumer(broker, "t", group_id="g", **DIR_GROUP)
        producer = Producer(broker, linger_ms=60_000)
        producer.send("t", b"held", partition=0)
        generation = broker.describe_group("g").generation
        pid = os.fork()
        if pid == 0:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    del consumer, producer
                    gc.collect()
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        described = broker.describe_group("g")
        assert [m.member_id for m in described.members] == [consumer.member_id]
        assert described.generation == generation
        assert read_topic(broker, "t") == []  # the held record is still the parent's to write
        producer.close()
        consumer.close()
        assert [r.value for r in read_topic(broker, "t")] == [b"held"]


def test_a_producer_used_without_a_reference_writes_and_then_closes(backend: Any) -> None:
    """send/send_many/flush are the backend's bound methods, so in
    `Producer(broker).send(...)` the facade is collected before the call
    runs. It closed right then, and the call raised ClosedError; now it
    closes once the call has returned (as `open(p, "w").write(s)` does), so
    the record is written and its future done."""
    broker = backend
    broker.create_topic("t")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        meta = Producer(broker).send("t", b"a").result(timeout=10)
        assert meta.offset == 0
        Producer(broker).send_many("t", [b"b", b"c"])
        Producer(broker).flush()
        send = Producer(broker).send  # held: the producer stays open while this is
        futures = [send("t", v) for v in (b"d", b"e")]
        del send
        assert [f.result(timeout=10).offset for f in futures] == [3, 4]
    assert [r.value for r in read_topic(broker, "t", timeout=10)] == [b"a", b"b", b"c", b"d", b"e"]
    deadline = time.monotonic() + 10  # each closed: no linger or delivery thread left behind
    while _producer_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _producer_threads() == []


def _producer_threads() -> list[str]:
    return [t.name for t in threading.enumerate()
            if t.name in ("minikafka-linger", "minikafka-kafka-delivery")]


def test_a_closed_producer_says_so(tmp_path: Path) -> None:
    with minikafka.Broker(tmp_path / "data") as broker:
        broker.create_topic("t")
        p = Producer(broker)
        p.close()
        with pytest.raises(minikafka.ClosedError, match=r"^producer is closed$"):
            p.send("t", b"x")
        assert read_topic(broker, "t", timeout=0) == []
