"""AsyncProducer / AsyncConsumer: round trips, shapes, iteration, other
processes, cancellation, a responsive event loop and idle cost."""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

import attrs
import pytest

import minikafka
from minikafka import AsyncConsumer, AsyncProducer, TopicPartition
from minikafka.aio_hub import Hub, hub_for
from minikafka.closeable import wait_for_closes
from minikafka.producer import RecordFuture
from minikafka.testing import read_topic

ROOT = Path(__file__).resolve().parent.parent


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def spawn_producer(path: Path, topic: str, count: int, delay: float, env: dict[str, str] | None = None
                   ) -> subprocess.Popen[str]:
    """Another process that sends ``count`` records (one write each) after ``delay`` s."""
    code = textwrap.dedent(f"""
        import time, minikafka
        with minikafka.Broker({str(path)!r}) as b, minikafka.Producer(b, linger_ms=0) as p:
            time.sleep({delay})
            for i in range({count}):
                p.send({topic!r}, b"v%d" % i, partition=0).result()
                time.sleep(0.002)
    """)
    return subprocess.Popen([sys.executable, "-c", code], text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def test_round_trip_send_send_and_wait_flush_and_getone(broker: minikafka.Broker) -> None:
    broker.create_topic("t", partitions=3)

    async def main() -> None:
        async with AsyncProducer(broker, value_serializer=str.encode, linger_ms=50) as p:
            meta = await p.send_and_wait("t", "first", key=b"k", headers={"h": b"1"})
            assert meta.partition == broker.topic("t").partition_for(b"k") and meta.offset == 0
            futs = [await p.send("t", f"v{i}", key=b"k") for i in range(5)]
            assert not any(f.done() for f in futs)  # lingering in the batch
            await p.flush()
            metas = [await f for f in futs]
            assert [m.offset for m in metas] == [1, 2, 3, 4, 5]
        async with AsyncConsumer(broker, "t", auto_offset_reset="earliest",
                                 value_deserializer=bytes.decode) as c:
            first = await c.getone()
            assert (first.value, first.key, first.headers) == ("first", b"k", (("h", b"1"),))
            rest = [(await c.getone()).value for _ in range(5)]
            assert rest == [f"v{i}" for i in range(5)]
            assert await c.poll(timeout=0.05) == []

    run(main())


def test_send_futures_resolve_from_the_linger_thread(broker: minikafka.Broker) -> None:
    broker.create_topic("t")

    async def main() -> None:
        async with AsyncProducer(broker, linger_ms=5) as p:
            fut = await p.send("t", b"x")
            meta = await asyncio.wait_for(fut, 2)  # no flush: the linger thread writes it
            assert meta.offset == 0

    run(main())


def test_send_bad_arguments_raise_before_queueing(broker: minikafka.Broker) -> None:
    broker.create_topic("t")

    async def main() -> None:
        async with AsyncProducer(broker) as p:
            with pytest.raises(TypeError, match="value"):
                await p.send("t", 12345)
            with pytest.raises(minikafka.TopicNotFoundError):
                await p.send_and_wait("nope", b"x")
            await p.flush()
        assert broker.topic("t").end_offsets() == {0: 0}

    run(main())


def test_bad_poll_arguments_raise_as_the_sync_consumer(broker: minikafka.Broker) -> None:
    # poll("1") was an InvalidArgumentError (Consumer.poll: TypeError), and
    # getmany("t") a bare "TopicPartition.__new__() missing ... 'partition'".
    broker.create_topic("t")

    async def main() -> None:
        async with AsyncConsumer(broker, "t") as c:
            with pytest.raises(TypeError, match="timeout must be a number or None, not str"):
                await c.poll("1")  # type: ignore[arg-type]
            with pytest.raises(minikafka.InvalidArgumentError, match="timeout"):
                await c.poll(-1)
            with pytest.raises(TypeError, match="expected a TopicPartition, got str 't'"):
                await c.getmany("t", timeout_ms=0)  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="partition must be an int, not str"):
                await c.getone(TopicPartition("t", "0"))  # type: ignore[arg-type]

    run(main())


def test_getmany_groups_records_by_partition_and_honours_max_records(broker: minikafka.Broker) -> None:
    broker.create_topic("t", partitions=2)
    with minikafka.Producer(broker) as p:
        for i in range(10):
            p.send("t", b"%d" % i, partition=i % 2)

    async def main() -> None:
        async with AsyncConsumer(broker, "t", auto_offset_reset="earliest") as c:
            batches = await c.getmany(timeout_ms=1000)
            assert set(batches) == {TopicPartition("t", 0), TopicPartition("t", 1)}
            for tp, records in batches.items():
                assert all(r.partition == tp.partition for r in records)
                assert [r.offset for r in records] == list(range(5))
            assert await c.getmany(timeout_ms=0) == {}
            c.seek(TopicPartition("t", 0), 0)
            c.seek(TopicPartition("t", 1), 0)
            few = await c.getmany(timeout_ms=1000, max_records=3)
            assert sum(map(len, few.values())) == 3
            only = await c.getmany(TopicPartition("t", 1), timeout_ms=1000)
            assert set(only) == {TopicPartition("t", 1)}
            assert c.paused() == set()  # the restriction was temporary
            with pytest.raises(minikafka.InvalidArgumentError, match="not assigned"):
                await c.getmany(TopicPartition("other", 0))
            negative = "timeout_ms must be a number >= 0, got -5"
            with pytest.raises(minikafka.InvalidArgumentError, match=negative):
                await c.getmany(timeout_ms=-5)

    run(main())


def test_async_for_with_stop_at_end_reads_what_is_there_then_stops(broker: minikafka.Broker) -> None:
    broker.create_topic("t", partitions=3)
    with minikafka.Producer(broker) as p:
        for i in range(30):
            p.send("t", b"%d" % i, key=b"%d" % i)

    async def main() -> None:
        async with AsyncConsumer(broker, "t", group_id="g", auto_offset_reset="earliest",
                                 stop_at_end=True) as c:
            t0 = time.monotonic()
            got = [r async for r in c]
            assert time.monotonic() - t0 < 1.0  # no idle timeout involved
            assert sorted(int(r.value) for r in got) == list(range(30))
            assert c.at_end()
            await c.commit()
        assert sum(broker.lag("g").values()) == 0

    run(main())


