"""The Producer facade and the front half every producer backend shares.

``Producer(broker, **options)`` validates its options (``ProducerConfig``),
builds a :class:`SendFront` (serializers, partitioner, record checks) and
binds the ``send``/``send_many``/``flush`` of a backend — the local one
(``local_producer.py``) for a :class:`~minikafka.Broker`, or the one
``broker.producer_backend(front, config)`` returns (the Kafka backend).
Binding at construction keeps the facade off the hot path. The interface
is written down in docs/architecture.md, "Producer backend interface".
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from .errors import InvalidArgumentError, InvalidPartitionError, RecordTooLargeError
from .format import RECORD_PREFIX_SIZE, encode_headers
from .options import MiB, ProducerConfig
from .partitioners import murmur2
from .records import RecordMetadata

if TYPE_CHECKING:
    from .broker import Broker

HeadersArg = Mapping[str, bytes] | Iterable[tuple[str, bytes]]
_time_ns = time.time_ns
log = logging.getLogger("minikafka")


# -- the front half: checks, serializers, partitioners ----------------------------


def to_bytes(data: Any, what: str) -> bytes:
    """bytes for the wire from a non-None key or value; TypeError naming
    ``what`` for anything else."""
    if type(data) is bytes:
        return data
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(
        f"{what} must be bytes, bytearray, memoryview, str or None (or set a "
        f"{what}_serializer), not {type(data).__name__}"
    )


def check_timestamp(timestamp_ms: Any) -> int:
    if not isinstance(timestamp_ms, int) or isinstance(timestamp_ms, bool):
        raise TypeError(f"timestamp_ms must be an int, not {type(timestamp_ms).__name__}")
    if timestamp_ms < 0:
        raise InvalidArgumentError(f"timestamp_ms must be >= 0 (ms since the epoch), got {timestamp_ms}")
    return int(timestamp_ms)


def now_ms() -> int:
    return _time_ns() // 1_000_000


def deadline_of(timeout: Any) -> float | None:
    """The ``time.monotonic()`` instant a call given ``timeout`` seconds
    (None: no limit) must return by; TypeError/InvalidArgumentError naming
    ``timeout`` for anything but a number >= 0 or None."""
    if timeout is None:
        return None
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool):
        raise TypeError(f"timeout must be a number or None, not {type(timeout).__name__}")
    if not timeout >= 0:  # also NaN, which would wait forever
        raise InvalidArgumentError(f"timeout must be a number >= 0 or None, got {timeout!r}")
    if timeout == math.inf:  # no limit (too large for a lock's wait)
        return None
    return time.monotonic() + timeout


class Route:
    """What the front half knows of one topic: its name, partition count,
    keyed partition function, record size limit, and the partition keyless
    records go to now (``sticky``; the backend moves it on per batch)."""

    __slots__ = ("max_record", "name", "partition_for", "partitions", "sticky")

    def __init__(self, name: str, partitions: int, partition_for: Callable[[bytes], int],
                 max_record: int) -> None:
        self.name = name
        self.partitions = partitions
        self.partition_for = partition_for
        self.max_record = max_record
        self.sticky = 0


class Prepared(NamedTuple):
    """One record, checked and serialized, with its partition chosen.
    ``headers`` is the encoded header block (``format.decode_headers(h, 0)``
    gives the pairs back); ``size`` its encoded size in a batch."""

    partition: int
    key: bytes | None
    value: bytes | None
    headers: bytes
    timestamp: int
    size: int


class SendFront:
    """Serializers, partitioner and record checks of one producer."""

    __slots__ = ("custom", "key_hash", "key_serializer", "partitioner", "value_serializer")

    def __init__(self, config: ProducerConfig) -> None:
        self.key_serializer = config.key_serializer
        self.value_serializer = config.value_serializer
        p = config.partitioner
        self.partitioner = None if p is None or isinstance(p, str) else p
        # partitioner="murmur2": keyed records by the Java client's hash ("xxh3": the topic's own)
        self.key_hash = murmur2 if p == "murmur2" else None
        # Anything that makes send() leave its fast path.
        self.custom = (self.key_serializer is not None or self.value_serializer is not None
                       or self.partitioner is not None or self.key_hash is not None)

    def serialize(self, key: Any, value: Any) -> tuple[Any, Any]:
        """Apply the serializers to a non-None key and value."""
        if key is not None and self.key_serializer is not None:
            key = self.key_serializer(key)
        if value is not None and self.value_serializer is not None:
            value = self.value_serializer(value)
        return key, value

    def partition_of(self, route: Route, key: bytes | None) -> int:
        """Where a record without an explicit partition goes: the custom
        partitioner's choice, the key's partition, or the sticky one."""
        if self.partitioner is not None:
            n = route.partitions
            partition = self.partitioner(key, n)
            if type(partition) is not int or not 0 <= partition < n:
                raise InvalidPartitionError(
                    f"partitioner returned {partition!r} for topic {route.name!r}, which has "
                    f"partitions 0..{n - 1}"
                )
            return partition
        if key is not None:
            if route.partitions == 1:
                return 0
            return route.partition_for(key) if self.key_hash is None else self.key_hash(key, route.partitions)
        return route.sticky

    @staticmethod
    def check_partition(route: Route, partition: Any) -> int:
        if not isinstance(partition, int) or isinstance(partition, bool):
            raise TypeError(f"partition must be an int, not {type(partition).__name__}")
        if not 0 <= partition < route.partitions:
            raise InvalidPartitionError(
                f"partition {partition} out of range for topic {route.name!r} "
                f"(partitions 0..{route.partitions - 1})"
            )
        return partition

    def prepare(self, route: Route, value: Any, key: Any, partition: int | None,
                headers: HeadersArg | None, timestamp_ms: int | None) -> Prepared:
        """Check and serialize one record and choose its partition; raises
        (TypeError, InvalidPartitionError, RecordTooLargeError) before
        anything is buffered."""
        if self.custom:
            key, value = self.serialize(key, value)
        if key is not None and type(key) is not bytes:
            key = to_bytes(key, "key")
        if value is not None and type(value) is not bytes:
            value = to_bytes(value, "value")
        if partition is None:
            partition = self.partition_of(route, key)
        elif type(partition) is not int or not 0 <= partition < route.partitions:
            self.check_partition(route, partition)
        if timestamp_ms is None:
            ts = _time_ns() // 1_000_000
        elif type(timestamp_ms) is int and timestamp_ms >= 0:
            ts = timestamp_ms
        else:
            ts = check_timestamp(timestamp_ms)
        hdr = b"" if headers is None else encode_headers(headers)
        size = RECORD_PREFIX_SIZE + len(hdr) + (len(key) if key else 0) + (len(value) if value else 0)
        if size > route.max_record:
            raise RecordTooLargeError(
                f"record of {size} bytes for topic {route.name!r} exceeds the limit of "
                f"{route.max_record} bytes (max_record_bytes, or what one segment holds)"
            )
        return Prepared(partition, key, value, hdr, ts, size)

    def prepare_many(self, route: Route, values: Iterable[Any], keys: Iterable[Any] | None,
                     partition: int | None, timestamp_ms: int | None,
                     ) -> tuple[list[Any], list[Any] | None, int]:
        """``send_many``'s arguments as lists (serialized), checked for
        matching lengths and partition; returns (values, keys, timestamp).
        Keys and values are type-checked when they are encoded."""
        if isinstance(values, (bytes, bytearray, memoryview, str)):
            raise TypeError(f"send_many values must be an iterable of values, not one "
                            f"{type(values).__name__} (for one record use send)")
        values = values if isinstance(values, list) else list(values)
        if keys is not None:
            keys = keys if isinstance(keys, list) else list(keys)
            if len(keys) != len(values):
                raise InvalidArgumentError(
                    f"send_many: {len(keys)} keys for {len(values)} values (lengths must match)"
                )
        if partition is not None:
            self.check_partition(route, partition)
        ts = now_ms() if timestamp_ms is None else check_timestamp(timestamp_ms)
        if self.key_serializer is not None or self.value_serializer is not None:
            pairs = [self.serialize(k, v)
                     for k, v in zip(keys or [None] * len(values), values, strict=True)]
            keys = [k for k, _ in pairs] if keys is not None else None
            values = [v for _, v in pairs]
        return values, keys, ts

    def partitions_of(self, route: Route, keys: list[Any]) -> list[int]:
        """Each keyed record's partition (``send_many``); keys as given."""
        return [self.partition_of(route, None if k is None else to_bytes(k, "key")) for k in keys]


