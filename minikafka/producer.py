"""The Producer: batches records per partition and appends whole batches.

``send`` encodes the record straight into the partition's open batch (a
``bytearray`` with room for the batch header) and returns a small future.
A batch is written — one lock, one header, one checksum — when it reaches
``batch_size`` bytes, when it is ``linger_ms`` old (a background thread),
or on ``flush()``, ``close()`` or a future's ``result()``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from xxhash import xxh3_64_intdigest

from .errors import ClosedError, InvalidArgumentError, InvalidPartitionError, RecordTooLargeError
from .format import BATCH_HEADER_SIZE, RECORD_PREFIX, RECORD_PREFIX_SIZE, encode_headers
from .records import RecordMetadata

if TYPE_CHECKING:
    from .broker import Broker
    from .partition import Partition
    from .topic import Topic

MiB = 1 << 20
_pack_prefix = RECORD_PREFIX.pack
_hash = xxh3_64_intdigest
_time_ns = time.time_ns
_BATCH_PLACEHOLDER = bytes(BATCH_HEADER_SIZE)


def _to_bytes(data: Any, what: str) -> bytes:
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


def _check_timestamp(timestamp_ms: Any) -> int:
    if not isinstance(timestamp_ms, int) or isinstance(timestamp_ms, bool):
        raise TypeError(f"timestamp_ms must be an int, not {type(timestamp_ms).__name__}")
    return int(timestamp_ms)


class _Batch:
    """Records of one partition waiting to be written together."""

    __slots__ = (
        "base_offset", "buf", "callbacks", "count", "created", "error", "first_ts",
        "max_ts", "part", "producer", "topic",
    )

    def __init__(self, producer: Producer, topic: str, part: Partition, ts: int) -> None:
        self.producer = producer
        self.topic = topic
        self.part = part
        self.buf = bytearray(_BATCH_PLACEHOLDER)
        self.count = 0
        self.first_ts = ts
        self.max_ts = ts
        self.created = time.monotonic()
        self.base_offset = -1
        self.error: BaseException | None = None
        self.callbacks: list[tuple[Callable[[RecordFuture], Any], RecordFuture]] | None = None


class RecordFuture(tuple):
    """The outcome of one ``send``: ``result()`` gives its RecordMetadata.

    Calling ``result()`` before the batch is written writes it now. (A
    tuple of batch, index and timestamp: the cheapest object to create, one
    per send.)
    """

    __slots__ = ()

    def done(self) -> bool:
        b = self[0]
        return b.base_offset >= 0 or b.error is not None

    def result(self, timeout: float | None = None) -> RecordMetadata:
        """Wait for the record to be written; raise what writing it raised.

        The write happens in the calling thread, so ``timeout`` only bounds
        waiting for another thread that is writing this batch.
        """
        b, index, ts = self
        if b.base_offset < 0 and b.error is None:
            b.producer._write_batch(b, timeout)
        if b.error is not None:
            raise b.error
        return RecordMetadata(b.topic, b.part.number, b.base_offset + index, ts)

    get = result  # kafka-python's name

    def exception(self, timeout: float | None = None) -> BaseException | None:
        try:
            self.result(timeout)
        except Exception as e:
            return e
        return None

    def add_done_callback(self, fn: Callable[[RecordFuture], Any]) -> None:
        """Call ``fn(future)`` once the record is written (or failed)."""
        b = self[0]
        if not self.done():
            with b.producer._lock:
                if not self.done():
                    if b.callbacks is None:
                        b.callbacks = []
                    b.callbacks.append((fn, self))
                    return
        fn(self)

    def __repr__(self) -> str:
        b = self[0]
        return f"<RecordFuture {b.topic}/{b.part.number} {'done' if self.done() else 'pending'}>"


_new_future = tuple.__new__


class SendManyResult:
    """What ``send_many`` wrote: one entry per batch (partition, base offset,
    count). ``metadata()`` expands it to one RecordMetadata per record, in
    the order the records were given."""

    __slots__ = ("_order", "batches", "count", "timestamp", "topic")

    def __init__(self, topic: str, timestamp: int, count: int) -> None:
        self.topic = topic
        self.timestamp = timestamp
        self.count = count
        self.batches: list[tuple[int, int, int]] = []
        self._order: list[int] | None = None  # partition of each record; None: one partition

    def done(self) -> bool:
        return True

    def metadata(self) -> list[RecordMetadata]:
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


BULK_BATCH_BYTES = 256 * 1024


def _common_length(items: list[Any]) -> int | None:
    """The length shared by all ``items`` if all are ``bytes``, else None.
    (Two C-level passes; no Python code per item.)"""
    if set(map(type, items)) != {bytes}:
        return None
    lengths = set(map(len, items))
    return lengths.pop() if len(lengths) == 1 else None


def _encode_uniform(keys: list[bytes] | None, values: list[bytes], klen: int, vlen: int, ts: int,
                    per_batch: int) -> list[tuple[bytearray, int]]:
    """Encode records whose keys and values each have one length: every
    record then starts with the same 20-byte prefix, so a batch is the
    join of [prefix, key, value, prefix, key, value, ...], built by slice
    assignment and joined in C (benchmarks/: "produce: send_many() bulk")."""
    prefix = _pack_prefix(ts, klen, vlen, 0)
    columns = [c for c, n in ((keys, klen), (values, vlen)) if n > 0]
    width = 1 + len(columns)
    chunks = []
    for start in range(0, len(values), per_batch):
        stop = min(start + per_batch, len(values))
        parts = [prefix] * ((stop - start) * width)
        for i, column in enumerate(columns, 1):
            parts[i::width] = column[start:stop]  # type: ignore[index]
        buf = bytearray(_BATCH_PLACEHOLDER)
        buf += b"".join(parts)
        chunks.append((buf, stop - start))
    return chunks


class _TopicState:
    """What the producer caches per topic."""

    __slots__ = ("batches", "limit", "max_record", "name", "partitions", "parts", "plain", "sticky", "topic")

    def __init__(self, topic: Topic, batch_size: int, max_record_bytes: int, plain: bool) -> None:
        self.topic = topic
        self.name = topic.name
        self.partitions = topic.partitions
        self.parts = [topic.partition(p) for p in range(topic.partitions)]
        self.batches: list[_Batch | None] = [None] * topic.partitions
        cfg = topic.config
        self.limit = min(batch_size, cfg.max_batch_bytes)  # 0: no batching
        self.max_record = min(max_record_bytes, cfg.max_record_bytes)
        self.sticky = 0
        self.plain = plain  # no serializers or partitioner: send() may take its fast path


class Producer:
    """Sends records to the topics of a broker. Safe to share between threads.

    Options: ``key_serializer``/``value_serializer`` (callables applied to
    non-None keys and values), ``partitioner(key, num_partitions) -> int``
    (used for every record without an explicit partition), ``linger_ms``
    (5: longest time a record waits for its batch to fill; 0 writes every
    send at once), ``batch_size`` (16384 bytes), ``max_record_bytes``
    (1 MiB, never more than one segment holds).
    """

    def __init__(
        self,
        broker: Broker,
        *,
        key_serializer: Callable[[Any], Any] | None = None,
        value_serializer: Callable[[Any], Any] | None = None,
        partitioner: Callable[[bytes | None, int], int] | None = None,
        linger_ms: float = 5,
        batch_size: int = 16384,
        max_record_bytes: int = MiB,
    ) -> None:
        from .broker import Broker

        if not isinstance(broker, Broker):
            raise TypeError(f"Producer needs a minikafka.Broker, not {type(broker).__name__}")
        for name, fn in (("key_serializer", key_serializer), ("value_serializer", value_serializer),
                         ("partitioner", partitioner)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be callable, not {type(fn).__name__}")
        if not isinstance(linger_ms, (int, float)) or isinstance(linger_ms, bool):
            raise TypeError(f"linger_ms must be a number, not {type(linger_ms).__name__}")
        if linger_ms < 0:
            raise InvalidArgumentError(f"linger_ms must be >= 0, got {linger_ms}")
        for name, value in (("batch_size", batch_size), ("max_record_bytes", max_record_bytes)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an int, not {type(value).__name__}")
            if value <= 0:
                raise InvalidArgumentError(f"{name} must be > 0, got {value}")
        self._broker = broker
        self._key_serializer = key_serializer
        self._value_serializer = value_serializer
        self._partitioner = partitioner
        self._custom = key_serializer is not None or value_serializer is not None
        self._linger = linger_ms / 1000.0
        self._batch_size = batch_size
        self._max_record_bytes = max_record_bytes
        self._topics: dict[str, _TopicState] = {}
        self._pending: dict[int, _Batch] = {}  # id(batch) -> batch, in creation order
        self._lock = threading.RLock()
        self._wakeup = threading.Condition(self._lock)
        self._linger_thread: threading.Thread | None = None
        self._linger_idle = False  # the linger thread waits for a first batch
        self._closed = False

    def __repr__(self) -> str:
        return f"<Producer {str(self._broker.path)!r}{' closed' if self._closed else ''}>"

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _topic_state(self, topic: str) -> _TopicState:
        if self._closed:
            raise ClosedError("producer is closed")
        if not isinstance(topic, str):
            raise TypeError(f"topic must be a str, not {type(topic).__name__}")
        with self._lock:
            state = self._topics.get(topic)
            if state is None or state.topic.closed:
                t = self._broker.topic_for_send(topic)
                # linger_ms=0: a limit of 0 writes every record as it is sent
                limit = self._batch_size if self._linger > 0 else 0
                state = _TopicState(t, limit, self._max_record_bytes,
                                    plain=not self._custom and self._partitioner is None)
                self._topics[topic] = state
            return state

    def send(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        *,
        partition: int | None = None,
        headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]] | None = None,
        timestamp_ms: int | None = None,
    ) -> RecordFuture:
        """Queue one record; returns a future of its RecordMetadata.

        Everything is validated before anything is buffered: a call that
        raises writes nothing.
        """
        state = self._topics.get(topic)  # emptied by close()
        if (
            state is not None and state.plain and partition is None and headers is None
            and timestamp_ms is None and (key is None or type(key) is bytes)
            and (value is None or type(value) is bytes) and not state.topic.closed
        ):
            # The common case, kept short: each line here costs every record
            # (benchmarks/: "produce: send() per record").
            if key is None:
                klen = -1
                partition = state.sticky
                size = RECORD_PREFIX_SIZE
            else:
                klen = len(key)
                partition = _hash(key) % state.partitions if state.partitions > 1 else 0
                size = RECORD_PREFIX_SIZE + klen
            if value is None:
                vlen = -1
            else:
                vlen = len(value)
                size += vlen
            if size <= state.max_record:
                ts = _time_ns() // 1_000_000
                lock = self._lock
                lock.acquire()
                try:
                    batch = state.batches[partition]
                    if batch is None or len(batch.buf) + size > state.limit:
                        batch = self._new_batch(state, partition, ts)
                    buf = batch.buf
                    buf += _pack_prefix(ts, klen, vlen, 0)
                    if klen > 0:
                        buf += key  # type: ignore[arg-type]  # klen > 0: bytes
                    if vlen > 0:
                        buf += value  # type: ignore[arg-type]  # vlen > 0: bytes
                    n = batch.count
                    batch.count = n + 1
                    if ts > batch.max_ts:
                        batch.max_ts = ts
                    if len(buf) >= state.limit:
                        self._write_batch(batch)
                finally:
                    lock.release()
                return _new_future(RecordFuture, (batch, n, ts))
        return self._send(topic, value, key, partition, headers, timestamp_ms)

    def _send(self, topic: str, value: Any, key: Any, partition: int | None,
              headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]] | None,
              timestamp_ms: int | None) -> RecordFuture:
        """``send`` with every option and check (the fast path's fallback).
        Its buffering tail repeats the fast path's on purpose: a shared
        helper would cost the fast path a call per record."""
        state = self._topics.get(topic)
        if state is None or state.topic.closed:
            state = self._topic_state(topic)
        if self._custom:  # serializers or a partitioner
            key, value = self._serialize(key, value)
        if key is not None:
            if type(key) is not bytes:
                key = _to_bytes(key, "key")
            klen = len(key)
        else:
            klen = -1
        if value is not None:
            if type(value) is not bytes:
                value = _to_bytes(value, "value")
            vlen = len(value)
        else:
            vlen = -1
        if partition is None:
            if klen >= 0 and self._partitioner is None:
                partition = _hash(key) % state.partitions
            elif self._partitioner is not None:
                partition = self._choose_partition(state, key)
            else:
                partition = state.sticky
        elif type(partition) is not int or not 0 <= partition < state.partitions:
            self._check_partition(state, partition)
        if timestamp_ms is None:
            ts = _time_ns() // 1_000_000
        elif type(timestamp_ms) is int:
            ts = timestamp_ms
        else:
            ts = _check_timestamp(timestamp_ms)
        if headers is None:
            hdr = b""
            size = RECORD_PREFIX_SIZE
        else:
            hdr = encode_headers(headers)
            size = RECORD_PREFIX_SIZE + len(hdr)
        if klen > 0:
            size += klen
        if vlen > 0:
            size += vlen
        if size > state.max_record:
            raise RecordTooLargeError(
                f"record of {size} bytes for topic {topic!r} exceeds the limit of "
                f"{state.max_record} bytes (max_record_bytes, or what one segment holds)"
            )
        lock = self._lock
        lock.acquire()  # cheaper than "with" on this path
        try:
            batch = state.batches[partition]
            if batch is None or len(batch.buf) + size > state.limit:
                batch = self._new_batch(state, partition, ts)
            buf = batch.buf
            buf += _pack_prefix(ts, klen, vlen, len(hdr))
            if klen > 0:
                buf += key
            if vlen > 0:
                buf += value
            if hdr:
                buf += hdr
            future = _new_future(RecordFuture, (batch, batch.count, ts))
            batch.count += 1
            if ts > batch.max_ts:
                batch.max_ts = ts
            if len(buf) >= state.limit:
                self._write_batch(batch)
        finally:
            lock.release()
        return future

    def _new_batch(self, state: _TopicState, partition: int, ts: int) -> _Batch:
        """Close the partition's full batch (if any) and open a new one."""
        if self._closed:  # closed by another thread since send() looked
            raise ClosedError("producer is closed")
        batch = state.batches[partition]
        if batch is not None:
            self._write_batch(batch)
        batch = state.batches[partition] = _Batch(self, state.name, state.parts[partition], ts)
        self._pending[id(batch)] = batch
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
        state = self._topic_state(topic)
        values = values if isinstance(values, list) else list(values)
        if keys is not None:
            keys = keys if isinstance(keys, list) else list(keys)
            if len(keys) != len(values):
                raise InvalidArgumentError(
                    f"send_many: {len(keys)} keys for {len(values)} values (lengths must match)"
                )
        if partition is not None:
            self._check_partition(state, partition)
        ts = _time_ns() // 1_000_000 if timestamp_ms is None else _check_timestamp(timestamp_ms)
        if self._custom:
            pairs = [self._serialize(k, v)
                     for k, v in zip(keys or [None] * len(values), values, strict=True)]
            keys = [k for k, _ in pairs] if keys is not None else None
            values = [v for _, v in pairs]
        result = SendManyResult(state.name, ts, len(values))
        n = state.partitions
        with self._lock:
            if self._closed:
                raise ClosedError("producer is closed")
            sticky = state.sticky
            groups: dict[int, tuple[list[Any] | None, list[Any]]]
            if keys is None or partition is not None or (n == 1 and self._partitioner is None):
                groups = {sticky if partition is None else partition: (keys, values)}
            else:
                order = [
                    sticky if k is None
                    else _hash(_to_bytes(k, "key")) % n if self._partitioner is None
                    else self._choose_partition(state, _to_bytes(k, "key"))
                    for k in keys
                ]
                result._order = order
                group_keys: dict[int, list[Any]] = {}
                group_values: dict[int, list[Any]] = {}
                for k, v, p in zip(keys, values, order, strict=True):
                    if p not in group_keys:
                        group_keys[p], group_values[p] = [], []
                    group_keys[p].append(k)
                    group_values[p].append(v)
                groups = {p: (group_keys[p], group_values[p]) for p in group_keys}
            # Encode (and so validate) everything before writing anything.
            encoded = {p: self._encode_bulk(state, ks, vs, ts) for p, (ks, vs) in groups.items()}
            for p, chunks in encoded.items():
                pending = state.batches[p]
                if pending is not None:
                    self._write_batch(pending)  # what was sent before goes first
                part = state.parts[p]
                for buf, count in chunks:
                    result.batches.append((p, part.append(buf, count, ts, ts), count))
            if sticky in groups:
                state.sticky = (sticky + 1) % n
        return result

    @staticmethod
    def _encode_bulk(state: _TopicState, keys: list[Any] | None, values: list[Any],
                     ts: int) -> list[tuple[bytearray, int]]:
        """Encode records into batches of ~BULK_BATCH_BYTES, validating each."""
        max_batch = state.topic.config.max_batch_bytes
        chunk = max(state.limit, min(BULK_BATCH_BYTES, max_batch))
        limit = state.max_record
        vlen = _common_length(values)
        klen = -1 if keys is None else _common_length(keys)
        if vlen is not None and klen is not None and (klen > 0 or vlen > 0):
            size = RECORD_PREFIX_SIZE + max(klen, 0) + max(vlen, 0)
            if size > limit:
                raise RecordTooLargeError(
                    f"records of send_many to topic {state.name!r} are {size} bytes, "
                    f"over the limit of {limit} (max_record_bytes, or what one segment holds)"
                )
            # As many records per batch as the loop below would put there.
            per_batch = max(1, min(-(-(chunk - BATCH_HEADER_SIZE) // size),
                                   (max_batch - BATCH_HEADER_SIZE) // size))
            return _encode_uniform(keys, values, klen, vlen, ts, per_batch)
        pack = _pack_prefix
        chunks = []
        buf = bytearray(_BATCH_PLACEHOLDER)
        count = 0
        for i, v in enumerate(values):
            if v is None:
                vlen = -1
            else:
                if type(v) is not bytes:
                    v = _to_bytes(v, "value")
                vlen = len(v)
            k = None if keys is None else keys[i]
            if k is None:
                klen = -1
            else:
                if type(k) is not bytes:
                    k = _to_bytes(k, "key")
                klen = len(k)
            size = RECORD_PREFIX_SIZE + (klen if klen > 0 else 0) + (vlen if vlen > 0 else 0)
            if size > limit:
                raise RecordTooLargeError(
                    f"record {i} of send_many to topic {state.name!r} is {size} bytes, "
                    f"over the limit of {limit} (max_record_bytes, or what one segment holds)"
                )
            if count and len(buf) + size > max_batch:  # the batch must fit a segment
                chunks.append((buf, count))
                buf = bytearray(_BATCH_PLACEHOLDER)
                count = 0
            buf += pack(ts, klen, vlen, 0)
            if klen > 0:
                buf += k  # type: ignore[arg-type]  # klen > 0: bytes
            if vlen > 0:
                buf += v
            count += 1
            if len(buf) >= chunk:
                chunks.append((buf, count))
                buf = bytearray(_BATCH_PLACEHOLDER)
                count = 0
        if count:
            chunks.append((buf, count))
        return chunks

    def _serialize(self, key: Any, value: Any) -> tuple[Any, Any]:
        if key is not None and self._key_serializer is not None:
            key = self._key_serializer(key)
        if value is not None and self._value_serializer is not None:
            value = self._value_serializer(value)
        return key, value

    def _choose_partition(self, state: _TopicState, key: bytes | None) -> int:
        assert self._partitioner is not None
        n = state.partitions
        partition = self._partitioner(key, n)
        if type(partition) is not int or not 0 <= partition < n:
            raise InvalidPartitionError(
                f"partitioner returned {partition!r} for topic {state.name!r}, which has "
                f"partitions 0..{n - 1}"
            )
        return partition

    @staticmethod
    def _check_partition(state: _TopicState, partition: Any) -> None:
        if not isinstance(partition, int) or isinstance(partition, bool):
            raise TypeError(f"partition must be an int, not {type(partition).__name__}")
        if not 0 <= partition < state.partitions:
            raise InvalidPartitionError(
                f"partition {partition} out of range for topic {state.name!r} "
                f"(partitions 0..{state.partitions - 1})"
            )

    def _write_batch(self, batch: _Batch, timeout: float | None = None) -> None:
        """Append ``batch`` if nobody has; store its offset or its error."""
        with self._lock:
            if batch.base_offset >= 0 or batch.error is not None:
                return
            self._pending.pop(id(batch), None)
            state = self._topics.get(batch.topic)
            if state is not None:
                number = batch.part.number
                if state.batches[number] is batch:
                    state.batches[number] = None
                    if number == state.sticky:  # keyless records move on
                        state.sticky = (number + 1) % state.partitions
            try:
                batch.base_offset = batch.part.append(
                    batch.buf, batch.count, batch.first_ts, batch.max_ts
                )
            except BaseException as e:
                batch.error = e
            batch.buf = bytearray()
            if batch.callbacks:
                for fn, fut in batch.callbacks:
                    fn(fut)
                batch.callbacks = None

    def _start_linger(self) -> None:
        thread = threading.Thread(target=self._linger_loop, name="minikafka-linger", daemon=True)
        self._linger_thread = thread
        thread.start()

    def _linger_loop(self) -> None:
        """Write batches that have waited ``linger_ms``; sleep while idle."""
        with self._lock:
            while not self._closed:
                if not self._pending:
                    self._linger_idle = True
                    self._wakeup.wait()
                    self._linger_idle = False
                    continue
                oldest = next(iter(self._pending.values()))
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
            for batch in list(self._pending.values()):
                self._write_batch(batch, timeout)
            self._wakeup.notify_all()

    def close(self, timeout: float | None = None) -> None:
        """Flush, stop the linger thread; later sends raise ClosedError."""
        with self._lock:
            if self._closed:
                return
            if not self._broker.closed:
                for batch in list(self._pending.values()):
                    self._write_batch(batch, timeout)
            else:
                for batch in list(self._pending.values()):
                    batch.error = ClosedError("broker closed before the record was written")
                self._pending.clear()
            self._closed = True
            self._topics.clear()  # send() finds no state and raises ClosedError
            self._wakeup.notify_all()
        thread = self._linger_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