def test_async_for_ends_after_consumer_timeout_and_on_close(broker: minikafka.Broker) -> None:
    broker.create_topic("t")

    async def main() -> None:
        async with AsyncConsumer(broker, "t", consumer_timeout=0.2) as c:
            t0 = time.monotonic()
            assert [r async for r in c] == []
            assert 0.15 < time.monotonic() - t0 < 1.0
        c2 = AsyncConsumer(broker, "t")

        async def closer() -> None:
            await asyncio.sleep(0.1)
            await c2.close()

        task = asyncio.create_task(closer())
        t0 = time.monotonic()
        assert [r async for r in c2] == []
        assert time.monotonic() - t0 < 1.0
        await task

    run(main())


def test_close_from_another_task_ends_a_waiting_poll(broker: minikafka.Broker) -> None:
    broker.create_topic("t")

    async def main() -> None:
        c = AsyncConsumer(broker, "t")
        task = asyncio.create_task(c.poll(timeout=10))
        await asyncio.sleep(0.05)
        await c.close()
        assert await asyncio.wait_for(task, 2) == []
        with pytest.raises(minikafka.ClosedError):
            await c.poll()

    run(main())


def test_records_from_another_process_wake_getone(broker: minikafka.Broker, data_dir: Path) -> None:
    broker.create_topic("t")

    async def main() -> None:
        async with AsyncConsumer(broker, "t", auto_offset_reset="earliest") as c:
            proc = spawn_producer(data_dir, "t", 20, delay=0.3)
            try:
                values = [(await asyncio.wait_for(c.getone(), 10)).value for _ in range(20)]
            finally:
                assert proc.wait(30) == 0
            assert values == [b"v%d" % i for i in range(20)]

    run(main())


def test_without_futexes_records_from_another_process_still_arrive(make_broker, tmp_path: Path,
                                                                    monkeypatch) -> None:
    monkeypatch.setenv("MINIKAFKA_NO_FUTEX", "1")
    path = tmp_path / "nofutex"
    b = make_broker(path)
    assert b.waker.doorbell is None
    b.create_topic("t")

    async def main() -> None:
        async with AsyncConsumer(b, "t", auto_offset_reset="earliest") as c:
            proc = spawn_producer(path, "t", 10, delay=0.2, env={"MINIKAFKA_NO_FUTEX": "1"})
            try:
                got = [await asyncio.wait_for(c.getone(), 10) for _ in range(10)]
            finally:
                assert proc.wait(30) == 0
            assert [r.offset for r in got] == list(range(10))

    run(main())


def test_cancelled_reads_lose_no_record(broker: minikafka.Broker) -> None:
    """Readers cancelled at random points while a thread produces: every
    record is still returned exactly once, in order."""
    broker.create_topic("t")
    total = 300

    def produce() -> None:
        with minikafka.Producer(broker, linger_ms=0) as p:
            for i in range(total):
                p.send("t", b"%d" % i)
                if i % 3 == 0:
                    time.sleep(0.003)  # readers often wait, so cancels land mid-wait

    async def main() -> None:
        got: list[int] = []
        cancelled = 0
        async with AsyncConsumer(broker, "t", auto_offset_reset="earliest") as c:
            thread = threading.Thread(target=produce)
            thread.start()
            deadline = time.monotonic() + 30
            n = 0
            while len(got) < total and time.monotonic() < deadline:
                n += 1
                kind = n % 3
                coro = (c.getone() if kind == 0 else c.getmany(timeout_ms=50, max_records=5)
                        if kind == 1 else c.poll(timeout=0.05, max_records=3))
                task = asyncio.ensure_future(coro)
                await asyncio.sleep(0.0002 * (n % 5))
                if not task.done():
                    task.cancel()
                try:
                    result = await task
                except asyncio.CancelledError:
                    cancelled += 1
                    continue
                if kind == 0:
                    got.append(int(result.value))
                elif kind == 1:
                    got.extend(int(r.value) for rs in result.values() for r in rs)
                else:
                    got.extend(int(r.value) for r in result)
            thread.join()
        assert got == list(range(total))
        assert cancelled > 10  # the test really cancelled reads in flight

    run(main())


def test_event_loop_keeps_ticking_while_consumers_wait(broker: minikafka.Broker) -> None:
    broker.create_topic("t")

    async def main() -> None:
        async with AsyncConsumer(broker, "t") as c1, AsyncConsumer(broker, "t") as c2:
            ticks: list[float] = []

            async def ticker() -> None:
                while True:
                    ticks.append(time.monotonic())
                    await asyncio.sleep(0.01)

            task = asyncio.create_task(ticker())
            t0 = time.monotonic()
            results = await asyncio.gather(c1.poll(timeout=0.5), c2.getmany(timeout_ms=500))
            elapsed = time.monotonic() - t0
            task.cancel()
            assert results == [[], {}]
            assert 0.45 < elapsed < 2.0
            gaps = [b - a for a, b in itertools.pairwise(ticks)]
            assert len(ticks) >= 25, len(ticks)
            assert max(gaps) < 0.1, max(gaps)

    run(main())


def _cpu_while(wait: Any, seconds: float) -> float:
    t0, c0 = time.monotonic(), time.process_time()
    wait(seconds)
    return (time.process_time() - c0) / (time.monotonic() - t0)


@pytest.mark.slow
def test_idle_async_consumer_costs_no_more_cpu_than_an_idle_consumer(broker: minikafka.Broker) -> None:
    broker.create_topic("t")
    seconds = 1.5
    with minikafka.Consumer(broker, "t") as sync_c:
        sync_cpu = _cpu_while(lambda s: sync_c.poll(timeout=s), seconds)

    async def main() -> float:
        async with AsyncConsumer(broker, "t") as c:
            await c.poll(0)
            t0, c0 = time.monotonic(), time.process_time()
            assert await c.poll(timeout=seconds) == []
            return (time.process_time() - c0) / (time.monotonic() - t0)

    async_cpu = run(main())
    # Both are well under 1 % of a core; allow scheduler noise on a shared machine.
    assert async_cpu < 0.02, async_cpu
    assert async_cpu <= sync_cpu * 2 + 0.005, (async_cpu, sync_cpu)


def test_the_waiter_thread_is_shared_and_ends_with_the_last_consumer(broker: minikafka.Broker) -> None:
    broker.create_topic("t")
    hub = hub_for(broker)

    async def main() -> None:
        cs = [AsyncConsumer(broker, "t") for _ in range(3)]
        before = threading.active_count()
        await asyncio.gather(*(c.poll(timeout=0.1) for c in cs))
        assert hub.running
        assert threading.active_count() - before <= 1  # one thread for all three waits
        for c in cs:
            await c.close()

    run(main())
    deadline = time.monotonic() + 2
    while hub.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not hub.running