# -- futures ----------------------------------------------------------------------

#: PendingBatch's attributes, for a subclass that declares ``__slots__``.
PENDING_SLOTS = ("base_offset", "callbacks", "error", "lock", "partition", "topic")


def run_callbacks(callbacks: list[tuple[Callable[[RecordFuture], Any], RecordFuture]]) -> None:
    """Call each ``fn(future)``; one that raises is logged on the
    ``minikafka`` logger and the others still run (a callback is user code:
    it must not stop the thread that delivers records)."""
    for fn, fut in callbacks:
        try:
            fn(fut)
        except Exception:
            log.exception("done callback %r of %r raised (ignored)", fn, fut)


class PendingBatch:
    """Records of one partition delivered together: what a RecordFuture
    waits for. A backend subclasses it (``PENDING_SLOTS`` in its
    ``__slots__``, or none), calls
    :meth:`start` in its constructor, sets ``base_offset`` or ``error`` once
    delivered and then calls :meth:`settle` (best with no lock held: it runs
    user callbacks), and implements :meth:`complete` — deliver or wait now
    (``RecordFuture.result``)."""

    base_offset: int
    callbacks: list[tuple[Callable[[RecordFuture], Any], RecordFuture]] | None
    error: BaseException | None
    lock: threading.RLock
    partition: int
    topic: str

    def start(self, topic: str, partition: int, lock: threading.RLock) -> None:
        self.topic = topic
        self.partition = partition
        self.lock = lock
        self.base_offset = -1
        self.error = None
        self.callbacks = None

    def complete(self, timeout: float | None) -> None:
        raise NotImplementedError

    def settle(self) -> None:
        """Run the done callbacks (``base_offset`` or ``error`` is set), each
        once and guarded (:func:`run_callbacks`). They are taken under
        ``lock`` and run after it is released, unless the caller holds it."""
        with self.lock:  # against add_done_callback adding one meanwhile
            callbacks, self.callbacks = self.callbacks, None
        if callbacks:
            run_callbacks(callbacks)


