"""asyncio front ends: :class:`AsyncProducer` and :class:`AsyncConsumer`.

Both wrap the synchronous classes, so every option and behaviour is the
one implementation in producer.py / consumer.py; this module only decides
*when* to call them. Nothing here blocks the event loop while waiting:

- Records are taken with ``Consumer.poll(0)`` (never waits) in the loop
  thread and returned without another ``await``, so a cancelled
  ``poll``/``getone``/``getmany`` cannot lose a record: cancellation can
  only land at an ``await``, and no record is held across one.
- Between looks a task waits on an asyncio future that a :class:`Hub`
  resolves (aio_hub.py). A hub is one thread per broker's waker (so one per process in
  the usual one-directory program), shared by every AsyncConsumer and
  event loop: it sleeps in ``Waker.wait`` and, when the doorbell rings,
  wakes every waiting loop through
  ``call_soon_threadsafe`` (without a doorbell it wakes them every polling
  interval, as a sync ``poll`` looks then). It starts with the first AsyncConsumer of a
  broker and ends with the last one. A broker without a waker (a remote
  backend) gets a hub that wakes waiters every ``FALLBACK_INTERVAL``.
- Calls that may wait on another process's lock or on the network run in a
  worker thread: ``send_and_wait``/``flush``/``close`` of the producer, on
  a remote backend the consumer's coroutines (``AsyncConsumer._call``) and
  a producer's first send to each topic, and on a data directory a group
  consumer's ``close`` and a ``commit`` whose group lock is not free at
  once. So does the close of a producer (and of a remote or group
  consumer) dropped without close(): its sync client's ``__del__`` hands
  it to ``closeable.close_in_thread``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar

from .aio_hub import hub_for
from .aio_producer import AsyncProducer, is_local
from .closeable import start_closer
from .consumer import Consumer, as_tp
from .errors import ClosedError, InvalidArgumentError
from .errors import TimeoutError as LockTimeoutError
from .options import wait_limit
from .records import Record, TopicPartition

# A group member looks at least this often: rebalances ring the doorbell, but
# an owner lock freed by a dead process does not. Without a doorbell, as
# often as a sync poll (50 ms).
GROUP_RECHECK = 0.1
GROUP_RECHECK_POLLING = 0.05
RECHECK = 1.0  # any waiter looks at least this often (a safety net)
_ITER_CHUNK = 0.5  # seconds per wait of ``async for`` between its own checks




_T = TypeVar("_T")


def _retrieve(fut: asyncio.Future[Any]) -> None:
    # A call whose caller was cancelled: its error has no one to go to.
    if not fut.cancelled():
        fut.exception()


class AsyncConsumer:
    """asyncio front end of :class:`~minikafka.Consumer`; same options.

    ``await poll(timeout, max_records)`` -> list of records,
    ``await getone()`` -> one record, ``await getmany(timeout_ms=...)`` ->
    ``{TopicPartition: [records]}``, ``async for record in consumer``. With
    ``stop_at_end=True`` iteration ends once every assigned partition is
    read to its end. Use it from one event loop (like ``Consumer``, from one
    thread at a time).
    """

    def __init__(self, broker: Any, *topics: str, **options: Any) -> None:
        # Every option (stop_at_end and consumer_timeout included) is the
        # sync Consumer's: validated there, read back from its config.
        self._consumer = Consumer(broker, *topics, **options)
        self._group = self._consumer.group_id is not None
        self._hub = hub_for(broker)
        self._hub.acquire()
        self._closed = False
        # Remote backends: the call running in a worker thread, if any (see _call).
        self._local = is_local(broker)
        # Remote, or in a group: dropped without close(), it closes in a
        # thread of its own (as close() does in a worker thread): its final
        # commit and leaving the group wait for the cluster, or for the
        # group lock (a frozen process may hold it), up to request_timeout.
        if not self._local or self._group:
            self._consumer._drop_closes_in_thread = True
            start_closer()
        self._io: asyncio.Future[Any] | None = None
        self._closing: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        return f"<AsyncConsumer of {self._consumer!r}>"

    @property
    def consumer(self) -> Consumer:
        """The synchronous Consumer this wraps."""
        return self._consumer

    @property
    def group_id(self) -> str | None:
        """The consumer group, or None."""
        return self._consumer.group_id

    async def __aenter__(self) -> AsyncConsumer:
        if self._closed:
            raise ClosedError("consumer is closed")
        return self

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def start(self) -> None:
        """aiokafka's habit; the consumer is ready once constructed."""

    async def close(self) -> None:
        """Commit (with auto-commit on) and release the partitions.

        Closed (later calls raise ClosedError) from the first step on: a
        cancelled close goes on (on a remote backend in its worker thread,
        bounded by ``request_timeout``), and ``close()`` again waits for it."""
        if self._closing is None:
            self._closed = True
            # Small files, in this step: nothing for a cancel to interrupt.
            # Not a group's: it waits for the group lock (see _call).
            if self._local and not self._group:
                self._closing = asyncio.get_running_loop().create_future()
                self._closing.set_result(None)
                try:
                    self._consumer.close()
                finally:
                    self._hub.release()
                return
            self._closing = asyncio.ensure_future(self._close())
            self._closing.add_done_callback(_retrieve)
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        try:
            await self._call(self._consumer.close, closing=True, group_lock=True)
        finally:
            self._hub.release()

    stop = close  # aiokafka's name

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            self._closed = True
            self._hub.release()

    # -- reading ----------------------------------------------------------------

    def _take(self, max_records: int | None, partitions: tuple[TopicPartition, ...]) -> list[Record]:
        """Records available now (never waits); only these are ever taken."""
        consumer = self._consumer
        if not partitions:
            return consumer.poll(0.0, max_records)
        wanted = {as_tp(tp) for tp in partitions}
        missing = wanted - consumer.assignment()
        if missing:
            raise InvalidArgumentError(
                f"not assigned to this consumer: "
                f"{', '.join(f'{tp.topic}/{tp.partition}' for tp in sorted(missing))}")
        others = consumer.assignment() - wanted - consumer.paused()
        consumer.pause(*others)
        try:
            records = consumer.poll(0.0, max_records)
        finally:
            # A group rebalance inside poll may have taken some of them away
            # (resume would refuse those, dropping the records just taken).
            consumer.resume(*(others & consumer.assignment()))
        # ... or assigned new ones, which were never paused: put their
        # records back (a seek to the first of each), to be read later.
        first: dict[TopicPartition, int] = {}
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            if tp not in wanted and tp not in first:
                first[tp] = r.offset
        if not first:
            return records
        for tp, offset in first.items():
            consumer.seek(tp, offset)
        return [r for r in records if TopicPartition(r.topic, r.partition) in wanted]

    async def _call(self, fn: Callable[..., _T], *args: Any, closing: bool = False,
                    group_lock: bool = False) -> _T:
        """``fn(*args)`` on the wrapped Consumer. On a data directory in the
        loop thread (small files, microseconds). On a remote backend (the
        network: a cluster that stops answering can hold a commit for
        minutes) in a worker thread, so the loop runs on and a cancel or a
        ``wait_for`` around the coroutine fires; one call at a time, and the
        loop's own looks for records wait until it has returned (the
        Consumer is used from one thread at a time). A cancelled call still
        completes in its thread.

        ``group_lock``: ``fn`` takes the group lock, which another process
        may hold for long (frozen holding it: up to ``request_timeout``).
        On a data directory such a call is tried here without waiting for
        it (a commit: ~30 µs here, ~200 µs through a thread) and, if it is
        busy, made in a worker thread as on a remote backend; ``closing``
        (close can only be tried once) goes to the thread at once."""
        if self._local:
            if not (group_lock and self._group):
                return fn(*args)
            if not closing and self._io is None:
                try:
                    with self._consumer._backend.within(0):
                        return fn(*args)
                except LockTimeoutError:
                    pass  # the group lock was busy, and nothing was done: wait for it in a thread
        while self._io is not None:
            if self._closed and not closing:  # never queue behind a close (a cancelled one goes on)
                raise ClosedError("consumer is closed")
            await self._idle(None)
        fut = asyncio.get_running_loop().run_in_executor(None, fn, *args)
        fut.add_done_callback(_retrieve)
        self._io = fut
        await self._idle(None)
        return fut.result()

    async def _idle(self, timeout: float | None) -> bool:
        """Wait up to ``timeout`` s (None: no limit) for the worker-thread
        call to return; whether none is running now."""
        fut = self._io
        if fut is None:
            return True
        await asyncio.wait((fut,), timeout=timeout)  # never cancels fut
        if not fut.done():
            return False
        if self._io is fut:
            self._io = None
        return self._io is None

    def _cap(self) -> float:
        if not self._group:
            return RECHECK
        return GROUP_RECHECK_POLLING if self._hub.polling else GROUP_RECHECK

    async def _poll(self, timeout: float | None, max_records: int | None,
                    partitions: tuple[TopicPartition, ...] = ()) -> list[Record]:
        timeout = wait_limit(timeout)  # as Consumer.poll: TypeError / InvalidArgumentError
        if self._closed:
            raise ClosedError("consumer is closed")
        hub = self._hub
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            while self._io is not None:  # a commit (or the like) is still in its thread
                if not await self._idle(None if deadline is None else max(0.0, deadline - loop.time())):
                    return []
                if self._closed:
                    return []
            seen = hub.generation()
            records = self._take(max_records, partitions)
            if records:
                return records
            remaining = self._cap() if deadline is None else deadline - loop.time()
            if remaining <= 0:
                return records
            await hub.wait(seen, min(remaining, self._cap()))
            if self._closed:
                return []  # closed by another task while we waited

    async def poll(self, timeout: float | None = 0.0, max_records: int | None = None) -> list[Record]:
        """Records from the assigned partitions, each partition in offset
        order; waits up to ``timeout`` seconds (None: forever) for one."""
        return await self._poll(timeout, max_records)

    async def getone(self, *partitions: TopicPartition) -> Record:
        """Wait for the next record (of ``partitions`` if given)."""
        while True:
            records = await self._poll(None, 1, partitions)
            if records:
                return records[0]
            if self._closed:
                raise ClosedError("consumer is closed")

    async def getmany(self, *partitions: TopicPartition, timeout_ms: int = 0,
                      max_records: int | None = None) -> dict[TopicPartition, list[Record]]:
        """Records by partition, as aiokafka: waits up to ``timeout_ms`` for some."""
        if not isinstance(timeout_ms, (int, float)) or isinstance(timeout_ms, bool):
            raise TypeError(f"timeout_ms must be a number, not {type(timeout_ms).__name__}")
        if not timeout_ms >= 0:  # also NaN
            raise InvalidArgumentError(f"timeout_ms must be a number >= 0, got {timeout_ms!r}")
        out: dict[TopicPartition, list[Record]] = {}
        for r in await self._poll(timeout_ms / 1000.0, max_records, partitions):
            tp = TopicPartition(r.topic, r.partition)
            batch = out.get(tp)
            if batch is None:
                out[tp] = [r]
            else:
                batch.append(r)
        return out

    def __aiter__(self) -> AsyncIterator[Record]:
        """``async for record in consumer``: see ``__anext__``; ClosedError
        if the consumer is closed already."""
        if self._closed:
            raise ClosedError("consumer is closed")
        return self

    async def __anext__(self) -> Record:
        """The next record; ends on close, after ``consumer_timeout`` idle
        seconds, or (``stop_at_end``) once everything assigned is read."""
        hub = self._hub
        loop = asyncio.get_running_loop()
        config = self._consumer.config
        limit = config.consumer_timeout
        idle_until = None if limit is None else loop.time() + limit
        while not self._closed:
            if self._io is not None:  # a commit (or the like) is still in its thread
                await self._idle(_ITER_CHUNK)
                continue
            seen = hub.generation()
            try:
                records = self._take(1, ())
            except ClosedError:
                break
            if records:
                return records[0]
            if config.stop_at_end and await self._call(self._consumer.at_end):  # remote: a request
                break
            wait = self._cap()
            if idle_until is not None:
                wait = min(wait, idle_until - loop.time())
                if wait <= 0:
                    break
            await hub.wait(seen, min(wait, _ITER_CHUNK))
        raise StopAsyncIteration

    def at_end(self) -> bool:
        """Whether every assigned partition has been read up to its end
        offset (``Consumer.at_end``)."""
        return self._consumer.at_end()

    # -- assignment (plain methods, as aiokafka) ------------------------------------

    def subscribe(self, topics: Iterable[str] = (), listener: Any = None, *,
                  pattern: str | re.Pattern[str] | None = None) -> None:
        """Follow all partitions of ``topics``, or of every topic whose name
        matches ``pattern`` (with a ``group_id``: join the group);
        ``Consumer.subscribe``."""
        self._consumer.subscribe(topics, listener, pattern=pattern)

    def unsubscribe(self) -> None:
        """Drop the subscription (leaving the group) or the manual assignment."""
        self._consumer.unsubscribe()

    def subscription(self) -> set[str]:
        """The subscribed topic names."""
        return self._consumer.subscription()

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Read exactly these partitions (no group management)."""
        self._consumer.assign(partitions)

    def assignment(self) -> set[TopicPartition]:
        """The partitions this consumer currently reads."""
        return self._consumer.assignment()

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Make ``offset`` the next record returned for ``tp``."""
        self._consumer.seek(tp, offset)

    def pause(self, *tps: TopicPartition) -> None:
        """Stop returning records of these partitions until resume()."""
        self._consumer.pause(*tps)

    def resume(self, *tps: TopicPartition) -> None:
        """Return records of these paused partitions again."""
        self._consumer.resume(*tps)

    def paused(self) -> set[TopicPartition]:
        """The paused partitions."""
        return self._consumer.paused()

    # -- coroutines (may touch files or the network) ---------------------------------

    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        """Commit ``offsets`` (next offset to read per partition), or the current positions."""
        await self._call(self._consumer.commit, offsets, group_lock=True)

    async def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed offset for ``tp`` (None if none or no group)."""
        return await self._call(self._consumer.committed, tp)

    async def position(self, tp: TopicPartition) -> int:
        """The offset of the next record this consumer will return for ``tp``."""
        return await self._call(self._consumer.position, tp)

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        """Seek to the first retained offset (all assigned partitions if none given)."""
        await self._call(self._consumer.seek_to_beginning, *tps)

    async def seek_to_end(self, *tps: TopicPartition) -> None:
        """Seek past the last record (all assigned partitions if none given)."""
        await self._call(self._consumer.seek_to_end, *tps)

    async def beginning_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """First retained offset of each partition."""
        return await self._call(self._consumer.beginning_offsets, tps)

    async def end_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """Next offset to be written, per partition."""
        return await self._call(self._consumer.end_offsets, tps)

    async def offsets_for_times(self, timestamps: Mapping[TopicPartition, int]
                                ) -> dict[TopicPartition, int | None]:
        """Per partition, the earliest offset with a timestamp >= the given ms, or None."""
        return await self._call(self._consumer.offsets_for_times, timestamps)


__all__ = ["AsyncConsumer", "AsyncProducer"]