def test_a_broker_without_a_waker_gets_bounded_waits_from_one_thread() -> None:
    hub = Hub(None)
    hub.acquire()

    async def main() -> float:
        t0 = time.monotonic()
        await asyncio.gather(*(hub.wait(hub.generation(), 5.0) for _ in range(4)))
        return time.monotonic() - t0

    try:
        assert run(main()) < 0.5  # woken by the fallback interval, not the 5 s timeout
        assert hub.running
    finally:
        hub.release()


def test_the_plain_and_coroutine_methods_delegate(broker: minikafka.Broker) -> None:
    broker.create_topic("t", partitions=2)
    with minikafka.Producer(broker) as p:
        for i in range(4):
            p.send("t", b"x", partition=i % 2, timestamp_ms=1000 + i)
    tp0, tp1 = TopicPartition("t", 0), TopicPartition("t", 1)

    async def main() -> None:
        async with AsyncConsumer(broker, group_id="g", auto_offset_reset="earliest") as c:
            c.assign([tp0, tp1])
            assert c.assignment() == {tp0, tp1}
            assert await c.beginning_offsets([tp0]) == {tp0: 0}
            assert await c.end_offsets([tp0, tp1]) == {tp0: 2, tp1: 2}
            assert await c.offsets_for_times({tp0: 1001}) == {tp0: 1}
            c.pause(tp1)
            assert c.paused() == {tp1}
            assert {r.partition for r in await c.poll(timeout=1)} == {0}
            assert not c.at_end()
            c.resume(tp1)
            await c.poll(timeout=1)
            assert c.at_end()
            await c.seek_to_beginning(tp0)
            assert await c.position(tp0) == 0
            await c.seek_to_end()
            assert await c.position(tp1) == 2
            c.seek(tp1, 1)
            await c.commit()
            assert await c.committed(tp1) == 1

    run(main())


def test_every_option_of_the_sync_classes_is_accepted(broker: minikafka.Broker) -> None:
    """The async classes pass options through: each sync option, at its
    default, is accepted, and a changed one reaches the wrapped object."""
    import inspect

    broker.create_topic("t")

    def defaults(cls: type) -> dict[str, Any]:
        return {n: p.default for n, p in inspect.signature(cls).parameters.items()
                if p.kind is p.KEYWORD_ONLY or (p.default is not p.empty and n != "options")}

    async def main() -> None:
        producer_options = defaults(minikafka.Producer)
        assert set(producer_options) == {f.name for f in attrs.fields(minikafka.ProducerConfig)}
        async with AsyncProducer(broker, **producer_options) as p:
            assert isinstance(p.producer, minikafka.Producer)
        # The Consumer's options are ConsumerConfig's fields.
        options = {f.name: f.default for f in attrs.fields(minikafka.ConsumerConfig)}
        assert "stop_at_end" in options and "consumer_timeout" in options
        options.update(group_id="g", max_poll_records=7)
        async with AsyncConsumer(broker, "t", **options) as c:
            assert c.consumer.group_id == "g" and c.group_id == "g"
            with minikafka.Producer(broker) as sync_p:
                for i in range(20):
                    sync_p.send("t", b"%d" % i)
            await c.seek_to_beginning()
            assert len(await c.poll(timeout=1)) == 7  # max_poll_records reached the Consumer
        with pytest.raises(TypeError):
            AsyncConsumer(broker, "t", no_such_option=1)
        with pytest.raises(TypeError, match="stop_at_end"):
            AsyncConsumer(broker, "t", stop_at_end="yes")
        # config= reaches the Consumer too, and its stop_at_end ends async iteration.
        config = minikafka.ConsumerConfig(auto_offset_reset="earliest", stop_at_end=True)
        async with AsyncConsumer(broker, "t", config=config) as c:
            assert c.consumer.config is config
            assert len([r async for r in c]) == 20
            assert c.at_end()

    run(main())


def test_a_closed_broker_is_not_kept_alive_by_its_hub(tmp_path: Path) -> None:
    import gc
    import weakref

    b = minikafka.Broker(tmp_path / "d", segment_bytes=1 << 16)
    b.create_topic("t")

    async def main(broker: minikafka.Broker) -> None:
        async with AsyncConsumer(broker, "t") as c:
            await c.poll(timeout=0.01)

    run(main(b))
    hub = hub_for(b)
    waker = weakref.ref(b.waker)
    b.close()
    deadline = time.monotonic() + 2
    while hub.running and time.monotonic() < deadline:
        time.sleep(0.01)
    del b
    gc.collect()
    assert waker() is None


def test_send_many_writes_at_once_with_the_sync_options(broker: minikafka.Broker) -> None:
    broker.create_topic("t", partitions=2)

    async def main() -> None:
        async with AsyncProducer(broker) as p:
            result = await p.send_many("t", [b"a", b"b", b"c"])
            assert result.count == 3 and result.done()
            pinned = await p.send_many("t", [b"x"], partition=1, timestamp_ms=1234)
            assert [(m.partition, m.timestamp) for m in pinned.metadata()] == [(1, 1234)]
            with pytest.raises(minikafka.InvalidPartitionError):
                await p.send_many("t", [b"y"], partition=5)

    run(main())
    assert sorted(r.value for r in read_topic(broker, "t")) == [b"a", b"b", b"c", b"x"]


def _values(batches: dict[TopicPartition, list[minikafka.Record]]) -> dict[int, list[bytes]]:
    return {tp.partition: [r.value for r in rs] for tp, rs in batches.items()}


def test_getone_of_a_partition_through_a_rebalance_that_takes_partitions_away(broker) -> None:
    """getone(tp) pauses the other partitions around its poll; a member
    joining inside that poll took some of them away, and resuming them
    raised, dropping the record just taken and leaving the rest paused."""
    broker.create_topic("t", partitions=4)

    async def main() -> None:
        c1 = AsyncConsumer(broker, "t", group_id="g", auto_offset_reset="latest")
        tp0 = TopicPartition("t", 0)
        waiting = asyncio.ensure_future(c1.getone(tp0))
        await asyncio.sleep(0.1)
        c2 = AsyncConsumer(broker, "t", group_id="g")  # takes half of c1's partitions
        with minikafka.Producer(broker, linger_ms=0) as p:
            for part in range(4):
                p.send("t", b"new-%d" % part, partition=part).result()
        r = await asyncio.wait_for(waiting, 5)
        assert (r.partition, r.value) == (0, b"new-0")
        assert c1.paused() == set()
        got = {}
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(got) < 3:
            got.update(_values(await c1.getmany(timeout_ms=100)))
            got.update(_values(await c2.getmany(timeout_ms=100)))
        assert got == {p: [b"new-%d" % p] for p in (1, 2, 3)}
        await c1.close()
        await c2.close()
        assert broker.lag("g") == {TopicPartition("t", p): 0 for p in range(4)}

    run(main())


