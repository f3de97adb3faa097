"""The producer backend seam: a backend that is not the local one reuses
the Producer's options, validation, serializers, partitioners and futures
(what the Kafka backend will do), and the facade binds its methods."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import pytest

import minikafka
from minikafka import InvalidArgumentError, InvalidPartitionError, Producer, RecordTooLargeError
from minikafka.format import decode_headers
from minikafka.options import ProducerConfig
from minikafka.producer import (
    BatchFuture,
    PendingBatch,
    RecordFuture,
    Route,
    SendFront,
    SendManyResult,
    new_future,
)


class _Delivery(PendingBatch):
    def __init__(self, backend: MemoryBackend, topic: str, partition: int) -> None:
        self.start(topic, partition, backend.lock)
        self.backend = backend

    def complete(self, timeout: float | None) -> None:
        self.backend.flush(timeout)


class MemoryBackend:
    """Records go to a dict of lists; delivered on flush (like a client
    whose delivery reports arrive later)."""

    def __init__(self, front: SendFront, config: ProducerConfig) -> None:
        self.front, self.config = front, config
        self.lock = threading.RLock()
        self.log: dict[tuple[str, int], list[tuple[Any, ...]]] = {}
        self.routes = {"t": Route("t", 3, lambda key: len(key) % 3, config.max_record_bytes)}
        self.waiting: list[tuple[_Delivery, tuple[Any, ...]]] = []
        self.closed = False

    def send(self, topic: str, value: Any = None, key: Any = None, *, partition: int | None = None,
             headers: Any = None, timestamp_ms: int | None = None) -> RecordFuture:
        rec = self.front.prepare(self.routes[topic], value, key, partition, headers, timestamp_ms)
        d = _Delivery(self, topic, rec.partition)
        self.waiting.append((d, (rec.key, rec.value, decode_headers(rec.headers, 0) if rec.headers else ())))
        return new_future(BatchFuture, (d, 0, rec.timestamp))

    def send_many(self, topic: str, values: Iterable[Any], keys: Iterable[Any] | None = None, *,
                  partition: int | None = None, timestamp_ms: int | None = None) -> SendManyResult:
        route = self.routes[topic]
        values, keys, ts = self.front.prepare_many(route, values, keys, partition, timestamp_ms)
        parts = ([route.sticky if partition is None else partition] * len(values) if keys is None
                 else self.front.partitions_of(route, keys))
        result = SendManyResult(topic, ts, len(values))
        for i, (p, v) in enumerate(zip(parts, values, strict=True)):
            log = self.log.setdefault((topic, p), [])
            result.batches.append((p, len(log), 1))
            log.append((None if keys is None else keys[i], v, ()))
        return result

    def flush(self, timeout: float | None = None) -> None:
        with self.lock:
            for d, record in self.waiting:
                log = self.log.setdefault((d.topic, d.partition), [])
                d.base_offset = len(log)
                log.append(record)
                d.settle()
            self.waiting = []

    def close(self, timeout: float | None = None) -> None:
        self.flush(timeout)
        self.closed = True


class FakeCluster:
    def producer_backend(self, front: SendFront, config: ProducerConfig) -> MemoryBackend:
        self.backend = MemoryBackend(front, config)
        return self.backend


def test_a_foreign_backend_reuses_options_checks_serializers_and_futures() -> None:
    cluster = FakeCluster()
    p = Producer(cluster, value_serializer=str.encode, linger_ms=1)  # type: ignore[arg-type]
    backend = cluster.backend
    for name in ("send", "flush"):  # the backend's own function: no facade call per send
        method = getattr(p, name)
        assert method.func is getattr(MemoryBackend, name) and method.args == (backend,)
    assert backend.config.linger_ms == 1
    fut = p.send("t", "hello", b"ab", headers={"h": b"1"})
    done: list[int] = []
    fut.add_done_callback(lambda f: done.append(f.result().offset))
    assert not fut.done()
    meta = fut.result()  # delivers now, through PendingBatch.complete
    assert (meta.topic, meta.partition, meta.offset) == ("t", 2, 0)  # keyed: route.partition_for
    assert done == [0]
    assert backend.log[("t", 2)] == [(b"ab", b"hello", (("h", b"1"),))]
    with pytest.raises(InvalidPartitionError):
        p.send("t", "x", partition=3)
    with pytest.raises(TypeError, match="key"):
        p.send("t", "x", key=1.5)
    with pytest.raises(RecordTooLargeError):
        p.send("t", "x" * (2 << 20))
    with pytest.raises(InvalidArgumentError):
        p.send_many("t", ["a", "b"], [b"k"])
    result = p.send_many("t", ["a", "b"], [b"k", b"kk"])
    assert [(m.partition, m.offset) for m in result.metadata()] == [(1, 0), (2, 1)]
    p.close()
    assert backend.closed


def test_a_custom_partitioner_is_applied_and_checked_for_every_backend() -> None:
    cluster = FakeCluster()
    p = Producer(cluster, partitioner=lambda key, n: n - 1)  # type: ignore[arg-type]
    assert p.send("t", b"v", b"k").result().partition == 2
    bad = Producer(FakeCluster(), partitioner=lambda key, n: n)  # type: ignore[arg-type]
    with pytest.raises(InvalidPartitionError, match="partitioner returned 3"):
        bad.send("t", b"v")
    p.close()
    bad.close()


def test_producer_options_are_validated_before_a_backend_exists() -> None:
    cluster = FakeCluster()
    with pytest.raises(InvalidArgumentError, match="linger_ms"):
        Producer(cluster, linger_ms=-1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="batch_size"):
        Producer(cluster, batch_size="big")  # type: ignore[arg-type]
    assert not hasattr(cluster, "backend")
    with pytest.raises(TypeError, match=r"minikafka\.Broker"):
        Producer(object())  # type: ignore[arg-type]


def test_the_local_backend_is_bound_the_same_way(tmp_path) -> None:
    with minikafka.Broker(tmp_path) as broker:
        broker.create_topic("t")
        with Producer(broker) as p:
            assert p.send.args == (p._backend,)  # type: ignore[attr-defined]
            assert p.send("t", b"v").result().offset == 0