class RecordFuture(tuple):
    """The outcome of one ``send``: ``result()`` gives its RecordMetadata.

    Calling ``result()`` before the batch is delivered delivers it now. (A
    tuple of batch, index and timestamp: the cheapest object to create, one
    per send.)
    """

    __slots__ = ()

    def done(self) -> bool:
        """Whether the record is written (or failed); never waits or writes."""
        b = self[0]
        return b.base_offset >= 0 or b.error is not None

    def result(self, timeout: float | None = None) -> RecordMetadata:
        """Wait for the record to be written; raise what writing it raised.

        A record not yet written is written now (local backend: in the
        calling thread). ``timeout`` (seconds, None: no limit) bounds the
        wait — for a lock another process or thread holds, or for the
        delivery report: then :class:`~minikafka.TimeoutError` naming what
        it waited for. A write that timed out fails the record (its
        ``result()`` raises that error from then on); a wait for another
        thread's write leaves the record pending.
        """
        b, index, ts = self
        if b.base_offset < 0 and b.error is None:
            b.complete(timeout)
        if b.error is not None:
            raise b.error
        return RecordMetadata(b.topic, b.partition, b.base_offset + index, ts)

    get = result  # kafka-python's name

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """What writing the record raised, or None once it is written;
        waits as ``result()`` does."""
        try:
            self.result(timeout)
        except Exception as e:
            return e
        return None

    def add_done_callback(self, fn: Callable[[RecordFuture], Any]) -> None:
        """Call ``fn(future)`` once the record is written (or failed): in the
        thread that wrote it, holding no producer lock, or now if it is
        done. An exception ``fn`` raises is logged (``minikafka`` logger)
        and ignored."""
        b = self[0]
        if not self.done():
            with b.lock:
                if not self.done():
                    if b.callbacks is None:
                        b.callbacks = []
                    b.callbacks.append((fn, self))
                    return
        run_callbacks([(fn, self)])

    def __repr__(self) -> str:
        b = self[0]
        return f"<RecordFuture {b.topic}/{b.partition} {'done' if self.done() else 'pending'}>"