def test_getone_of_a_partition_through_a_rebalance_that_adds_partitions(broker) -> None:
    """A partition assigned inside getone(tp)'s poll was never paused: its
    records are put back (read later), not returned as tp's."""
    broker.create_topic("t", partitions=4)

    async def main() -> None:
        c1 = AsyncConsumer(broker, "t", group_id="g", auto_offset_reset="earliest")
        c2 = AsyncConsumer(broker, "t", group_id="g", auto_offset_reset="earliest")
        for _ in range(3):
            await c1.poll(0.05)
            await c2.poll(0.05)
        mine, theirs = min(c1.assignment()), sorted(c2.assignment())
        with minikafka.Producer(broker, linger_ms=0) as p:
            for tp in theirs:
                p.send("t", b"for-%d" % tp.partition, partition=tp.partition).result()
        waiting = asyncio.ensure_future(c1.getone(mine))
        await asyncio.sleep(0.1)
        await c2.close()  # c1 takes over its partitions
        await asyncio.sleep(0.3)
        assert not waiting.done(), f"getone({mine}) returned another partition's record"
        waiting.cancel()
        got: dict[int, list[bytes]] = {}
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(got) < len(theirs):
            got.update(_values(await c1.getmany(timeout_ms=100)))
        assert got == {tp.partition: [b"for-%d" % tp.partition] for tp in theirs}
        await c1.close()

    run(main())


