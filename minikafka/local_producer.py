"""The local producer backend: batches records per partition and appends
whole batches to the partition's segments.

``send`` encodes the record straight into the partition's open batch (a
:class:`~minikafka.batch.BatchBuilder`) and returns a small future. A batch
is written — one lock, one header, one checksum — when it reaches
``batch_size`` bytes, when it is ``linger_ms`` old (a background thread),
or on ``flush()``, ``close()`` or a future's ``result()``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from xxhash import xxh3_64_intdigest

from .batch import BatchBuilder, build_uniform, pack_prefix
from .errors import ClosedError, RecordTooLargeError
from .format import BATCH_HEADER_SIZE, RECORD_PREFIX_SIZE
from .options import ProducerConfig
from .producer import (
    PENDING_SLOTS,
    HeadersArg,
    PendingBatch,
    RecordFuture,
    Route,
    SendFront,
    SendManyResult,
    new_future,
    to_bytes,
)

if TYPE_CHECKING:
    from .broker import Broker
    from .partition import Partition
    from .topic import Topic

_hash = xxh3_64_intdigest
_time_ns = time.time_ns
BULK_BATCH_BYTES = 256 * 1024


class _Batch(BatchBuilder, PendingBatch):
    """Records of one partition waiting to be written together."""

    __slots__ = (*PENDING_SLOTS, "created", "part", "producer")

    def __init__(self, producer: LocalProducer, topic: str, part: Partition, ts: int) -> None:
        BatchBuilder.__init__(self, ts)
        self.start(topic, part.number, producer._lock)
        self.producer = producer
        self.part = part
        self.created = time.monotonic()

    def complete(self, timeout: float | None) -> None:
        self.producer._write_batch(self, timeout)


def _common_length(items: list[Any]) -> int | None:
    """The length shared by all ``items`` if all are ``bytes``, else None.
    (Two C-level passes; no Python code per item.)"""
    if set(map(type, items)) != {bytes}:
        return None
    lengths = set(map(len, items))
    return lengths.pop() if len(lengths) == 1 else None


class _TopicRoute(Route):
    """What the producer caches per topic: the route and the open batches."""

    __slots__ = ("batch_bytes", "batches", "parts", "plain", "topic")

    def __init__(self, topic: Topic, batch_size: int, max_record_bytes: int, plain: bool) -> None:
        cfg = topic.config
        super().__init__(topic.name, topic.partitions, topic.partition_for,
                         min(max_record_bytes, cfg.max_record_bytes))
        self.topic = topic
        self.parts = [topic.partition(p) for p in range(topic.partitions)]
        self.batches: list[_Batch | None] = [None] * topic.partitions
        self.batch_bytes = min(batch_size, cfg.max_batch_bytes)  # 0: no batching
        self.plain = plain  # no serializers or partitioner: send() may take its fast path


class LocalProducer:
    """The backend of a Producer on a local :class:`~minikafka.Broker`."""

    def __init__(self, broker: Broker, front: SendFront, config: ProducerConfig) -> None:
        self._broker = broker
        self._front = front
        self._linger = config.linger_ms / 1000.0
        self._batch_size = config.batch_size
        self._max_record_bytes = config.max_record_bytes
        self._topics: dict[str, _TopicRoute] = {}
        self._unwritten: dict[int, _Batch] = {}  # id(batch) -> batch, in creation order
        self._lock = threading.RLock()
        self._wakeup = threading.Condition(self._lock)
        self._linger_thread: threading.Thread | None = None
        self._linger_idle = False  # the linger thread waits for a first batch
        self._closed = False

    def _route(self, topic: str) -> _TopicRoute:
        if self._closed:
            raise ClosedError("producer is closed")
        if not isinstance(topic, str):
            raise TypeError(f"topic must be a str, not {type(topic).__name__}")
        with self._lock:
            route = self._topics.get(topic)
            if route is None or route.topic.closed:
                t = self._broker.topic_for_send(topic)
                # linger_ms=0: a batch of 0 bytes writes every record as it is sent
                batch_bytes = self._batch_size if self._linger > 0 else 0
                route = _TopicRoute(t, batch_bytes, self._max_record_bytes, plain=not self._front.custom)
                self._topics[topic] = route
            return route

    def send(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        *,
        partition: int | None = None,
        headers: HeadersArg | None = None,
        timestamp_ms: int | None = None,
    ) -> RecordFuture:
        """Queue one record; returns a future of its RecordMetadata.

        Everything is validated before anything is buffered: a call that
        raises writes nothing.
        """
        route = self._topics.get(topic)  # emptied by close()
        if (
            route is not None and route.plain and partition is None and headers is None
            and timestamp_ms is None and (key is None or type(key) is bytes)
            and (value is None or type(value) is bytes) and not route.topic.closed
        ):
            # The common case, kept short: each line here costs every record
            # (benchmarks/: "produce: send() per record"). It is
            # BatchBuilder.append and SendFront.prepare inlined.
            if key is None:
                klen = -1
                partition = route.sticky
                size = RECORD_PREFIX_SIZE
            else:
                klen = len(key)
                partition = _hash(key) % route.partitions if route.partitions > 1 else 0
                size = RECORD_PREFIX_SIZE + klen
            if value is None:
                vlen = -1
            else:
                vlen = len(value)
                size += vlen
            if size <= route.max_record:
                ts = _time_ns() // 1_000_000
                lock = self._lock
                lock.acquire()  # cheaper than "with" on this path
                try:
                    batch = route.batches[partition]
                    if batch is None or len(batch.buf) + size > route.batch_bytes:
                        batch = self._new_batch(route, partition, ts)
                    buf = batch.buf
                    buf += pack_prefix(ts, klen, vlen, 0)
                    if klen > 0:
                        buf += key  # type: ignore[arg-type]  # klen > 0: bytes
                    if vlen > 0:
                        buf += value  # type: ignore[arg-type]  # vlen > 0: bytes
                    n = batch.count
                    batch.count = n + 1
                    if ts > batch.max_ts:
                        batch.max_ts = ts
                    if len(buf) >= route.batch_bytes:
                        self._write_batch(batch)
                finally:
                    lock.release()
                return new_future(RecordFuture, (batch, n, ts))
        if route is None or route.topic.closed:
            route = self._route(topic)
        rec = self._front.prepare(route, value, key, partition, headers, timestamp_ms)
        lock = self._lock
        lock.acquire()
        try:
            batch = route.batches[rec.partition]
            if batch is None or len(batch.buf) + rec.size > route.batch_bytes:
                batch = self._new_batch(route, rec.partition, rec.timestamp)
            n = batch.append(rec.timestamp, rec.key, rec.value, rec.headers)
            if len(batch.buf) >= route.batch_bytes:
                self._write_batch(batch)
        finally:
            lock.release()
        return new_future(RecordFuture, (batch, n, rec.timestamp))

    def _new_batch(self, route: _TopicRoute, partition: int, ts: int) -> _Batch:
        """Close the partition's full batch (if any) and open a new one."""
        if self._closed:  # closed by another thread since send() looked
            raise ClosedError("producer is closed")
        batch = route.batches[partition]
        if batch is not None:
            self._write_batch(batch)
        batch = route.batches[partition] = _Batch(self, route.name, route.parts[partition], ts)
        self._unwritten[id(batch)] = batch
        if self._linger > 0:
            if self._linger_thread is None:
                self._start_linger()
            elif self._linger_idle:
                # Only an idle linger thread needs waking: one in a timed wait
                # wakes by itself no later than this batch is due (waking it
                # per batch cost ~10% of send() throughput).
                self._wakeup.notify()
        return batch

    def send_many(
        self,
        topic: str,
        values: Iterable[Any],
        keys: Iterable[Any] | None = None,
        *,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> SendManyResult:
        """Write many records now, in few large batches: the bulk path.

        ``values`` (and ``keys``, the same length, if given) follow the
        rules of ``send``; all records share one timestamp. Keyed records go
        to their key's partition (or the partitioner's choice), the rest to
        ``partition`` or one partition chosen as for keyless ``send``. Each
        partition's records keep their order, after any records this
        producer sent before. Validated first: a call that raises writes
        nothing.
        """
        route = self._route(topic)
        front = self._front
        values, keys, ts = front.prepare_many(route, values, keys, partition, timestamp_ms)
        result = SendManyResult(route.name, ts, len(values))
        n = route.partitions
        with self._lock:
            if self._closed:
                raise ClosedError("producer is closed")
            sticky = route.sticky
            groups: dict[int, tuple[list[Any] | None, list[Any]]]
            if keys is None or partition is not None or (n == 1 and front.partitioner is None):
                groups = {sticky if partition is None else partition: (keys, values)}
            else:
                order = result._order = front.partitions_of(route, keys)
                group_keys: dict[int, list[Any]] = {}
                group_values: dict[int, list[Any]] = {}
                for k, v, p in zip(keys, values, order, strict=True):
                    if p not in group_keys:
                        group_keys[p], group_values[p] = [], []
                    group_keys[p].append(k)
                    group_values[p].append(v)
                groups = {p: (group_keys[p], group_values[p]) for p in group_keys}
            # Encode (and so validate) everything before writing anything.
            encoded = {p: self._encode_bulk(route, ks, vs, ts) for p, (ks, vs) in groups.items()}
            for p, batches in encoded.items():
                pending = route.batches[p]
                if pending is not None:
                    self._write_batch(pending)  # what was sent before goes first
                part = route.parts[p]
                for b in batches:
                    result.batches.append((p, part.append(b), b.count))
            if sticky in groups:
                route.sticky = (sticky + 1) % n
        return result

    @staticmethod
    def _encode_bulk(route: _TopicRoute, keys: list[Any] | None, values: list[Any],
                     ts: int) -> list[BatchBuilder]:
        """Encode records into batches of ~BULK_BATCH_BYTES, validating each."""
        max_batch = route.topic.config.max_batch_bytes
        chunk = max(route.batch_bytes, min(BULK_BATCH_BYTES, max_batch))
        max_record = route.max_record
        vlen = _common_length(values)
        klen = -1 if keys is None else _common_length(keys)
        if vlen is not None and klen is not None and (klen > 0 or vlen > 0):
            size = RECORD_PREFIX_SIZE + max(klen, 0) + max(vlen, 0)
            if size > max_record:
                raise RecordTooLargeError(
                    f"records of send_many to topic {route.name!r} are {size} bytes, "
                    f"over the limit of {max_record} (max_record_bytes, or what one segment holds)"
                )
            # As many records per batch as the loop below would put there.
            per_batch = max(1, min(-(-(chunk - BATCH_HEADER_SIZE) // size),
                                   (max_batch - BATCH_HEADER_SIZE) // size))
            return build_uniform(keys, values, klen, vlen, ts, per_batch)
        out = []
        b = BatchBuilder(ts)
        for i, v in enumerate(values):
            if v is not None and type(v) is not bytes:
                v = to_bytes(v, "value")
            k = None if keys is None else keys[i]
            if k is not None and type(k) is not bytes:
                k = to_bytes(k, "key")
            size = RECORD_PREFIX_SIZE + (len(k) if k else 0) + (len(v) if v else 0)
            if size > max_record:
                raise RecordTooLargeError(
                    f"record {i} of send_many to topic {route.name!r} is {size} bytes, "
                    f"over the limit of {max_record} (max_record_bytes, or what one segment holds)"
                )
            if b.count and len(b.buf) + size > max_batch:  # the batch must fit a segment
                out.append(b)
                b = BatchBuilder(ts)
            b.append(ts, k, v)
            if len(b.buf) >= chunk:
                out.append(b)
                b = BatchBuilder(ts)
        if b.count:
            out.append(b)
        return out

    def _write_batch(self, batch: _Batch, timeout: float | None = None) -> None:
        """Append ``batch`` if nobody has; store its offset or its error."""
        with self._lock:
            if batch.base_offset >= 0 or batch.error is not None:
                return
            self._unwritten.pop(id(batch), None)
            route = self._topics.get(batch.topic)
            if route is not None:
                number = batch.partition
                if route.batches[number] is batch:
                    route.batches[number] = None
                    if number == route.sticky:  # keyless records move on
                        route.sticky = (number + 1) % route.partitions
            try:
                batch.base_offset = batch.part.append(batch)
            except BaseException as e:
                batch.error = e
            batch.buf = bytearray()
            batch.settle()

    def _start_linger(self) -> None:
        thread = threading.Thread(target=self._linger_loop, name="minikafka-linger", daemon=True)
        self._linger_thread = thread
        thread.start()

    def _linger_loop(self) -> None:
        """Write batches that have waited ``linger_ms``; sleep while idle."""
        with self._lock:
            while not self._closed:
                if not self._unwritten:
                    self._linger_idle = True
                    self._wakeup.wait()
                    self._linger_idle = False
                    continue
                oldest = next(iter(self._unwritten.values()))
                delay = oldest.created + self._linger - time.monotonic()
                if delay > 0:
                    self._wakeup.wait(delay)
                    continue
                self._write_batch(oldest)

    def flush(self, timeout: float | None = None) -> None:
        """Write every record sent so far; afterwards every future is done."""
        if self._closed:
            raise ClosedError("producer is closed")
        with self._lock:
            for batch in list(self._unwritten.values()):
                self._write_batch(batch, timeout)
            self._wakeup.notify_all()

    def close(self, timeout: float | None = None) -> None:
        """Flush, stop the linger thread; later sends raise ClosedError."""
        with self._lock:
            if self._closed:
                return
            if not self._broker.closed:
                for batch in list(self._unwritten.values()):
                    self._write_batch(batch, timeout)
            else:
                for batch in list(self._unwritten.values()):
                    batch.error = ClosedError("broker closed before the record was written")
                self._unwritten.clear()
            self._closed = True
            self._topics.clear()  # send() finds no route and raises ClosedError
            self._wakeup.notify_all()
        thread = self._linger_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