new_future = tuple.__new__


class SendManyResult:
    """What ``send_many`` wrote: one entry per batch (partition, base offset,
    count). ``metadata()`` expands it to one RecordMetadata per record, in
    the order the records were given."""

    __slots__ = {
        "_order": None,
        "batches": "(partition, base offset, count) of each batch written.",
        "count": "Number of records written.",
        "timestamp": "The timestamp (ms) every record got.",
        "topic": "The topic written to.",
    }

    def __init__(self, topic: str, timestamp: int, count: int) -> None:
        self.topic = topic
        self.timestamp = timestamp
        self.count = count
        self.batches: list[tuple[int, int, int]] = []
        self._order: list[int] | None = None  # partition of each record; None: one partition

    def done(self) -> bool:
        """Always True: ``send_many`` returns once its records are written."""
        return True

    def metadata(self) -> list[RecordMetadata]:
        """One RecordMetadata per record, in the order the records were given."""
        offsets: dict[int, list[int]] = {}
        for partition, base, count in self.batches:
            offsets.setdefault(partition, []).extend(range(base, base + count))
        if self._order is None:
            return [RecordMetadata(self.topic, p, o, self.timestamp)
                    for p, offs in offsets.items() for o in offs]
        cursor = dict.fromkeys(offsets, 0)
        out = []
        for p in self._order:
            out.append(RecordMetadata(self.topic, p, offsets[p][cursor[p]], self.timestamp))
            cursor[p] += 1
        return out

    result = metadata

    def __repr__(self) -> str:
        return f"<SendManyResult {self.topic} {self.count} records in {len(self.batches)} batches>"


# -- the backend seam and the facade ----------------------------------------------


class ProducerBackend(Protocol):
    """Where records go. See docs/architecture.md, "Producer backend interface"."""

    def send(self, topic: str, value: Any = None, key: Any = None, *, partition: int | None = None,
             headers: HeadersArg | None = None, timestamp_ms: int | None = None) -> RecordFuture: ...

    def send_many(self, topic: str, values: Iterable[Any], keys: Iterable[Any] | None = None, *,
                  partition: int | None = None, timestamp_ms: int | None = None) -> SendManyResult: ...

    def flush(self, timeout: float | None = None) -> None: ...

    def close(self, timeout: float | None = None) -> None: ...


