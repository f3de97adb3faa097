"""KafkaRecordWriter: the Kafka half of a Producer.

minikafka's front half (validation, serializers, partitioning, timestamps)
decides every record's partition, key, value, headers and timestamp; this
module hands the finished record to confluent-kafka's ``Producer`` with
that partition named, and resolves one :class:`Delivery` per record from
librdkafka's delivery report. A poller thread serves the reports, so
deliveries complete (and their callbacks run) without the user calling
``flush``; records still queued at interpreter exit are flushed.

Every line of ``KafkaProducer.send`` and ``Delivery.__call__`` costs every
record (benchmarks/kafka_layer.py): plain bytes skip ``SendFront.prepare``
(its checks inlined, as local_producer.py does), and a record's Delivery
is an empty instance of a per-partition class that is itself the
delivery callback handed to librdkafka.

Why one module of ~570 lines: the writer, its poller and the Delivery
classes share one client and one hot path, which splitting would cross.

Who serves the delivery reports (the client's ``poll``) matters as much:
confluent-kafka takes the GIL once per report, so a thread serving them
while another thread runs Python waits for the GIL per report (the
reports piled up until ``flush``: docs/performance.md). One thread serves at a time (the
``serving`` lock), and it is the busiest one: the sending thread every
``SERVE_EVERY`` sends, as a confluent-kafka application calls
``poll(0)``; a thread waiting for a record (``result``, ``flush``) serves
while it waits; and the poller thread only while records are in flight
and nobody else has served for ``SENDER_BACKOFF``. With nothing in flight
the poller sleeps until the next send wakes it.

Shaped for the "Producer backend interface" of docs/architecture.md; a
record's future and delivery callback is its ``Delivery`` (delivery.py).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from xxhash import xxh3_64_intdigest

if TYPE_CHECKING:
    from ..options import ProducerConfig
    from .admin import KafkaBroker

from ..errors import ClosedError, InvalidArgumentError, MiniKafkaError, RecordTooLargeError
from ..format import RECORD_PREFIX_SIZE, decode_headers
from ..futures import RecordFuture, SendManyResult
from ..options import wait_limit
from ..send_front import HeadersArg, Route, SendFront, to_bytes
from .delivery import Delivery, HeldCountLock, delivery_class
from .errors import TimeoutError, make_client, translate
from .logs import ClientLog

#: Seconds the poller thread waits for delivery reports per call.
POLL_INTERVAL = 0.002
#: Seconds the poller stays out of the way after a sending thread served
#: the reports: each wake-up takes the GIL from that thread, and while it
#: sends it serves them anyway (benchmarks/kafka_backoff.py compares values).
#: What it costs: a done callback of the last records of a burst runs up
#: to this late, unless a result(), flush() or the next send serves first.
SENDER_BACKOFF = 0.01
#: Sends between two looks of the poller (without a serve) that make it
#: poll without waiting, not to hold ``serving`` while a thread sends.
ACTIVE_SENDS = 8
#: The sending thread serves delivery reports once per this many sends.
SERVE_EVERY = 64
#: Seconds close() serves the reports of the records it purged (they come at once).
PURGE_WAIT = 1.0
log = logging.getLogger("minikafka.kafka")

_hash = xxh3_64_intdigest


_LIVE: weakref.WeakSet[KafkaRecordWriter] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    """Nothing sent is silently dropped: write what live writers still hold."""
    for writer in list(_LIVE):
        try:
            writer.close(timeout=writer.request_timeout)
        except MiniKafkaError:
            pass


class Bell:
    """Wakes a sleeping thread: ``ring()``, from any thread, ends one
    ``wait()``; a ring with nobody waiting is kept for the next wait, and
    rings before it count as one.

    A bare lock used as a binary semaphore. Ringing a waiting thread is one
    futex wake, ~7 µs on this machine, where ``threading.Event.set()``
    costs ~27 µs (its Condition wakes the waiter, which then waits for the
    Condition's lock): the send after an idle spell pays it
    (docs/performance.md, "Latency").
    """

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def ring(self) -> None:
        try:
            self._lock.release()
        except RuntimeError:  # already rung, not yet waited for
            pass

    def wait(self) -> None:
        self._lock.acquire()


class KafkaRecordWriter:
    """A confluent-kafka producer that writes already-prepared records.

    Delivery reports are served (the client's ``poll``) by one thread at a
    time, holding ``serving``: see the module docstring for who and why.
    """


    def __init__(self, config: dict[str, Any], *, request_timeout: float = 30.0,
                 linger_ms: float | None = None) -> None:
        from confluent_kafka import Producer

        settings: dict[str, Any] = {"enable.idempotence": True}  # retries keep order, no duplicates
        if linger_ms is not None:
            settings["linger.ms"] = linger_ms
        self.request_timeout = request_timeout
        #: librdkafka's log of this producer (the cause of a timeout)
        self.log = ClientLog()
        self._producer = make_client(Producer, {**settings, **config}, "producer", self.log)
        self._produce = self._producer.produce
        self._poll = self._producer.poll
        self._lock = threading.Lock()
        self.callback_lock = HeldCountLock()  # PendingBatch.lock: settling vs add_done_callback
        #: Held by the thread serving delivery reports (poll or flush).
        self.serving = threading.Lock()
        #: Sends left until the sending thread serves reports (``sent``).
        self.countdown = SERVE_EVERY
        #: Set when a sending thread served reports; the poller clears it.
        self.sender_served = False
        #: The poller sleeps (on ``_wake``) with nothing in flight; the next send wakes it.
        self.idle = False
        self._wake = Bell()
        self._deliveries: dict[tuple[str, int], type[Delivery]] = {}
        #: Called once when the writer closes (KafkaProducer: leave send's fast path).
        self.on_close: Callable[[], None] | None = None
        self._closed = False
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll_loop, name="minikafka-kafka-delivery",
                                        daemon=True)
        self._poller.start()
        _LIVE.add(self)

    def _poll_loop(self) -> None:
        poll, stop, wake, serving = self._producer.poll, self._stop, self._wake, self.serving
        in_flight = self._producer.__len__  # queued, in flight, or reported but not served
        last = self.countdown
        while not stop.is_set():
            if self.idle:
                wake.wait()
                last = self.countdown
            elif self.sender_served:
                # A sending thread serves the reports: polling here too would
                # take the GIL from it once per report.
                self.sender_served = False
                stop.wait(SENDER_BACKOFF)
                last = self.countdown
            else:
                # Sends since the last look that did not reach a serve: a
                # thread sends, slowly (descheduled, say). Then only take what
                # has arrived: a blocking poll holding ``serving`` would stall
                # its next serve. Otherwise wait for the next report (a thread
                # sending one record at a time gets its callback at once).
                count = self.countdown
                sending, last = last - count >= ACTIVE_SENDS, count
                with serving:
                    poll(0 if sending else POLL_INTERVAL)
                if not in_flight():
                    # Race with a send: it checks ``idle`` after its produce,
                    # so either it sees True and wakes us, or we see its record.
                    self.idle = True
                    if in_flight():
                        self.idle = False
                elif sending:
                    stop.wait(POLL_INTERVAL)

    def sent(self) -> None:
        """After each produce: serve reports every ``SERVE_EVERY`` sends, and
        wake an idle poller (``KafkaProducer.send`` inlines this)."""
        self.countdown = c = self.countdown - 1
        if c <= 0:
            self.serve()
        if self.idle:
            self.busy()

    def serve(self) -> None:
        """Serve the delivery reports that have arrived (the sending thread's
        ``poll(0)``, every ``SERVE_EVERY`` sends)."""
        self.countdown = SERVE_EVERY
        self.sender_served = True
        with self.serving:
            self._poll(0)

    def busy(self) -> None:
        """A record is in flight: the idle poller serves again."""
        self.idle = False
        self._wake.ring()

    def wait_for(self, delivery: Delivery, timeout: float | None) -> bool:
        """Until ``delivery`` is settled, serving delivery reports meanwhile
        (in turn with other threads); False after ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while delivery.base_offset < 0 and delivery.error is None:
            left = POLL_INTERVAL if deadline is None else min(POLL_INTERVAL, deadline - time.monotonic())
            if left <= 0:
                return False
            if self.serving.acquire(timeout=left):
                try:
                    if self._poll is None:  # closed: nothing will settle it any more
                        return False
                    self._poll(left)
                finally:
                    self.serving.release()
        return True

    def delivery_class(self, topic: str, partition: int) -> type[Delivery]:
        """The (cached) Delivery class of ``topic``/``partition``."""
        cls = self._deliveries.get((topic, partition))
        if cls is None:
            cls = self._deliveries[(topic, partition)] = delivery_class(self, topic, partition)
        return cls

    def produce(self, topic: str, partition: int, key: bytes | None, value: bytes | None,
                headers: Sequence[tuple[str, bytes | None]] | None, timestamp_ms: int) -> RecordFuture:
        """Queue one record for ``topic``/``partition``; returns its future.

        ``timestamp_ms`` 0 is sent as "now" (confluent-kafka's meaning of 0)."""
        if self._closed:
            raise ClosedError("producer is closed")
        delivery = self.delivery_class(topic, partition)()
        if headers:
            headers = list(headers)
        try:
            self._produce(topic, value, key, partition=partition, timestamp=timestamp_ms,
                          headers=headers or None, on_delivery=delivery)  # type: ignore[arg-type]
        except BufferError:
            self.produce_when_room(topic, value, key, partition, timestamp_ms, headers, delivery)
        except Exception as e:
            raise translate(e, f"producing to {topic}/{partition}") from None
        self.sent()
        return delivery

    def produce_when_room(self, topic: str, value: bytes | None, key: bytes | None, partition: int,
                          timestamp_ms: int, headers: Any, report: Callable[[Any, Any], None]) -> None:
        """librdkafka's queue is full: wait (bounded) for deliveries to make room."""
        deadline = time.monotonic() + self.request_timeout
        while True:
            if self.serving.acquire(timeout=POLL_INTERVAL):
                try:
                    self._poll(0.001)  # the reports make room
                finally:
                    self.serving.release()
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
        timeout = wait_limit(timeout)  # -1 would be librdkafka's "for ever", NaN a ValueError
        since = time.monotonic()
        if not self.serving.acquire(timeout=-1 if timeout is None else timeout):
            raise TimeoutError(f"flush: delivery reports not served within {timeout:g} s "
                               f"(another thread serves them)")
        try:
            left = self._producer.flush(-1 if timeout is None else timeout)
        finally:
            self.serving.release()
        if left:
            raise self.log.explain(TimeoutError(f"flush: {left} records not acknowledged within "
                                                f"{timeout:g} s"), since)

    def _fail_undelivered(self) -> None:
        """close() could not flush: fail what is still queued or in flight
        (librdkafka's purge: each report says so), rather than leave those
        futures pending forever once the poller stops (their done callbacks,
        an AsyncProducer's futures, would never run)."""
        producer = self._producer
        try:
            producer.purge(in_queue=True, in_flight=True, blocking=False)
            deadline = time.monotonic() + PURGE_WAIT
            with self.serving:
                while len(producer) and time.monotonic() < deadline:
                    producer.poll(POLL_INTERVAL)
        except Exception as e:  # the close goes on: this is a best effort
            log.debug("purging an unflushed producer at close: %s", e)

    def close(self, timeout: float | None = None) -> None:
        """Flush, then stop the poller (what could not be flushed fails:
        ``_fail_undelivered``). Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        _LIVE.discard(self)
        if self.on_close is not None:
            self.on_close()
        try:
            self._flush(timeout if timeout is not None else self.request_timeout)
        except BaseException:
            self._fail_undelivered()
            raise
        finally:
            self._stop.set()
            self._wake.ring()
            if self._poller is not threading.current_thread():
                self._poller.join(1.0)
                if not self._poller.is_alive():  # the handle goes now, not at garbage collection
                    with self.serving:
                        self._producer = self._produce = self._poll = None  # type: ignore[assignment]


class KafkaRoute(Route):
    """A Route with what ``KafkaProducer.send`` reads per record: whether
    the front half has nothing custom (``plain``: bytes go straight
    through), each partition's Delivery class (made on first use), and the
    bytes the sticky partition has taken."""

    __slots__ = ("deliveries", "plain", "sticky_bytes")

    def __init__(self, name: str, partitions: int, partition_for: Callable[[bytes], int],
                 max_record: int) -> None:
        super().__init__(name, partitions, partition_for, max_record)
        self.plain = False
        self.deliveries: list[type[Delivery] | None] = [None] * partitions
        self.sticky_bytes = 0


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
        settings = {**broker.config, **broker.producer_config}
        #: What one record may take (RECORD_PREFIX_SIZE framing included, as
        #: on a directory): max_record_bytes, and no more than librdkafka's
        #: message.max.bytes takes — it counts 36 bytes of framing, not 20
        #: (a larger record would fail in produce(), after send_many had
        #: queued the records before it).
        self.max_record_bytes = min(config.max_record_bytes, _librdkafka_max_record(settings))
        self._max_record = self.max_record_bytes
        self._routes: dict[str, KafkaRoute] = {}  # emptied when the writer closes
        self._writer = KafkaRecordWriter(settings,
                                         request_timeout=broker.request_timeout, linger_ms=config.linger_ms)
        self._writer.on_close = self._routes.clear
        self._produce = self._writer._produce
        self._closed = False

    def _route(self, topic: str) -> KafkaRoute:
        if self._closed:
            raise ClosedError("producer is closed")
        if not isinstance(topic, str):
            raise TypeError(f"topic must be a str, not {type(topic).__name__}")
        route = self._routes.get(topic)
        if route is None:
            t = self._broker.topic_for_send(topic)
            n = t.partitions
            # the front half passes bytes: xxh3 % n without KafkaTopic.partition_for's checks
            route = KafkaRoute(topic, n, lambda key: xxh3_64_intdigest(key) % n, self._max_record)
            route.plain = not self._front.custom
            if self._closed:
                raise ClosedError("producer is closed")
            self._routes[topic] = route
        return route

    def partitions_for(self, topic: str) -> set[int]:
        return set(range(self._route(topic).partitions))

    def _move_sticky(self, route: KafkaRoute, size: int) -> None:
        used = route.sticky_bytes + size
        if used >= self._batch_size:
            route.sticky = (route.sticky + 1) % route.partitions
            used = 0
        route.sticky_bytes = used

    def _delivery_class(self, route: KafkaRoute, partition: int) -> type[Delivery]:
        cls = route.deliveries[partition] = self._writer.delivery_class(route.name, partition)
        return cls

    def send(self, topic: str, value: Any = None, key: Any = None, *, partition: int | None = None,
             headers: HeadersArg | None = None, timestamp_ms: int | None = None) -> RecordFuture:
        route = self._routes.get(topic)
        if (route is not None and route.plain and headers is None and timestamp_ms is None
                and (type(value) is bytes or value is None)):
            # The common case, kept short: each line here costs every record
            # (benchmarks/kafka_layer.py). It is SendFront.prepare inlined;
            # anything it would reject goes to _send, which raises.
            if type(key) is bytes:
                size = RECORD_PREFIX_SIZE + len(key)
                if partition is None:
                    n = route.partitions
                    part = _hash(key) % n if n > 1 else 0
            elif key is None:
                size = RECORD_PREFIX_SIZE
                if partition is None:
                    part = route.sticky
            else:
                return self._send(route, topic, value, key, partition, headers, timestamp_ms)
            if partition is not None:
                if type(partition) is not int or not 0 <= partition < route.partitions:
                    return self._send(route, topic, value, key, partition, headers, timestamp_ms)
                part = partition
            if value is not None:
                size += len(value)
            if size <= route.max_record:
                if key is None and partition is None:
                    self._move_sticky(route, size)
                delivery = (route.deliveries[part] or self._delivery_class(route, part))()
                try:
                    # positional (topic, value, key, partition, on_delivery): keyword
                    # arguments cost confluent-kafka ~0.3 µs more per call. No
                    # timestamp: librdkafka stamps it, the report gives it back.
                    self._produce(topic, value, key, part, delivery)
                except BufferError:
                    self._writer.produce_when_room(topic, value, key, part, 0, None, delivery)
                except Exception as e:
                    raise translate(e, f"producing to {topic}/{part}") from None
                w = self._writer  # KafkaRecordWriter.sent(), inlined
                w.countdown = c = w.countdown - 1
                if c <= 0:
                    w.serve()
                if w.idle:
                    w.busy()
                return delivery
        return self._send(route, topic, value, key, partition, headers, timestamp_ms)

    def _send(self, route: KafkaRoute | None, topic: str, value: Any, key: Any, partition: int | None,
              headers: HeadersArg | None, timestamp_ms: int | None) -> RecordFuture:
        """``send`` through the front half: serializers, custom partitioners,
        headers, explicit partitions and timestamps, and every error."""
        if route is None:
            route = self._route(topic)
        if self._closed:
            raise ClosedError("producer is closed")
        p = self._front.prepare(route, value, key, partition, headers, timestamp_ms)
        pairs = [(k, v) for k, v in decode_headers(p.headers, 0)] if p.headers else None
        for name, _ in pairs or ():
            if "\x00" in name:  # librdkafka takes names as C strings: it would cut the name there
                raise InvalidArgumentError(f"headers: header name {name!r} holds a NUL character, "
                                           "which a Kafka header name cannot hold")
        if key is None and partition is None:
            self._move_sticky(route, p.size)
        return self._writer.produce(topic, p.partition, p.key, p.value, pairs, p.timestamp)

    def send_many(self, topic: str, values: Iterable[Any], keys: Iterable[Any] | None = None, *,
                  partition: int | None = None, timestamp_ms: int | None = None) -> SendManyResult:
        """Send every record, then wait for all of them (``send_many`` returns
        what was written)."""
        route = self._route(topic)
        front = self._front
        vals, ks, ts = front.prepare_many(route, values, keys, partition, timestamp_ms)
        # Every record checked before any is queued: a call that raises writes nothing.
        records = [_checked(route, i, v, None if ks is None else ks[i]) for i, v in enumerate(vals)]
        futures = [front_send(self, route, v, k, partition, ts) for v, k in records]
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
        if self._closed:
            raise ClosedError("producer is closed")
        self._writer.flush(timeout)

    def close(self, timeout: float | None = None) -> None:
        self._closed = True
        self._routes.clear()
        try:
            self._writer.close(timeout)
        finally:
            # The writer drops its client here, in the closing thread; this
            # bound method of it would keep it for whoever drops this backend
            # last (an event loop: rd_kafka_destroy stops it). A send that
            # raced the close and reaches it raises ClosedError.
            self._produce = _produce_after_close


def _produce_after_close(*args: Any, **kwargs: Any) -> None:
    raise ClosedError("producer is closed")


#: librdkafka's default message.max.bytes, and the framing it counts per
#: record (RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD): a record of key + value bytes
#: is refused by produce() when 36 + key + value exceeds message.max.bytes.
LIBRDKAFKA_MESSAGE_MAX_BYTES = 1_000_000
LIBRDKAFKA_RECORD_OVERHEAD = 36


def _librdkafka_max_record(settings: dict[str, Any]) -> int:
    """The largest record librdkafka's produce() takes, counted as minikafka
    counts one (``RECORD_PREFIX_SIZE`` + key + value + headers)."""
    try:
        limit = int(settings.get("message.max.bytes", LIBRDKAFKA_MESSAGE_MAX_BYTES))
    except (TypeError, ValueError):  # librdkafka itself refuses the setting
        limit = LIBRDKAFKA_MESSAGE_MAX_BYTES
    return max(1, limit - LIBRDKAFKA_RECORD_OVERHEAD + RECORD_PREFIX_SIZE)


def _checked(route: KafkaRoute, i: int, value: Any, key: Any) -> tuple[Any, Any]:
    """Record ``i`` of a ``send_many`` as bytes, refused if too large."""
    if key is not None and type(key) is not bytes:
        key = to_bytes(key, "key")
    if value is not None and type(value) is not bytes:
        value = to_bytes(value, "value")
    size = RECORD_PREFIX_SIZE + len(key or b"") + len(value or b"")
    if size > route.max_record:
        raise RecordTooLargeError(f"record {i} of send_many to topic {route.name!r} is {size} bytes, "
                                  f"over the limit of {route.max_record} (max_record_bytes, or what "
                                  f"librdkafka's message.max.bytes takes)")
    return value, key


def front_send(backend: KafkaProducer, route: KafkaRoute, value: Any, key: Any, partition: int | None,
               ts: int) -> RecordFuture:
    """One record of a ``send_many`` (already serialized and checked by
    ``_checked``: the front half picks its partition)."""
    front = backend._front
    p = partition if partition is not None else front.partition_of(route, key)
    if key is None and partition is None:
        backend._move_sticky(route, len(value or b""))
    return backend._writer.produce(route.name, p, key, value, None, ts)
