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
_BATCH_PLACEHOLDER = bytes(BATCH_HEADER_SIZE)


def _to_bytes(data: Any, what: str) -> bytes | None:
    """bytes for the wire; TypeError naming ``what`` for anything else."""
    if data is None or type(data) is bytes:
        return data
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(
        f"{what} must be bytes, bytearray, memoryview, str or None (or set a "
        f"{what}_serializer), not {type(data).__name__}"
    )


class _Batch:
    """Records of one partition waiting to be written together."""

    __slots__ = (
        "base_offset", "buf", "callbacks", "count", "created", "error", "first_ts",
        "max_ts", "part", "topic",
    )

    def __init__(self, topic: str, part: Partition, ts: int) -> None:
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


class RecordFuture:
    """The outcome of one ``send``: ``result()`` gives its RecordMetadata.

    Calling ``result()`` before the batch is written writes it now.
    """

    __slots__ = ("_batch", "_index", "_producer", "_ts")

    def __init__(self, producer: Producer, batch: _Batch, index: int, ts: int) -> None:
        self._producer = producer
        self._batch = batch
        self._index = index
        self._ts = ts

    def done(self) -> bool:
        b = self._batch
        return b.base_offset >= 0 or b.error is not None

    def result(self, timeout: float | None = None) -> RecordMetadata:
        """Wait for the record to be written; raise what writing it raised.

        The write happens in the calling thread, so ``timeout`` only bounds
        waiting for another thread that is writing this batch.
        """
        b = self._batch
        if b.base_offset < 0 and b.error is None:
            self._producer._write_batch(b, timeout)
        if b.error is not None:
            raise b.error
        return RecordMetadata(b.topic, b.part.number, b.base_offset + self._index, self._ts)

    get = result  # kafka-python's name

    def exception(self, timeout: float | None = None) -> BaseException | None:
        try:
            self.result(timeout)
        except Exception as e:
            return e
        return None

    def add_done_callback(self, fn: Callable[[RecordFuture], Any]) -> None:
        """Call ``fn(future)`` once the record is written (or failed)."""
        b = self._batch
        if self.done():
            fn(self)
            return
        with self._producer._lock:
            if not self.done():
                if b.callbacks is None:
                    b.callbacks = []
                b.callbacks.append((fn, self))
                return
        fn(self)

    def __repr__(self) -> str:
        state = "done" if self.done() else "pending"
        return f"<RecordFuture {self._batch.topic}/{self._batch.part.number} {state}>"