def _hold_lock(path: Path, seconds: float, frozen: bool = False) -> subprocess.Popen[str]:
    """Another process that holds the flock of ``path`` for ``seconds``,
    frozen (SIGSTOP) meanwhile if ``frozen`` (kill it in a finally)."""
    code = textwrap.dedent(f"""
        import fcntl, os, time
        fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        print("held", flush=True)
        time.sleep({seconds})
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    if frozen:
        os.kill(proc.pid, signal.SIGSTOP)
    return proc


def _hold_writer_lock(data_dir: Path, topic: str, seconds: float) -> subprocess.Popen[str]:
    """Another process that holds partition 0's writer lock for ``seconds``."""
    return _hold_lock(data_dir / "topics" / topic / "0" / "writer.lock", seconds)  # docs/format.md


async def _max_gap_while(coro: Any) -> tuple[float, BaseException | None]:
    """The longest the event loop stood still while ``coro`` ran, and what it raised."""
    ticks = [time.monotonic()]

    async def ticker() -> None:
        while True:
            await asyncio.sleep(0.005)
            ticks.append(time.monotonic())

    task = asyncio.create_task(ticker())
    error: BaseException | None = None
    try:
        await coro
    except BaseException as e:  # reported to the caller
        error = e
    ticks.append(time.monotonic())
    task.cancel()
    return max(b - a for a, b in itertools.pairwise(ticks)), error


def test_waiting_for_a_writer_lock_another_process_holds_never_stops_the_loop(make_broker,
                                                                               data_dir: Path) -> None:
    """send_and_wait wrote its batch in the loop thread with no time limit:
    while another process held the partition's writer lock the event loop
    stood still (wait_for could not fire) until that process let go."""
    b = make_broker(request_timeout=20)
    b.create_topic("t")

    async def main() -> None:
        async with AsyncProducer(b) as p:
            holder = _hold_writer_lock(data_dir, "t", 2.0)
            try:
                gap, error = await _max_gap_while(asyncio.wait_for(p.send_and_wait("t", b"a"), 0.3))
                assert isinstance(error, TimeoutError) and gap < 0.2, (gap, error)
                fut = await p.send("t", b"b")
                gap, error = await _max_gap_while(asyncio.wait_for(p.flush(), 0.3))
                assert isinstance(error, TimeoutError) and gap < 0.2, (gap, error)
            finally:
                holder.wait(30)
            await p.flush()  # the lock is free: both records are written, once each
            assert (await fut).offset == 1

    run(main())
    assert [r.value for r in read_topic(b, "t")] == [b"a", b"b"]


@pytest.mark.parametrize("options", [{"batch_size": 1024}, {"linger_ms": 0}], ids=["full-batches", "linger0"])
def test_sends_that_close_batches_never_wait_for_a_writer_lock_in_the_loop(make_broker, data_dir: Path,
                                                                          options: dict[str, Any]) -> None:
    """A send that filled its batch (every send with linger_ms=0) wrote it
    in the loop thread: with another process holding the partition's
    writer lock, the event loop stood still until that process let go."""
    b = make_broker(request_timeout=20)
    b.create_topic("t")

    async def main() -> None:
        async with AsyncProducer(b, **options) as p:
            futures = []

            async def send_some() -> None:
                for i in range(100):
                    futures.append(await p.send("t", b"%03d" % i + b"x" * 97))

            holder = _hold_writer_lock(data_dir, "t", 1.5)
            try:
                gap, error = await _max_gap_while(send_some())
                assert error is None and gap < 0.2, (gap, error)
                gap, error = await _max_gap_while(asyncio.wait_for(p.send_many("t", [b"bulk"]), 0.3))
                assert isinstance(error, TimeoutError) and gap < 0.2, (gap, error)
            finally:
                holder.wait(30)
            assert [(await f).offset for f in futures] == list(range(100))

    run(main())
    assert [r.value[:3] for r in read_topic(b, "t")] == [b"%03d" % i for i in range(100)] + [b"bul"]


def test_a_send_writes_itself_once_too_much_waits_for_the_writer(make_broker, data_dir: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Handing full batches to the linger thread must not fill memory when
    it cannot keep up: past HAND_OFF_BYTES queued, send writes itself (and
    so waits, as Producer.send does)."""
    import minikafka.local_producer as lp

    monkeypatch.setattr(lp, "HAND_OFF_BYTES", 8 * (1024 + lp.BATCH_OVERHEAD))
    b = make_broker(request_timeout=20)
    b.create_topic("t")

    async def main() -> None:
        async with AsyncProducer(b, batch_size=1024) as p:
            backend = p.producer._backend
            most = 0

            async def send_some() -> None:
                nonlocal most
                for i in range(200):
                    await p.send("t", b"%03d" % i + b"x" * 97)
                    most = max(most, backend._queued)

            holder = _hold_writer_lock(data_dir, "t", 1.0)
            try:
                gap, error = await _max_gap_while(send_some())
            finally:
                holder.wait(30)
            assert error is None and gap > 0.5, (gap, error)  # it waited for the lock
            assert most <= lp.HAND_OFF_BYTES + 2 * (1024 + lp.BATCH_OVERHEAD), most
            await p.flush()

    run(main())
    assert [r.value[:3] for r in read_topic(b, "t")] == [b"%03d" % i for i in range(200)]


def test_a_consumer_collected_while_the_hub_lock_is_held_does_not_deadlock(broker) -> None:
    """An AsyncConsumer dropped without close() releases its hub from
    ``__del__``. The cycle collector runs finalizers in whichever thread
    allocates, also one holding the hub's lock (the waiter thread waking
    loops, or a loop registering a wait): with a plain Lock that thread
    deadlocked on itself, and every later wait on the broker hung."""
    import gc

    broker.create_topic("t")
    hub = hub_for(broker)
    c = AsyncConsumer(broker, "t")
    c.cycle = c  # type: ignore[attr-defined]  # only the cycle collector frees it
    del c

    def collect_holding_the_lock() -> None:
        with hub._cond:  # as inside Hub.wait or Hub._fire
            gc.collect()

    thread = threading.Thread(target=collect_holding_the_lock, daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "the finalizer deadlocked on the hub's lock"

    async def main() -> None:
        async with AsyncConsumer(broker, "t") as c2:
            assert await c2.poll(timeout=0.05) == []

    run(main())


def test_a_remote_commit_that_hangs_never_stops_the_loop() -> None:
    """On a remote backend the coroutine methods ran the sync calls in the
    loop thread: a cluster that stopped answering (a SIGSTOPped Kafka broker
    held a commit for minutes) froze the loop, and wait_for around the
    commit could not fire. Now such a call runs in a worker thread, and the
    consumer's own reads wait for it (one thread at a time) within their
    timeout."""
    from test_consumer_backend import ListBackend, ListBroker

    release = threading.Event()

    class StuckCommits(ListBackend):
        def commit(self, offsets: dict[TopicPartition, int]) -> None:
            release.wait(30)
            super().commit(offsets)

    class StuckBroker(ListBroker):
        def consumer_backend(self, config: Any, hooks: Any) -> Any:
            backend = StuckCommits(self.logs, config, hooks)
            self.backends.append(backend)
            return backend

    broker = StuckBroker({TopicPartition("t", 0): [b"a", b"b", b"c"]})

    async def main() -> None:
        c = AsyncConsumer(broker, "t", group_id="g", enable_auto_commit=False)
        assert (await c.getone()).value == b"a"
        gap, error = await _max_gap_while(asyncio.wait_for(c.commit(), 0.3))
        assert isinstance(error, TimeoutError) and gap < 0.2, (gap, error)
        # The commit is still running in its thread: reads wait for it, within their timeout.
        t0 = time.monotonic()
        assert await c.getmany(timeout_ms=200) == {}
        assert 0.15 < time.monotonic() - t0 < 1.0
        release.set()
        assert [r.value for r in await c.poll(timeout=2)] == [b"b", b"c"]
        await c.commit()
        assert await c.committed(TopicPartition("t", 0)) == 3
        await c.close()
        assert broker.backends[0].closed
        assert broker.backends[0].commits == [{TopicPartition("t", 0): 1}, {TopicPartition("t", 0): 3}]

    try:
        run(main())
    finally:
        release.set()


class _Done(RecordFuture):
    __slots__ = ("meta",)

    def __init__(self, meta: minikafka.RecordMetadata) -> None:
        self.meta = meta

    def done(self) -> bool:
        return True

    def result(self, timeout: float | None = None) -> minikafka.RecordMetadata:
        return self.meta

    def add_done_callback(self, fn: Any) -> None:
        fn(self)


class _SlowLookups:
    """A remote producer backend whose first look at a topic (the metadata
    request) takes ``wait()``."""

    def __init__(self, wait: Any) -> None:
        self.wait = wait
        self.known: set[str] = set()
        self.sent: list[bytes] = []

    def partitions_for(self, topic: str) -> set[int]:
        if not isinstance(topic, str):
            raise TypeError(f"topic must be a str, not {type(topic).__name__}")
        if topic not in self.known:
            self.wait()
            self.known.add(topic)
        return {0}

    def send(self, topic: str, value: Any = None, key: Any = None, **kw: Any) -> Any:
        self.partitions_for(topic)
        self.sent.append(value)
        return _Done(minikafka.RecordMetadata(topic, 0, len(self.sent) - 1, 0))

    def send_many(self, *args: Any, **kw: Any) -> Any:
        raise NotImplementedError

    def flush(self, timeout: float | None = None) -> None:
        pass

    close = flush

    def broker(self) -> Any:
        backend = self

        class Remote:
            def producer_backend(self, front: Any, config: Any) -> _SlowLookups:
                return backend

        return Remote()


def test_a_remote_first_send_to_a_topic_does_not_stop_the_loop() -> None:
    """A remote backend looks a topic up (a metadata request) on its first
    send: with the Kafka broker SIGSTOPped that held the loop for the whole
    request_timeout (30 s), wait_for around send_and_wait included."""
    backend = _SlowLookups(lambda: time.sleep(1.0))

    async def main() -> None:
        async with AsyncProducer(backend.broker()) as p:
            gap, error = await _max_gap_while(p.send_and_wait("t", b"a"))
            assert error is None and gap < 0.2, (gap, error)
            t0 = time.monotonic()
            assert (await (await p.send("t", b"b"))).offset == 1  # known now: sent at once
            assert time.monotonic() - t0 < 0.5
            with pytest.raises(TypeError, match="topic must be a str"):
                await p.send(["t"], b"c")  # type: ignore[arg-type]
        assert backend.sent == [b"a", b"b"]

    run(main())


def test_a_remote_first_send_cancelled_during_its_lookup_queues_nothing() -> None:
    """The first send to a topic ran the whole sync send in a worker
    thread: cancelled while the topic was looked up, it still queued (and
    wrote) the record once the lookup returned, so a retry wrote it twice."""
    release = threading.Event()
    backend = _SlowLookups(lambda: release.wait(10))

    async def main() -> None:
        async with AsyncProducer(backend.broker()) as p:
            first = asyncio.ensure_future(p.send("t", b"a"))
            await asyncio.sleep(0.1)
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            release.set()
            await asyncio.sleep(0.2)  # the lookup's thread returns
            assert backend.sent == []
            assert (await p.send_and_wait("t", b"a")).offset == 0
        assert backend.sent == [b"a"]

    try:
        run(main())
    finally:
        release.set()


def test_a_nan_poll_timeout_is_refused_as_the_sync_poll_does(broker: minikafka.Broker) -> None:
    """poll(timeout=nan) passed the ``< 0`` check and then waited forever
    (a NaN deadline is never reached); the sync poll refuses it."""
    broker.create_topic("t")

    async def main() -> None:
        async with AsyncConsumer(broker, "t") as c:
            with pytest.raises(minikafka.InvalidArgumentError, match="timeout must be a number >= 0"):
                await asyncio.wait_for(c.poll(timeout=float("nan")), 2)

    run(main())


def test_stop_at_end_iteration_asks_a_remote_backend_for_end_offsets_off_the_loop() -> None:
    """``async for`` with stop_at_end called at_end() in the loop thread; on
    a remote backend that asks the cluster for end offsets (a round trip,
    up to request_timeout when it does not answer), freezing the loop."""
    from test_consumer_backend import ListBackend, ListBroker

    class SlowEnds(ListBackend):
        def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
            time.sleep(0.5)  # the ListOffsets request
            return super().end_offsets(tps)

    class SlowBroker(ListBroker):
        def consumer_backend(self, config: Any, hooks: Any) -> Any:
            return SlowEnds(self.logs, config, hooks)

    broker = SlowBroker({TopicPartition("t", 0): [b"a", b"b"]})

    async def main() -> None:
        async with AsyncConsumer(broker, "t", stop_at_end=True) as c:
            got: list[bytes] = []

            async def read() -> None:
                got.extend([r.value async for r in c])

            gap, error = await _max_gap_while(read())
            assert error is None and got == [b"a", b"b"]
            assert gap < 0.2, gap

    run(main())


def test_a_cancelled_remote_close_leaves_the_consumer_closed_not_waiting() -> None:
    """A cancelled close (a wait_for around it, the cluster not answering)
    left its call in the worker thread, and every later coroutine queued
    behind it: commit() waited as long as the stuck close did. Now the
    consumer is closed from the first step: later calls raise ClosedError at
    once, and close() again waits for the first one to finish."""
    from test_consumer_backend import ListBackend, ListBroker

    release = threading.Event()

    class StuckClose(ListBackend):
        def close(self) -> None:
            release.wait(30)
            super().close()

    class StuckBroker(ListBroker):
        def consumer_backend(self, config: Any, hooks: Any) -> Any:
            backend = StuckClose(self.logs, config, hooks)
            self.backends.append(backend)
            return backend

    broker = StuckBroker({TopicPartition("t", 0): [b"a", b"b"]})

    async def main() -> None:
        c = AsyncConsumer(broker, "t", group_id="g", enable_auto_commit=False)
        assert (await c.getone()).value == b"a"
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(c.close(), 0.2)
        t0 = time.monotonic()
        with pytest.raises(minikafka.ClosedError):
            await asyncio.wait_for(c.commit(), 5)
        with pytest.raises(minikafka.ClosedError):
            await asyncio.wait_for(c.getone(), 5)
        with pytest.raises(minikafka.ClosedError):
            await asyncio.wait_for(c.position(TopicPartition("t", 0)), 5)
        assert time.monotonic() - t0 < 1.0
        assert not broker.backends[0].closed
        again = asyncio.ensure_future(c.close())
        await asyncio.sleep(0.1)
        assert not again.done()  # waits for the close under way
        release.set()
        await asyncio.wait_for(again, 5)
        assert broker.backends[0].closed

    try:
        run(main())
    finally:
        release.set()


def test_a_forked_child_gets_its_own_hub_even_if_the_lock_was_held(tmp_path: Path) -> None:
    """A child forked while a parent thread held a hub's lock (its waiter
    thread, or a consumer collected meanwhile) must not deadlock on that
    copy: the child starts with no hubs, and its AsyncConsumers get new
    ones (on the same Broker object, too)."""
    path = tmp_path / "data"
    with minikafka.Broker(path) as broker:
        broker.create_topic("t")
        hub = hub_for(broker)
        held, done = threading.Event(), threading.Event()

        def hold() -> None:
            with hub._cond, _hubs_lock_of():
                held.set()
                done.wait(30)

        def _hubs_lock_of() -> Any:
            from minikafka import aio_hub
            return aio_hub._hubs_lock

        holder = threading.Thread(target=hold)
        holder.start()
        held.wait(5)
        try:
            pid = os.fork()
            if pid == 0:  # the child: both locks are copies held by a thread it does not have
                code = 1
                try:
                    async def child() -> None:
                        with minikafka.Broker(path) as own:
                            with minikafka.Producer(own, linger_ms=0) as p:
                                p.send("t", b"child")
                            for b in (own, broker):
                                c = AsyncConsumer(b, "t", auto_offset_reset="earliest")
                                got = await asyncio.wait_for(c.getmany(timeout_ms=2000), 5)
                                assert [r.value for rs in got.values() for r in rs] == [b"child"]
                                await c.close()
                    asyncio.run(child())
                    code = 0
                finally:
                    os._exit(code)
            deadline = time.monotonic() + 20
            while True:
                waited, status = os.waitpid(pid, os.WNOHANG)
                if waited:
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                    pytest.fail("the forked child hung (deadlock on a hub lock copied held)")
                time.sleep(0.02)
            assert os.waitstatus_to_exitcode(status) == 0
        finally:
            done.set()
            holder.join()


# -- closing off the event loop ----------------------------------------------------------

def _join_closers(timeout: float = 10.0) -> None:
    """Wait for the closes of dropped clients still running in their threads."""
    assert wait_for_closes(timeout), f"dropped clients still closing after {timeout} s"


async def _drop(holder: list[Any]) -> None:
    """Drop the only reference to a client (as a task that forgets one does)."""
    holder.clear()
    gc.collect()


def _resource_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


def test_a_dropped_kafka_async_producer_closes_off_the_event_loop(frozen_kafka: Any) -> None:
    """An AsyncProducer dropped without close() with a record pending: the
    Producer's __del__ flushed and closed the kafka:// backend in the loop
    thread, so the event loop stood still for the whole close (the broker's
    request_timeout against a frozen cluster; ~1 s on a live one). The close
    runs in a thread of its own; what it could not deliver fails its futures
    as before, and ``await close()`` still waits (in a worker thread) and
    honours its timeout."""
    bootstrap, freeze = frozen_kafka
    broker = minikafka.connect(f"kafka://{bootstrap}?log_level=0", request_timeout=1.0)
    try:
        broker.create_topic("t")

        async def main() -> None:
            dropped, closed = AsyncProducer(broker, linger_ms=500), AsyncProducer(broker, linger_ms=500)
            await dropped.send_and_wait("t", b"before")
            await closed.send_and_wait("t", b"before")
            freeze()
            held = await dropped.send("t", b"held")
            also_held = await closed.send("t", b"held")
            holder = [dropped]
            del dropped
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                gap, error = await _max_gap_while(_drop(holder))
            assert error is None and gap < 0.3, (gap, error)
            assert any("unclosed" in m for m in _resource_warnings(caught)), caught
            t0 = time.monotonic()
            gap, error = await _max_gap_while(closed.close(timeout=0.5))
            assert isinstance(error, minikafka.TimeoutError) and gap < 0.3, (gap, error)
            assert 0.4 < time.monotonic() - t0 < 3
            for fut in (held, also_held):  # not delivered: they fail once the close gives up
                with pytest.raises(minikafka.TimeoutError):
                    await asyncio.wait_for(fut, 5)

        run(main())
        _join_closers()
    finally:
        broker.close()


def test_a_dropped_kafka_async_producer_still_delivers_what_it_held(kafka_url: str) -> None:
    """The close of a dropped producer, now in its own thread, still flushes
    everything it held (and the loop runs on meanwhile: a fresh producer's
    first delivery stood the loop still ~1 s in that close)."""
    broker = minikafka.connect(kafka_url)
    topic = f"t-{uuid.uuid4().hex[:12]}"
    try:
        broker.create_topic(topic, partitions=2)

        async def main() -> list[minikafka.RecordMetadata]:
            p = AsyncProducer(broker, linger_ms=500)
            await p.partitions_for(topic)
            futures = [await p.send(topic, b"v%d" % i, partition=i % 2) for i in range(20)]
            holder = [p]
            del p
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ResourceWarning)
                gap, error = await _max_gap_while(_drop(holder))
            assert error is None and gap < 0.3, (gap, error)
            return [await asyncio.wait_for(f, 10) for f in futures]

        metas = run(main())
        _join_closers()
        assert sorted((m.partition, m.offset) for m in metas) == [(p, o) for p in (0, 1) for o in range(10)]
        assert sorted(r.value for r in read_topic(broker, topic)) == sorted(b"v%d" % i for i in range(20))
    finally:
        broker.close()


def test_a_closed_kafka_async_producer_leaves_no_client_for_the_loop_to_destroy(kafka_url: str) -> None:
    """After ``await close()`` the backend still held the librdkafka client
    (a bound ``produce``), so the event loop destroyed it (rd_kafka_destroy)
    when it dropped the closed producer. The close's worker thread frees it."""
    broker = minikafka.connect(kafka_url)
    topic = f"t-{uuid.uuid4().hex[:12]}"
    try:
        broker.create_topic(topic)

        async def main() -> None:
            p = AsyncProducer(broker)
            await p.send_and_wait(topic, b"x")
            client = p.producer._backend._writer._producer  # type: ignore[attr-defined]
            await p.close()
            holders = [r for r in gc.get_referrers(client) if not isinstance(r, dict)]  # (frame locals)
            assert holders == [], holders
            with pytest.raises(minikafka.ClosedError):
                await p.send(topic, b"after")

        run(main())
    finally:
        broker.close()


