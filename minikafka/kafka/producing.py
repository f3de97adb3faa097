"""KafkaRecordWriter: the Kafka half of a Producer.

minikafka's front half (validation, serializers, partitioning, timestamps)
decides every record's partition, key, value, headers and timestamp; this
module hands the finished record to confluent-kafka's ``Producer`` with
that partition named, and resolves one :class:`Delivery` per record from
librdkafka's delivery report. A poller thread serves the reports, so
deliveries complete (and their callbacks run) without the user calling
``flush``; records still queued at interpreter exit are flushed.

Shaped for the "Producer backend interface" of docs/architecture.md: a
``Delivery`` is the per-record ``PendingBatch`` (index 0) that the
interface's ``RecordFuture`` reads.
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from xxhash import xxh3_64_intdigest

if TYPE_CHECKING:
    from ..options import ProducerConfig
    from .admin import KafkaBroker

from ..errors import ClosedError, MiniKafkaError, RecordTooLargeError
from ..format import decode_headers
from ..producer import (
    PENDING_SLOTS,
    HeadersArg,
    PendingBatch,
    RecordFuture,
    Route,
    SendFront,
    SendManyResult,
    new_future,
    now_ms,
    to_bytes,
)
from .errors import TimeoutError, translate

#: Seconds the poller thread waits for delivery reports per call.
POLL_INTERVAL = 0.05


class Delivery(PendingBatch):
    """One record on its way to the cluster (a ``PendingBatch`` of one, index
    0 of its ``RecordFuture``); settled by its delivery report.

    No event per record (one is costly at 100k records/s): settling sets
    plain fields, and the rare waiter sleeps on its writer's condition.
    """

    __slots__ = (*PENDING_SLOTS, "writer")

    def __init__(self, writer: KafkaRecordWriter, topic: str, partition: int) -> None:
        self.writer = writer
        self.start(topic, partition, writer.callback_lock)

    def report(self, err: Any, msg: Any) -> None:
        """confluent-kafka's delivery callback for this record."""
        with self.lock:
            if err is None:
                self.base_offset = msg.offset()
            else:
                self.error = translate(err, f"producing to {self.topic}/{self.partition}")
            self.settle()
        if self.writer.waiters:
            self.writer.wake()

    def complete(self, timeout: float | None) -> None:
        """Until the delivery report arrived; ``TimeoutError`` after ``timeout``."""
        if not self.writer.wait_for(self, timeout):
            raise TimeoutError(f"record for {self.topic}/{self.partition}: not acknowledged "
                               f"within {timeout:g} s")


_LIVE: weakref.WeakSet[KafkaRecordWriter] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    """Nothing sent is silently dropped: write what live writers still hold."""
    for writer in list(_LIVE):
        try:
            writer.close(timeout=writer.request_timeout)
        except MiniKafkaError:
            pass