class _TopicState:
    """What the producer caches per topic."""

    __slots__ = ("batches", "limit", "max_record", "name", "partitions", "parts", "sticky", "topic")

    def __init__(self, topic: Topic, batch_size: int, max_record_bytes: int) -> None:
        self.topic = topic
        self.name = topic.name
        self.partitions = topic.partitions
        self.parts = [topic.partition(p) for p in range(topic.partitions)]
        self.batches: list[_Batch | None] = [None] * topic.partitions
        cfg = topic.config
        self.limit = min(batch_size, cfg.max_batch_bytes)
        self.max_record = min(max_record_bytes, cfg.max_record_bytes)
        self.sticky = 0


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
        self._linger = linger_ms / 1000.0
        self._batch_size = batch_size
        self._max_record_bytes = max_record_bytes
        self._topics: dict[str, _TopicState] = {}
        self._pending: dict[int, _Batch] = {}  # id(batch) -> batch, in creation order
        self._lock = threading.RLock()
        self._wakeup = threading.Condition(self._lock)
        self._linger_thread: threading.Thread | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"<Producer {str(self._broker.path)!r}{' closed' if self._closed else ''}>"

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _topic_state(self, topic: str) -> _TopicState:
        if not isinstance(topic, str):
            raise TypeError(f"topic must be a str, not {type(topic).__name__}")
        state = self._topics.get(topic)
        if state is None or state.topic.closed:
            t = self._broker._topic_or_create(topic)
            state = _TopicState(t, self._batch_size, self._max_record_bytes)
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
        if self._closed:
            raise ClosedError("producer is closed")
        state = self._topics.get(topic)
        if state is None or state.topic.closed:
            state = self._topic_state(topic)
        if key is not None:
            if self._key_serializer is not None:
                key = self._key_serializer(key)
            if type(key) is not bytes:
                key = _to_bytes(key, "key")
        if value is not None:
            if self._value_serializer is not None:
                value = self._value_serializer(value)
            if type(value) is not bytes:
                value = _to_bytes(value, "value")
        n = state.partitions
        if partition is None:
            if self._partitioner is not None:
                partition = self._partitioner(key, n)
                if not isinstance(partition, int) or not 0 <= partition < n:
                    raise InvalidPartitionError(
                        f"partitioner returned {partition!r} for topic {topic!r}, which has "
                        f"partitions 0..{n - 1}"
                    )
            elif key is not None:
                partition = xxh3_64_intdigest(key) % n
            else:
                partition = state.sticky
        elif type(partition) is not int and (
            not isinstance(partition, int) or isinstance(partition, bool)
        ):
            raise TypeError(f"partition must be an int, not {type(partition).__name__}")
        if not 0 <= partition < n:
            raise InvalidPartitionError(
                f"partition {partition} out of range for topic {topic!r} (partitions 0..{n - 1})"
            )
        if timestamp_ms is None:
            ts = int(time.time() * 1000)
        elif type(timestamp_ms) is int:
            ts = timestamp_ms
        else:
            if not isinstance(timestamp_ms, int) or isinstance(timestamp_ms, bool):
                raise TypeError(f"timestamp_ms must be an int, not {type(timestamp_ms).__name__}")
            ts = int(timestamp_ms)
        if headers:
            hdr = encode_headers(headers)
        elif headers is None or isinstance(headers, (Mapping, list, tuple)):
            hdr = b""
        else:
            hdr = encode_headers(headers)
        klen = -1 if key is None else len(key)
        vlen = -1 if value is None else len(value)
        size = RECORD_PREFIX_SIZE + (klen if klen > 0 else 0) + (vlen if vlen > 0 else 0) + len(hdr)
        if size > state.max_record:
            raise RecordTooLargeError(
                f"record of {size} bytes for topic {topic!r} exceeds the limit of "
                f"{state.max_record} bytes (max_record_bytes, or what one segment holds)"
            )
        with self._lock:
            if self._closed:
                raise ClosedError("producer is closed")
            batch = state.batches[partition]
            if batch is not None and len(batch.buf) + size > state.limit:
                self._write_batch(batch)
                batch = None
            if batch is None:
                batch = state.batches[partition] = _Batch(state.name, state.parts[partition], ts)
                self._pending[id(batch)] = batch
                if self._linger > 0:
                    if self._linger_thread is None:
                        self._start_linger()
                    elif len(self._pending) == 1:
                        self._wakeup.notify()  # the linger thread sleeps while idle
            buf = batch.buf
            buf += _pack_prefix(ts, klen, vlen, len(hdr))
            if klen > 0:
                buf += key
            if vlen > 0:
                buf += value
            if hdr:
                buf += hdr
            future = RecordFuture(self, batch, batch.count, ts)
            batch.count += 1
            if ts > batch.max_ts:
                batch.max_ts = ts
            if len(buf) >= state.limit or self._linger == 0:
                self._write_batch(batch)
        return future

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
                    self._wakeup.wait()
                    continue
                oldest = next(iter(self._pending.values()))
                delay = oldest.created + self._linger - time.monotonic()
                if delay > 0:
                    self._wakeup.wait(delay)
                    continue
                self._write_batch(oldest)

    def flush(self, timeout: float | None = None) -> None:
        """Write every record sent so far; afterwards every future is done."""
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
                self.flush(timeout)
            else:
                for batch in list(self._pending.values()):
                    batch.error = ClosedError("broker closed before the record was written")
                self._pending.clear()
            self._closed = True
            self._wakeup.notify_all()
        thread = self._linger_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