def test_a_dropped_kafka_async_group_consumer_closes_off_the_event_loop(frozen_kafka: Any) -> None:
    """An AsyncConsumer dropped without close(): the Consumer's __del__ ran
    its final commit and left the group in the loop thread, standing the
    event loop still for up to request_timeout each against a frozen
    cluster. That close runs in a thread of its own."""
    bootstrap, freeze = frozen_kafka
    broker = minikafka.connect(f"kafka://{bootstrap}?log_level=0", request_timeout=1.0,
                               consumer_config={"fetch.wait.max.ms": 50})
    try:
        broker.create_topic("t")
        with minikafka.Producer(broker) as p:
            # Waited for here, not by close's flush (request_timeout, 1 s:
            # too short for a first produce on a loaded CI machine).
            p.send("t", b"x").result(10)

        async def main() -> None:
            c = AsyncConsumer(broker, "t", group_id="g", auto_offset_reset="earliest",
                              session_timeout=1.5, heartbeat_interval=0.3)
            assert (await asyncio.wait_for(c.getone(), 20)).value == b"x"
            freeze()
            holder = [c]
            del c
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                gap, error = await _max_gap_while(_drop(holder))
            assert error is None and gap < 0.3, (gap, error)
            assert any("unclosed" in m for m in _resource_warnings(caught)), caught

        run(main())
        _join_closers()
    finally:
        broker.close()