class KafkaRecordWriter:
    """A confluent-kafka producer that writes already-prepared records."""

    def __init__(self, config: dict[str, Any], *, request_timeout: float = 30.0,
                 linger_ms: float | None = None) -> None:
        from confluent_kafka import Producer

        settings: dict[str, Any] = {"enable.idempotence": True}  # retries keep order, no duplicates
        if linger_ms is not None:
            settings["linger.ms"] = linger_ms
        self.request_timeout = request_timeout
        self._producer = Producer({**settings, **config})
        self._produce = self._producer.produce
        self._poll = self._producer.poll
        self._lock = threading.Lock()
        self.callback_lock = threading.RLock()  # PendingBatch.lock: settling vs add_done_callback
        self._settled = threading.Condition(self._lock)
        self.waiters = 0
        self._closed = False
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll_loop, name="minikafka-kafka-delivery",
                                        daemon=True)
        self._poller.start()
        _LIVE.add(self)

    def _poll_loop(self) -> None:
        poll = self._producer.poll
        while not self._stop.is_set():
            poll(POLL_INTERVAL)

    def wake(self) -> None:
        with self._settled:
            self._settled.notify_all()

    def wait_for(self, delivery: Delivery, timeout: float | None) -> bool:
        """Until ``delivery`` is settled (reports are served by the poller thread)."""
        with self._settled:
            self.waiters += 1
            try:
                return self._settled.wait_for(
                    lambda: delivery.base_offset >= 0 or delivery.error is not None, timeout)
            finally:
                self.waiters -= 1

    def produce(self, topic: str, partition: int, key: bytes | None, value: bytes | None,
                headers: Sequence[tuple[str, bytes | None]] | None, timestamp_ms: int) -> RecordFuture:
        """Queue one record for ``topic``/``partition``; returns its future.

        ``timestamp_ms`` 0 is sent as "now" (confluent-kafka's meaning of 0)."""
        if self._closed:
            raise ClosedError("producer is closed")
        delivery = Delivery(self, topic, partition)
        report = delivery.report
        if headers:
            headers = list(headers)
        try:
            self._produce(topic, value, key, partition=partition, timestamp=timestamp_ms,
                          headers=headers or None, on_delivery=report)  # type: ignore[arg-type]
        except BufferError:
            self._produce_when_room(topic, value, key, partition, timestamp_ms, headers, report)
        except Exception as e:
            raise translate(e, f"producing to {topic}/{partition}") from None
        self._poll(0)  # serve reports here, as confluent-kafka's docs do (the poller is the backstop)
        return new_future(RecordFuture, (delivery, 0, timestamp_ms or now_ms()))

    def _produce_when_room(self, topic: str, value: bytes | None, key: bytes | None, partition: int,
                           timestamp_ms: int, headers: Any, report: Callable[[Any, Any], None]) -> None:
        """librdkafka's queue is full: wait (bounded) for deliveries to make room."""
        deadline = time.monotonic() + self.request_timeout
        while True:
            time.sleep(0.001)
            try:
                self._produce(topic, value, key, partition=partition, timestamp=timestamp_ms,
                              headers=headers or None, on_delivery=report)
                return
            except BufferError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"producing to {topic}/{partition}: the client's queue stayed "
                                       f"full for {self.request_timeout:g} s") from None
            except Exception as e:
                raise translate(e, f"producing to {topic}/{partition}") from None

    def flush(self, timeout: float | None = None) -> None:
        """Until every queued record is acknowledged (or failed); ``TimeoutError`` after ``timeout``."""
        if self._closed:
            raise ClosedError("producer is closed")
        self._flush(timeout)

    def _flush(self, timeout: float | None) -> None:
        left = self._producer.flush(-1 if timeout is None else timeout)
        if left:
            raise TimeoutError(f"flush: {left} records not acknowledged within {timeout:g} s")

    def close(self, timeout: float | None = None) -> None:
        """Flush, then stop the poller. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        _LIVE.discard(self)
        try:
            self._flush(timeout if timeout is not None else self.request_timeout)
        finally:
            self._stop.set()
            if self._poller is not threading.current_thread():
                self._poller.join(1.0)
                if not self._poller.is_alive():  # the handle goes now, not at garbage collection
                    self._producer = self._produce = self._poll = None  # type: ignore[assignment]


class KafkaProducer:
    """The backend of a :class:`minikafka.Producer` on a :class:`KafkaBroker`.

    ``SendFront`` (producer.py) checks and serializes every record and picks
    its partition — the same code as on a directory, so keyed records land
    on ``partition_for(key)`` — and the record goes to confluent-kafka with
    that partition named. Keyless records stick to one partition for
    ``batch_size`` bytes, then move on (as a directory's batches do).
    """

    def __init__(self, broker: KafkaBroker, front: SendFront, config: ProducerConfig) -> None:
        self._broker = broker
        self._front = front
        self._batch_size = config.batch_size
        self._max_record = config.max_record_bytes
        self._routes: dict[str, Route] = {}
        self._sticky_bytes: dict[str, int] = {}
        self._writer = KafkaRecordWriter({**broker.config, **broker.producer_config},
                                         request_timeout=broker.request_timeout, linger_ms=config.linger_ms)
        self._closed = False

    def _route(self, topic: str) -> Route:
        if self._closed:
            raise ClosedError("producer is closed")
        if not isinstance(topic, str):
            raise TypeError(f"topic must be a str, not {type(topic).__name__}")
        route = self._routes.get(topic)
        if route is None:
            t = self._broker.topic_for_send(topic)
            n = t.partitions
            # the front half passes bytes: xxh3 % n without KafkaTopic.partition_for's checks
            route = self._routes[topic] = Route(topic, n, lambda key: xxh3_64_intdigest(key) % n,
                                                self._max_record)
            self._sticky_bytes[topic] = 0
        return route

    def _move_sticky(self, route: Route, size: int) -> None:
        used = self._sticky_bytes[route.name] + size
        if used >= self._batch_size:
            route.sticky = (route.sticky + 1) % route.partitions
            used = 0
        self._sticky_bytes[route.name] = used

    def send(self, topic: str, value: Any = None, key: Any = None, *, partition: int | None = None,
             headers: HeadersArg | None = None, timestamp_ms: int | None = None) -> RecordFuture:
        route = self._routes.get(topic) or self._route(topic)
        if self._closed:
            raise ClosedError("producer is closed")
        p = self._front.prepare(route, value, key, partition, headers, timestamp_ms)
        if key is None and partition is None:
            self._move_sticky(route, p.size)
        pairs = [(k, v) for k, v in decode_headers(p.headers, 0)] if p.headers else None
        return self._writer.produce(topic, p.partition, p.key, p.value, pairs, p.timestamp)

    def send_many(self, topic: str, values: Iterable[Any], keys: Iterable[Any] | None = None, *,
                  partition: int | None = None, timestamp_ms: int | None = None) -> SendManyResult:
        """Send every record, then wait for all of them (``send_many`` returns
        what was written)."""
        route = self._route(topic)
        front = self._front
        vals, ks, ts = front.prepare_many(route, values, keys, partition, timestamp_ms)
        futures = [front_send(self, topic, v, None if ks is None else ks[i], partition, ts)
                   for i, v in enumerate(vals)]
        self._writer.flush(self._broker.request_timeout)
        result = SendManyResult(topic, ts, len(futures))
        order = []
        for f in futures:
            md = f.result(0)
            result.batches.append((md.partition, md.offset, 1))
            order.append(md.partition)
        if len(set(order)) > 1:
            result._order = order
        return result

    def flush(self, timeout: float | None = None) -> None:
        self._writer.flush(timeout)

    def close(self, timeout: float | None = None) -> None:
        self._closed = True
        self._writer.close(timeout)


def front_send(backend: KafkaProducer, topic: str, value: Any, key: Any, partition: int | None,
               ts: int) -> RecordFuture:
    """One record of a ``send_many`` (already serialized: the front half
    checks its type and picks its partition)."""
    front = backend._front
    route = backend._routes[topic]
    if key is not None and type(key) is not bytes:
        key = to_bytes(key, "key")
    if value is not None and type(value) is not bytes:
        value = to_bytes(value, "value")
    p = partition if partition is not None else front.partition_of(route, key)
    if key is None and partition is None:
        backend._move_sticky(route, len(value or b""))
    size = len(key or b"") + len(value or b"")
    if size > route.max_record:
        raise RecordTooLargeError(f"record of {size} bytes for topic {topic!r} exceeds the limit of "
                                  f"{route.max_record} bytes (max_record_bytes)")
    return backend._writer.produce(topic, p, key, value, None, ts)
