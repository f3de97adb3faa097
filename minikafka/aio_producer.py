"""``AsyncProducer``: the asyncio front end of :class:`~minikafka.Producer`
(aio.py has the consumer and the overview).

``send`` queues in the loop thread; what may wait on another process's
writer lock, the disk or the network runs in other threads: the batches
``send`` fills (local backend: the producer's linger thread, see
local_producer.py "Hand-off"), ``send_and_wait`` of a record still in its
batch, ``send_many``, ``flush``, ``close`` and a remote backend's first
lookup of a topic (worker threads), and the close of a producer dropped
without close() (``closeable.close_in_thread``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from .closeable import start_closer
from .errors import ClosedError
from .producer import Producer, RecordFuture, SendManyResult
from .records import RecordMetadata
from .send_front import HeadersArg


def is_local(broker: Any) -> bool:
    """A data directory (not a remote backend such as Kafka)."""
    from .broker import Broker

    return isinstance(broker, Broker)


def _settle(fut: asyncio.Future[RecordMetadata], record_future: RecordFuture) -> None:
    if fut.done():
        return
    try:
        fut.set_result(record_future.result(0))
    except Exception as e:
        fut.set_exception(e)


def _forward(fut: asyncio.Future[RecordMetadata], record_future: RecordFuture) -> None:
    """Resolve ``fut`` (in its loop) with ``record_future``'s outcome."""
    if record_future.done():
        _settle(fut, record_future)
        return
    loop = fut.get_loop()

    def done(rf: RecordFuture) -> None:  # runs in whichever thread wrote the batch
        try:
            loop.call_soon_threadsafe(_settle, fut, rf)
        except RuntimeError:
            pass  # the loop is closed: nobody is left to await it

    record_future.add_done_callback(done)


class AsyncProducer:
    """asyncio front end of :class:`~minikafka.Producer`; same options.

    ``await send(...)`` queues a record and returns an asyncio future of its
    RecordMetadata (resolved when its batch is written: ``linger_ms`` or a
    full batch, as for ``Producer``); ``send_and_wait`` returns the
    metadata itself. ``send`` encodes in the loop thread and leaves every
    write to other threads, so a writer lock another process holds, a
    segment roll or an msync never stops the event loop; only with more
    than 32 MiB of full batches waiting (a writer far behind) does ``send``
    write itself, as ``Producer.send`` does, slowing the sender.
    """

    def __init__(self, broker: Any, **options: Any) -> None:
        self._broker = broker
        self._producer = Producer(broker, **options)
        # Dropped without close(), it closes in a thread of its own: the
        # flush (writer locks, the cluster) would stop this loop.
        self._producer._drop_closes_in_thread = True
        start_closer()
        self._local = is_local(broker)
        if self._local:
            self._producer._backend.hand_off_writes()  # type: ignore[attr-defined]
        self._request_timeout: float | None = getattr(getattr(broker, "options", None),
                                                      "request_timeout", None)
        self._routed: set[str] = set()  # remote: topics looked up already (partitions_for)

    def __repr__(self) -> str:
        return f"<AsyncProducer of {self._producer!r}>"

    @property
    def producer(self) -> Producer:
        """The synchronous Producer this wraps (for ``send_many`` and the like)."""
        return self._producer

    async def __aenter__(self) -> AsyncProducer:
        if self._producer._closed:
            raise ClosedError("producer is closed")
        return self

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def start(self) -> None:
        """aiokafka's habit; the producer is ready once constructed."""

    async def send(self, topic: str, value: Any = None, key: Any = None, *, partition: int | None = None,
                   headers: HeadersArg | None = None,
                   timestamp_ms: int | None = None) -> asyncio.Future[RecordMetadata]:
        """Queue one record; returns a future resolving to its RecordMetadata.

        Bad arguments raise here, before anything is queued (as ``Producer.send``)."""
        record_future = await self._send(topic, value, key, partition, headers, timestamp_ms)
        fut: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        _forward(fut, record_future)
        return fut

    async def send_and_wait(self, topic: str, value: Any = None, key: Any = None, *,
                            partition: int | None = None, headers: HeadersArg | None = None,
                            timestamp_ms: int | None = None) -> RecordMetadata:
        """Send one record and return its RecordMetadata once written."""
        record_future = await self._send(topic, value, key, partition, headers, timestamp_ms)
        if record_future.done():  # written already (its batch filled, or linger_ms=0)
            return record_future.result(0)
        if self._local:
            # Write its batch now, in a worker thread: the write waits for
            # the partition's writer lock, which another process may hold.
            return await asyncio.to_thread(record_future.result, self._request_timeout)
        fut: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        _forward(fut, record_future)
        return await fut

    async def partitions_for(self, topic: str) -> set[int]:
        """``Producer.partitions_for`` (in a worker thread: a remote
        backend's lookup waits for the cluster)."""
        if self._local:
            return self._producer.partitions_for(topic)
        partitions = await asyncio.to_thread(self._producer.partitions_for, topic)
        self._routed.add(topic)
        return partitions

    async def _send(self, topic: str, value: Any, key: Any, partition: int | None, headers: HeadersArg | None,
                    timestamp_ms: int | None) -> RecordFuture:
        """``Producer.send``. A remote backend's first send to a topic looks
        the topic up over the network, in a worker thread, before the send:
        cancelled during the lookup, it has queued nothing."""
        if not self._local and isinstance(topic, str) and topic not in self._routed:
            await self.partitions_for(topic)
        return self._producer.send(topic, value, key, partition=partition, headers=headers,
                                   timestamp_ms=timestamp_ms)

    async def send_many(self, topic: str, values: Iterable[Any], keys: Iterable[Any] | None = None, *,
                        partition: int | None = None, timestamp_ms: int | None = None) -> SendManyResult:
        """``Producer.send_many``: write many records now, in few large
        batches; returns once they are written. Runs in a worker thread
        (``values`` and ``keys`` are read there): cancelling the call stops
        the waiting, not the write."""
        return await asyncio.to_thread(self._producer.send_many, topic, values, keys,
                                       partition=partition, timestamp_ms=timestamp_ms)

    async def flush(self, timeout: float | None = None) -> None:
        """Write every record sent so far; afterwards every send's future is done.

        Runs in a worker thread (writes wait for writer locks other
        processes may hold, or for the cluster): cancelling the call stops
        the waiting, not the flush."""
        await asyncio.to_thread(self._producer.flush, timeout)

    async def close(self, timeout: float | None = None) -> None:
        """Flush and close (in a worker thread, as ``flush``); later sends raise ClosedError."""
        await asyncio.to_thread(self._producer.close, timeout)

    stop = close  # aiokafka's name