def test_a_dropped_async_producer_waiting_for_a_writer_lock_never_stops_the_loop(make_broker,
                                                                                 data_dir: Path) -> None:
    """On a data directory too: the dropped producer's close waited in the
    loop thread for the writer lock another process held. It waits in its
    own thread, and writes the record once the lock is free."""
    b = make_broker(request_timeout=20)
    b.create_topic("t")

    async def main() -> asyncio.Future[minikafka.RecordMetadata]:
        p = AsyncProducer(b, linger_ms=60_000)
        fut = await p.send("t", b"held")
        holder = [p]
        del p
        proc = _hold_writer_lock(data_dir, "t", 1.0)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ResourceWarning)
                gap, error = await _max_gap_while(_drop(holder))
            assert error is None and gap < 0.3, (gap, error)
            assert (await asyncio.wait_for(fut, 10)).offset == 0
        finally:
            proc.wait(30)
        return fut

    run(main())
    _join_closers()
    assert [r.value for r in read_topic(b, "t")] == [b"held"]


def test_closing_the_broker_waits_for_a_dropped_async_producer_still_closing(make_broker,
                                                                           data_dir: Path) -> None:
    """A dropped AsyncProducer closes in a thread of its own; the Broker
    closed right after (the end of a ``with Broker(...)`` block around
    ``asyncio.run``) waits for that close's write (closing a partition
    waits for its writer) rather than close the files under it: the record
    is written, not lost."""
    b = make_broker(request_timeout=20)
    b.create_topic("t")

    async def main() -> None:
        p = AsyncProducer(b, linger_ms=60_000)
        await p.send("t", b"held")

    proc = _hold_writer_lock(data_dir, "t", 0.5)  # the close waits for it, in its thread
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            run(main())  # drops the producer
        time.sleep(0.1)  # its close waits for the writer lock
        b.close()
    finally:
        proc.wait(30)
    _join_closers()
    assert [r.value for r in read_topic(make_broker(), "t")] == [b"held"]


