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
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import ClosedError, MiniKafkaError
from ..records import RecordMetadata
from .errors import TimeoutError, translate

#: Seconds the poller thread waits for delivery reports per call.
POLL_INTERVAL = 0.05


class Delivery:
    """One record on its way to the cluster; settled by its delivery report.

    No lock or event per record (one is costly at 100k records/s): settling
    sets plain fields, and the rare waiter sleeps on its writer's condition.
    """

    __slots__ = ("_callbacks", "done_", "error", "offset", "partition", "timestamp", "topic", "writer")

    def __init__(self, writer: KafkaRecordWriter, topic: str, partition: int, timestamp: int) -> None:
        self.writer = writer
        self.topic = topic
        self.partition = partition
        self.timestamp = timestamp
        self.offset = -1
        self.error: BaseException | None = None
        self.done_ = False
        self._callbacks: list[Callable[[Delivery], Any]] | None = None

    def report(self, err: Any, msg: Any) -> None:
        """confluent-kafka's delivery callback for this record."""
        if err is None:
            self.settle(msg.offset(), msg.timestamp()[1], None)
        else:
            self.settle(-1, None, translate(err, f"producing to {self.topic}/{self.partition}"))

    def settle(self, offset: int, timestamp: int | None, error: BaseException | None) -> None:
        if error is None:
            self.offset = offset
            if timestamp is not None and timestamp > 0:
                self.timestamp = timestamp  # the broker's, under LogAppendTime
        else:
            self.error = error
        self.done_ = True
        if self.writer.waiters:
            self.writer.wake()
        for fn in self._callbacks or ():
            fn(self)

    def done(self) -> bool:
        return self.done_

    def wait(self, timeout: float | None) -> None:
        """Until the delivery report arrived; ``TimeoutError`` after ``timeout``."""
        if not self.done_ and not self.writer.wait_for(self, timeout):
            raise TimeoutError(f"record for {self.topic}/{self.partition}: not acknowledged "
                               f"within {timeout:g} s")

    def result(self, timeout: float | None = None) -> RecordMetadata:
        self.wait(timeout)
        if self.error is not None:
            raise self.error
        return RecordMetadata(self.topic, self.partition, self.offset, self.timestamp)

    def add_done_callback(self, fn: Callable[[Delivery], Any]) -> None:
        if self._callbacks is None:
            self._callbacks = []
        self._callbacks.append(fn)
        if self.done_:
            fn(self)


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
                return self._settled.wait_for(lambda: delivery.done_, timeout)
            finally:
                self.waiters -= 1

    def produce(self, topic: str, partition: int, key: bytes | None, value: bytes | None,
                headers: Sequence[tuple[str, bytes | None]] | None, timestamp_ms: int) -> Delivery:
        """Queue one record for ``topic``/``partition``; returns its Delivery.

        ``timestamp_ms`` 0 is sent as "now" (confluent-kafka's meaning of 0)."""
        if self._closed:
            raise ClosedError("producer is closed")
        delivery = Delivery(self, topic, partition, timestamp_ms)
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
        return delivery

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