class Producer:
    """Sends records to the topics of a broker. Safe to share between threads.

    Options (``ProducerConfig``): ``key_serializer``/``value_serializer``
    (callables applied to non-None keys and values), ``partitioner(key,
    num_partitions) -> int`` (used for every record without an explicit
    partition; or ``"murmur2"``/``"xxh3"``: the hash of keyed records),
    ``linger_ms`` (5: longest time a record waits for its batch to fill;
    0 writes every send at once), ``batch_size`` (16384 bytes),
    ``max_record_bytes`` (1 MiB, never more than one segment holds).

    ``send(topic, value=None, key=None, *, partition=None, headers=None,
    timestamp_ms=None) -> RecordFuture`` queues one record, validated before
    anything is buffered; ``send_many(topic, values, keys=None, *,
    partition=None, timestamp_ms=None) -> SendManyResult`` writes many now;
    ``flush(timeout=None)`` writes everything sent so far. Records still
    held at interpreter exit are written then (waiting at most the broker's
    ``request_timeout``; what could not be written is logged). Done
    callbacks run in the thread that delivered the record (locally: holding
    no producer lock); one that raises is logged on the ``minikafka`` logger.

    Attribute: ``config`` (the :class:`ProducerConfig` in use).
    """

    def __init__(
        self,
        broker: Broker,
        *,
        key_serializer: Callable[[Any], Any] | None = None,
        value_serializer: Callable[[Any], Any] | None = None,
        partitioner: Callable[[bytes | None, int], int] | str | None = None,
        linger_ms: float = 5,
        batch_size: int = 16384,
        max_record_bytes: int = MiB,
    ) -> None:
        from .broker import Broker

        factory = None if isinstance(broker, Broker) else getattr(broker, "producer_backend", None)
        if factory is None and not isinstance(broker, Broker):
            raise TypeError(f"Producer needs a minikafka.Broker (or what minikafka.connect returns), "
                            f"not {type(broker).__name__}")
        self.config = config = ProducerConfig(
            key_serializer=key_serializer, value_serializer=value_serializer, partitioner=partitioner,
            linger_ms=linger_ms, batch_size=batch_size, max_record_bytes=max_record_bytes,
        )
        front = SendFront(config)
        if factory is None:
            from .local_producer import LocalProducer

            backend: ProducerBackend = LocalProducer(broker, front, config)
        else:
            backend = factory(front, config)
        self._broker = broker
        self._backend = backend
        # Bound once: a send through the facade costs no extra call. (The
        # methods below document them and serve calls made via the class.)
        self.send = backend.send  # type: ignore[method-assign]
        self.send_many = backend.send_many  # type: ignore[method-assign]
        self.flush = backend.flush  # type: ignore[method-assign]
        self._closed = False

    def __repr__(self) -> str:
        path = getattr(self._broker, "path", self._broker)
        return f"<Producer {str(path)!r}{' closed' if self._closed else ''}>"

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def send(self, topic: str, value: Any = None, key: Any = None, *, partition: int | None = None,
             headers: HeadersArg | None = None, timestamp_ms: int | None = None) -> RecordFuture:
        """Queue one record; returns a :class:`RecordFuture` of its RecordMetadata.

        ``key``/``value``: bytes-like, ``str`` or None (after the
        serializers); ``partition``: explicit, else the partitioner's, the
        key's (xxh3) or the sticky one for keyless records; ``headers``: a
        mapping or (name, bytes) pairs; ``timestamp_ms``: default now. Bad
        arguments raise here, before anything is buffered. The record is
        written when its batch fills, after ``linger_ms``, on ``flush()``,
        or when ``result()`` is called.
        """
        return self._backend.send(topic, value, key, partition=partition, headers=headers,
                                  timestamp_ms=timestamp_ms)

    def send_many(self, topic: str, values: Iterable[Any], keys: Iterable[Any] | None = None, *,
                  partition: int | None = None, timestamp_ms: int | None = None) -> SendManyResult:
        """Write many records now, in few large batches (the bulk path);
        returns once they are written.

        ``values`` (and ``keys``, the same length, if given) follow the
        rules of ``send``; all records share one timestamp. Keyed records go
        to their key's partition (or the partitioner's choice), the rest to
        ``partition`` or one partition chosen as for keyless ``send``.
        Validated first: a call that raises writes nothing.
        """
        return self._backend.send_many(topic, values, keys, partition=partition,
                                       timestamp_ms=timestamp_ms)

    def flush(self, timeout: float | None = None) -> None:
        """Write every record sent so far; afterwards every send's future is done.

        ``timeout`` (seconds, None: no limit) bounds the whole call, then
        :class:`~minikafka.TimeoutError` naming what it waited for. Local
        backend: a batch whose write could not take its partition's writer
        lock in time fails with that error (its futures raise it; never
        written later) and flush raises it once every batch was tried.
        """
        self._backend.flush(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Flush, stop background work; later sends raise ClosedError.

        Waits at most ``timeout`` seconds (None: the broker's
        ``request_timeout``), then raises :class:`~minikafka.TimeoutError`
        as ``flush`` does; the producer is closed either way.
        """
        self._closed = True
        self._backend.close(timeout)