def test_a_dropped_async_producer_collected_under_threadings_own_lock_does_not_deadlock(
        broker: minikafka.Broker) -> None:
    """The collector may run a ``__del__`` in a thread that holds any lock,
    threading's own included (a thread starting allocates under the lock
    of its shutdown list): the dropped producer's ``__del__`` must not
    start a thread there (the new thread waits for that lock, its start for
    the new thread), only hand its close over."""
    broker.create_topic("t")
    p = AsyncProducer(broker, linger_ms=60_000)
    p.producer.send("t", b"held")
    holder = [p]
    del p

    def drop_under_the_lock() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            with threading._shutdown_locks_lock:  # type: ignore[attr-defined]
                holder.clear()

    t = threading.Thread(target=drop_under_the_lock, daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive(), "deadlocked dropping the producer under threading's lock"
    _join_closers()
    assert [r.value for r in read_topic(broker, "t")] == [b"held"]


def _hold_group_lock(data_dir: Path, group: str, seconds: float = 60.0,
                     frozen: bool = True) -> subprocess.Popen[str]:
    """Another process that holds the group's lock for ``seconds``, frozen
    (SIGSTOP) meanwhile unless told otherwise (kill it in a finally)."""
    return _hold_lock(data_dir / "groups" / group / "lock", seconds, frozen)  # docs/format.md, groups


def test_a_directory_commit_or_close_waiting_for_the_group_lock_never_stops_the_loop(
        make_broker, data_dir: Path) -> None:
    """On a data directory commit() and close() ran in the loop thread: with
    a frozen process holding the group lock the event loop stood still for
    request_timeout (30 s by default; wait_for around them could not fire).
    A commit whose lock is free is still made in the loop thread; one that
    would wait, and close, wait in a worker thread."""
    b = make_broker(request_timeout=1.0)
    b.create_topic("t")
    with minikafka.Producer(b) as p:
        p.send("t", b"x")
    tp = TopicPartition("t", 0)

    async def main() -> None:
        c = AsyncConsumer(b, "t", group_id="g", auto_offset_reset="earliest")
        assert (await asyncio.wait_for(c.getone(), 5)).value == b"x"
        await c.commit()
        assert await c.committed(tp) == 1
        holder = _hold_group_lock(data_dir, "g")
        try:
            gap, error = await _max_gap_while(c.commit({tp: 0}))
            assert isinstance(error, minikafka.TimeoutError) and gap < 0.3, (gap, error)
            assert "groups/g/lock" in str(error)
            gap, error = await _max_gap_while(asyncio.wait_for(c.commit({tp: 0}), 0.2))
            assert type(error) is TimeoutError and gap < 0.3, (gap, error)  # wait_for's
            gap, error = await _max_gap_while(c.close())  # after the cancelled commit's thread
            assert isinstance(error, minikafka.TimeoutError) and gap < 0.3, (gap, error)
        finally:
            holder.kill()
            holder.wait()
        with pytest.raises(minikafka.ClosedError):
            await c.poll()
        assert b.committed_offsets("g") == {tp: 1}  # the timed-out commits changed nothing
        _assert_seat_given_up(b, tp)

    run(main())


def test_a_dropped_directory_group_consumer_closes_off_the_event_loop(make_broker, data_dir: Path) -> None:
    """An AsyncConsumer of a group dropped without close(): its Consumer's
    __del__ closed it in the loop thread, waiting there for the group lock
    a frozen process held. That close runs in a thread of its own."""
    b = make_broker(request_timeout=1.0)
    b.create_topic("t")

    async def main() -> None:
        holder = [AsyncConsumer(b, "t", group_id="g")]
        proc = _hold_group_lock(data_dir, "g")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ResourceWarning)
                gap, error = await _max_gap_while(_drop(holder))
            assert error is None and gap < 0.3, (gap, error)
            _join_closers()
        finally:
            proc.kill()
            proc.wait()

    run(main())
    _assert_seat_given_up(b, TopicPartition("t", 0))


def _assert_seat_given_up(b: minikafka.Broker, tp: TopicPartition) -> None:
    """The closed member (its close timed out rewriting the state) holds
    no lock: a new member of "g" drops it and gets ``tp``."""
    with minikafka.Consumer(b, "t", group_id="g") as c:
        deadline = time.monotonic() + 5
        while c.assignment() != {tp} and time.monotonic() < deadline:
            c.poll(timeout=0.05)
        assert c.assignment() == {tp}


def test_closing_the_broker_waits_for_a_dropped_group_consumer_still_closing(make_broker,
                                                                           data_dir: Path) -> None:
    """A dropped AsyncConsumer of a group closes in a thread of its own; the
    Broker closed right after closed the group's files under that close
    (EBADF, or a flock on a reused descriptor), and its final commit was
    lost. Broker.close waits for it (within request_timeout)."""
    b = make_broker(request_timeout=5.0)
    b.create_topic("t")
    with minikafka.Producer(b) as p:
        p.send("t", b"x")

    procs = []

    async def main() -> None:
        holder = [AsyncConsumer(b, "t", group_id="g", auto_offset_reset="earliest")]
        assert (await asyncio.wait_for(holder[0].getone(), 5)).value == b"x"
        procs.append(_hold_group_lock(data_dir, "g", seconds=0.5, frozen=False))  # the close waits
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            await _drop(holder)

    try:
        run(main())
        b.close()
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    _join_closers()
    with minikafka.Broker(data_dir) as again:
        assert again.committed_offsets("g") == {TopicPartition("t", 0): 1}
