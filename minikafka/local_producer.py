"""The local producer backend: batches records per partition and appends
whole batches to the partition's segments.

``send`` encodes the record straight into the partition's open batch (a
:class:`~minikafka.batch.BatchBuilder`) and returns a small future. A batch
is closed — queued on its partition's :class:`_Lane` — when it reaches
``batch_size`` bytes, when it is ``linger_ms`` old (a background thread),
or on ``flush()``, ``close()`` or a future's ``result()``; then it is
written: one lock, one header, one checksum.

Locks: the producer lock guards batches and routes only, never disk I/O or
user code. Each lane has a mutex held by the one thread appending that
lane's queue, in order; done callbacks run after it is released. Every
write is bounded: by the caller's timeout (``flush``, ``close``,
``result``) or by the broker's ``request_timeout`` (``send`` and the linger
thread); a write that timed out fails its batch's futures with the
:class:`~minikafka.TimeoutError`. Batches still held at interpreter exit
are written then (``_write_at_exit``).

Hand-off (``hand_off_writes``, an AsyncProducer's): a batch that ``send``
closes is written by ``send`` only if its partition's writer locks are
free at that moment and it needs no msync (``fsync=False``); otherwise it
is left to the linger thread, so the sending thread (an event loop) never
waits for a writer lock another thread or process holds, nor for an
msync. Past ``HAND_OFF_BYTES`` queued, ``send`` writes itself as a plain
producer does: a writer that falls behind slows the sender instead of
filling memory.

Why one module of ~750 lines: the send fast path, the lanes, the hand-off, the linger
thread and writing at exit all work on one shared state (open batches,
lanes, the unwritten set) under one producer lock, and the lock protocol
(what is checked and released under it, see ``_drain``) is only readable
in one place. The parts that need none of it live elsewhere: the front
half in ``send_front.py``, futures in ``futures.py``, ``send_many``'s
encoder in ``bulk.py``.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from xxhash import xxh3_64_intdigest

from .batch import BatchBuilder, pack_prefix
from .bulk import encode_bulk
from .errors import ClosedError, MiniKafkaError, TimeoutError
from .format import RECORD_PREFIX_SIZE
from .futures import (
    PENDING_SLOTS,
    BatchFuture,
    PendingBatch,
    RecordFuture,
    SendManyResult,
    new_future,
    run_callbacks,
)
from .locking import FileLock
from .options import ProducerConfig
from .send_front import HeadersArg, Route, SendFront, deadline_of

if TYPE_CHECKING:
    from .broker import Broker
    from .partition import Partition
    from .topic import Topic

log = logging.getLogger("minikafka")
_hash = xxh3_64_intdigest
_time_ns = time.time_ns
_monotonic = time.monotonic
#: Bytes of closed batches, each counted with ``BATCH_OVERHEAD`` more, that
#: may wait for the linger thread in hand-off mode (Kafka's buffer.memory).
HAND_OFF_BYTES = 32 << 20
BATCH_OVERHEAD = 512  # the batch and future objects of a one-record batch


def _remaining(deadline: float | None) -> float | None:
    """Seconds left until ``deadline``, whole ms (they appear in messages)."""
    return None if deadline is None else max(0, int((deadline - _monotonic()) * 1000)) / 1000


class _Lane:
    """One partition as this producer writes it: closed batches waiting to
    be appended, in the order they were closed, and the mutex of the one
    thread appending them (``LocalProducer._drain``). A queued batch always
    has a drainer: whoever holds the mutex appends until the queue is empty,
    and checks that, and releases the mutex, under the producer lock."""

    __slots__ = ("mutex", "part", "queue", "route")

    def __init__(self, route: _TopicRoute, part: Partition) -> None:
        self.route = route
        self.part = part
        self.queue: deque[_Batch] = deque()
        # Re-entrant like Partition._lock: a Ctrl-C between acquire and the
        # releasing ``try`` leaks a hold, and the same thread then writes
        # what is left at interpreter exit.
        self.mutex = threading.RLock()


class _Batch(BatchBuilder, PendingBatch):
    """Records of one partition waiting to be written together."""

    __slots__ = (*PENDING_SLOTS, "created", "lane", "producer")

    def __init__(self, producer: LocalProducer, topic: str, lane: _Lane, ts: int) -> None:
        BatchBuilder.__init__(self, ts)
        self.start(topic, lane.part.number, producer._lock)
        self.producer = producer
        self.lane = lane
        self.created = _monotonic()

    def complete(self, timeout: float | None) -> None:
        self.producer._complete(self, timeout)


class _TopicRoute(Route):
    """What the producer caches per topic: the route, the open batches and
    the partitions' lanes."""

    __slots__ = ("batch_bytes", "batches", "lanes", "plain", "topic")

    def __init__(self, topic: Topic, batch_size: int, max_record_bytes: int, plain: bool) -> None:
        cfg = topic.config
        super().__init__(topic.name, topic.partitions, topic.partition_for,
                         min(max_record_bytes, cfg.max_record_bytes))
        self.topic = topic
        self.lanes = [_Lane(self, topic.partition(p)) for p in range(topic.partitions)]
        self.batches: list[_Batch | None] = [None] * topic.partitions
        self.batch_bytes = min(batch_size, cfg.max_batch_bytes)  # 0: no batching
        self.plain = plain  # no serializers or partitioner: send() may take its fast path


# -- interpreter exit -------------------------------------------------------------

_LIVE: weakref.WeakSet[LocalProducer] = weakref.WeakSet()


def _forget_after_fork() -> None:
    # A forked child's copies of its parent's batches are the parent's to
    # write (docs/concurrency.md): never write them again at the child's exit.
    _LIVE.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


@atexit.register
def _write_at_exit() -> None:
    """Nothing sent is silently dropped (API.md, "Lifetime"): at interpreter
    exit, write what live producers still hold. atexit runs after the
    program's non-daemon threads ended and before daemon threads (the
    linger thread) are stopped; each producer waits at most its broker's
    ``request_timeout`` (all of them together: the longest one) and logs
    what it could not write."""
    producers = list(_LIVE)
    if not producers:
        return
    deadline = _monotonic() + max(p._request_timeout for p in producers)
    for producer in producers:
        producer._write_at_exit(max(0.0, min(producer._request_timeout, deadline - _monotonic())))


# -- the backend ----------------------------------------------------------------------


class LocalProducer:
    """The backend of a Producer on a local :class:`~minikafka.Broker`."""


    def __init__(self, broker: Broker, front: SendFront, config: ProducerConfig) -> None:
        if broker.closed:  # as on Kafka: a producer of a closed broker is refused at once
            raise ClosedError(f"broker {str(broker.path)!r} is closed")
        self._broker = broker
        self._front = front
        self._linger = config.linger_ms / 1000.0
        self._batch_size = config.batch_size
        self._max_record_bytes = config.max_record_bytes
        self._request_timeout = broker.options.request_timeout
        self._topics: dict[str, _TopicRoute] = {}
        self._unwritten: dict[int, _Batch] = {}  # open batches: id(batch) -> batch, in creation order
        self._busy: set[_Lane] = set()  # lanes with queued batches or a write under way
        self._queued = 0  # bytes of the queued batches (+ BATCH_OVERHEAD each)
        self._due: dict[_Lane, None] = {}  # hand-off: lanes for the linger thread to write now
        self._lock = threading.RLock()
        self._wakeup = threading.Condition(self._lock)
        self._linger_thread: threading.Thread | None = None
        self._linger_idle = False  # the linger thread waits for a first batch
        self._closed = False
        self._exiting = False
        _LIVE.add(self)
        broker.attach_producer(self)

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

    def partitions_for(self, topic: str) -> set[int]:
        return set(range(self._route(topic).partitions))

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
        raises writes nothing. A batch this record fills is written before
        ``send`` returns, waiting at most ``request_timeout`` for the
        partition's writer lock (a write that times out fails the batch's
        futures).
        """
        route = self._topics.get(topic)  # emptied by close()
        if (
            route is not None and route.plain and partition is None and headers is None
            and timestamp_ms is None and (key is None or type(key) is bytes)
            and (value is None or type(value) is bytes) and not route.topic.closed
        ):
            # The common case, kept short: each line here costs every record
            # (benchmarks/: "produce: send() per record"). It is
            # BatchBuilder.append and SendFront.prepare inlined; the common
            # outcome returns from inside the try.
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
                    if batch is not None and len(batch.buf) + size <= route.batch_bytes:
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
                        if len(buf) < route.batch_bytes:
                            return new_future(BatchFuture, (batch, n, ts))
                        lane: _Lane | None = self._close_batch(batch)
                    else:
                        batch, n, lane = self._append_to_new(route, partition, ts, key, value, b"")
                finally:
                    lock.release()
                if lane is not None:
                    self._write_lane(lane)
                return new_future(BatchFuture, (batch, n, ts))
        if route is None or route.topic.closed:
            route = self._route(topic)
        rec = self._front.prepare(route, value, key, partition, headers, timestamp_ms)
        lock = self._lock
        lock.acquire()
        try:
            batch = route.batches[rec.partition]
            if batch is not None and len(batch.buf) + rec.size <= route.batch_bytes:
                n = batch.append(rec.timestamp, rec.key, rec.value, rec.headers)
                lane = self._close_batch(batch) if len(batch.buf) >= route.batch_bytes else None
            else:
                batch, n, lane = self._append_to_new(route, rec.partition, rec.timestamp, rec.key,
                                                     rec.value, rec.headers)
        finally:
            lock.release()
        if lane is not None:
            self._write_lane(lane)
        return new_future(BatchFuture, (batch, n, rec.timestamp))

    def _append_to_new(self, route: _TopicRoute, partition: int, ts: int, key: bytes | None,
                       value: bytes | None, headers: bytes) -> tuple[_Batch, int, _Lane | None]:
        """(Producer lock held) Close the partition's open batch, which the
        record does not fit, and append the record to a new one; returns
        the batch, the record's index and the lane to write now (or None)."""
        if self._closed:  # closed by another thread since send() looked
            raise ClosedError("producer is closed")
        old = route.batches[partition]
        lane = None if old is None else self._close_batch(old)
        lane_of_new = route.lanes[partition]
        batch = route.batches[partition] = _Batch(self, route.name, lane_of_new, ts)
        self._unwritten[id(batch)] = batch
        if self._linger > 0:
            if self._linger_thread is None:
                self._start_linger()
            elif self._linger_idle:
                # Only an idle linger thread needs waking: one in a timed wait
                # wakes by itself no later than this batch is due (waking it
                # per batch cost ~10% of send() throughput).
                self._wakeup.notify()
        n = batch.append(ts, key, value, headers)
        if len(batch.buf) >= route.batch_bytes:
            lane = self._close_batch(batch)
        return batch, n, lane

    def _close_batch(self, batch: _Batch) -> _Lane:
        """(Producer lock held) Take an open batch off its route and queue it
        on its lane; returns the lane, which then must be written (a batch
        already closed is left as it is)."""
        lane = batch.lane
        if self._unwritten.pop(id(batch), None) is not None:
            route = lane.route
            number = batch.partition
            if route.batches[number] is batch:
                route.batches[number] = None
                if number == route.sticky:  # keyless records move on
                    route.sticky = (number + 1) % route.partitions
            lane.queue.append(batch)
            self._queued += len(batch.buf) + BATCH_OVERHEAD
            self._busy.add(lane)
        return lane

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
        rules of ``send``; all records share one timestamp. ``partition``,
        if given, takes every record; else keyed records go to their key's
        partition (or the partitioner's choice), the rest to one partition
        chosen as for keyless ``send``. Each
        partition's records keep their order, after any records this
        producer sent before. Validated first: a call that raises writes
        nothing. Waits at most ``request_timeout`` for writer locks.
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
            encoded = {p: encode_bulk(route.name, ks, vs, ts, batch_bytes=route.batch_bytes,
                                      max_batch=route.topic.config.max_batch_bytes,
                                      max_record=route.max_record)
                       for p, (ks, vs) in groups.items()}
            for p in encoded:
                pending = route.batches[p]
                if pending is not None:
                    self._close_batch(pending)  # what was sent before goes first
            if sticky in groups:
                route.sticky = (sticky + 1) % n
        timeout = self._request_timeout
        deadline = _monotonic() + timeout
        error: Exception | None = None
        for p, batches in encoded.items():
            lane = route.lanes[p]
            try:
                self._acquire_lane(lane, timeout, deadline)
            except TimeoutError as e:  # the lane's writer writes what we queued on it
                error = error or e
                continue
            # After an error no more of ours is written; what was queued is.
            try:
                self._drain(lane, deadline, bulk=None if error else (batches, result))
            except Exception as e:
                error = error or e
        if error is not None:
            raise error
        return result

    # -- writing a lane ---------------------------------------------------------------

    def _write_now(self, lane: _Lane) -> None:
        """Write ``lane``'s queue now unless another thread is writing it
        (that thread then writes it all), waiting at most
        ``request_timeout`` for the partition's writer lock."""
        if lane.mutex.acquire(blocking=False):
            self._drain(lane, _monotonic() + self._request_timeout)

    #: What ``send`` does with the lane of a batch it closed (an instance
    #: attribute replaces it in hand-off mode: no test on the send path).
    _write_lane = _write_now

    def hand_off_writes(self) -> None:
        """From now on ``send`` leaves the batches it closes to the linger
        thread (module docstring, "Hand-off")."""
        self._write_lane = self._hand_off  # type: ignore[method-assign]

    def _hand_off(self, lane: _Lane) -> None:
        part = lane.part
        if not part.fsync and lane.mutex.acquire(blocking=False):
            # Uncontended (no other writer, no msync): writing here costs
            # less than waking the linger thread (about 0.7x the async send
            # rate measured when every full batch was handed off).
            if not part.writer_busy():
                self._drain(lane, _monotonic() + self._request_timeout)
                return
            lane.mutex.release()  # the lane goes to the linger thread below
        with self._lock:
            if self._closed:
                return  # close() writes every busy lane, this one included
            if self._queued <= HAND_OFF_BYTES:
                self._due[lane] = None
                if self._linger_thread is None:
                    self._start_linger()
                self._wakeup.notify()
                return
        # Too much is waiting: write here, after the lane's current writer.
        deadline = _monotonic() + self._request_timeout
        try:
            self._acquire_lane(lane, self._request_timeout, deadline)
        except TimeoutError:
            return  # that writer goes on to write (or fail) what is queued
        self._drain(lane, deadline)

    def _acquire_lane(self, lane: _Lane, timeout: float | None, deadline: float | None) -> None:
        """Take ``lane``'s mutex by ``deadline`` or raise TimeoutError."""
        if deadline is None:
            lane.mutex.acquire()
        elif not lane.mutex.acquire(timeout=max(0.0, deadline - _monotonic())):
            raise TimeoutError(self._busy_message(lane, timeout or 0.0))

    @staticmethod
    def _busy_message(lane: _Lane, timeout: float) -> str:
        """Why a wait for a lane another thread is writing timed out: that
        thread, and the lock it waits for if another process holds it."""
        part = lane.part
        msg = (f"timed out after {timeout:g} s waiting for partition {part.topic}/{part.number}: "
               f"another thread of this process is writing to it")
        path = os.path.join(part.dir, "writer.lock")  # docs/format.md, "writer.lock"
        if os.path.exists(path):  # (FileLock would create it)
            probe = FileLock(path)
            try:
                pids = probe.holders()
            finally:
                probe.close()
            if pids and os.getpid() not in pids:
                msg += f", itself waiting for lock {path} (held by pid {', '.join(map(str, pids))})"
        return msg

    def _drain(self, lane: _Lane, deadline: float | None,
               bulk: tuple[list[BatchBuilder], SendManyResult] | None = None) -> TimeoutError | None:
        """Append ``lane``'s queued batches in order, each waiting for the
        writer lock until ``deadline`` (None: no limit), then release the
        lane's mutex (the caller took it) and run the done callbacks.

        A batch whose write raised fails with that error (never written
        twice); returns the first TimeoutError met. ``bulk``: send_many's
        batches, appended once the queue is empty and recorded in its
        result; an error appending them is raised. KeyboardInterrupt (any
        BaseException) fails the batch being written and propagates; the
        rest stay queued for the next flush, close or exit.
        """
        # Once per batch of every send path: kept to few calls (benchmarks/).
        part = lane.part
        queue = lane.queue
        lock = self._lock
        done: list[_Batch] = []
        callbacks: list[Any] = []
        timed_out: TimeoutError | None = None
        bulk_error: Exception | None = None
        held = True
        try:
            while True:
                lock.acquire()
                try:
                    if queue:
                        popped = queue.popleft()
                        self._queued -= len(popped.buf) + BATCH_OVERHEAD
                        batch: _Batch | None = popped
                    elif bulk is not None:
                        batch = None
                    else:
                        # Under the producer lock: a batch queued from now on
                        # finds the mutex free (or a new holder), see _Lane.
                        self._busy.discard(lane)
                        lane.mutex.release()
                        held = False
                        for b in done:  # PendingBatch.settle, under the lock taken anyway
                            if b.callbacks:
                                callbacks += b.callbacks
                                b.callbacks = None
                        break
                finally:
                    lock.release()
                timeout = None if deadline is None else max(0, int((deadline - _monotonic()) * 1000)) / 1000
                if batch is None:
                    assert bulk is not None
                    builders, result = bulk
                    bulk = None
                    try:
                        for builder in builders:
                            result.batches.append((part.number, part.append(builder, timeout),
                                                   builder.count))
                            timeout = _remaining(deadline)
                    except Exception as e:
                        bulk_error = e
                    continue
                done.append(batch)
                try:
                    batch.base_offset = part.append(batch, timeout)
                except Exception as e:
                    batch.error = e
                    if timed_out is None and isinstance(e, TimeoutError):
                        timed_out = e
                    if not self._exiting:  # (_write_at_exit sums them up)
                        log.warning("%d record(s) for %s/%d were not written: %s",
                                    batch.count, batch.topic, batch.partition, e)
                except BaseException as e:
                    # Ctrl-C inside the write: the batch may or may not be in
                    # the log, so it is never written again.
                    batch.error = MiniKafkaError(
                        f"writing {batch.count} records to {batch.topic}/{batch.partition} was "
                        f"interrupted ({type(e).__name__}): they may or may not be in the log")
                    raise
                finally:
                    batch.buf = bytearray()
        except BaseException:
            if held:
                with lock:
                    lane.mutex.release()
            for b in done:
                b.settle()
            raise
        if callbacks:
            run_callbacks(callbacks)
        if bulk_error is not None:
            raise bulk_error
        return timed_out

    def _write_lanes(self, lanes: list[_Lane], timeout: float | None,
                     deadline: float | None) -> TimeoutError | None:
        """Write every lane in ``lanes`` by ``deadline``; the first TimeoutError met."""
        first: TimeoutError | None = None
        for lane in lanes:
            try:
                self._acquire_lane(lane, timeout, deadline)
            except TimeoutError as e:
                first = first or e
                continue
            error = self._drain(lane, deadline)
            first = first or error
        return first

    def _complete(self, batch: _Batch, timeout: float | None) -> None:
        """``RecordFuture.result()`` of a record not yet written: write its
        batch now (and what its partition queued before it)."""
        deadline = deadline_of(timeout)
        with self._lock:
            lane = self._close_batch(batch)
        if batch.base_offset >= 0 or batch.error is not None:
            return
        self._acquire_lane(lane, timeout, deadline)
        self._drain(lane, deadline)

    # -- the linger thread ------------------------------------------------------------

    def _start_linger(self) -> None:
        thread = threading.Thread(target=self._linger_loop, name="minikafka-linger", daemon=True)
        self._linger_thread = thread
        thread.start()

    def _linger_loop(self) -> None:
        """Write batches that have waited ``linger_ms``; sleep while idle.
        Runs until close(): nothing a write or a callback raises stops it."""
        while True:
            try:
                lane = self._next_due()
                if lane is None:
                    return
                self._write_now(lane)
            except BaseException:
                log.exception("minikafka linger thread: unexpected error (it goes on)")
                time.sleep(0.01)  # no busy loop if it repeats

    def _next_due(self) -> _Lane | None:
        """A lane handed off to write, or else wait for the oldest open batch
        to be ``linger_ms`` old and close it; its lane (to write), or None
        once the producer is closed."""
        with self._lock:
            while not self._closed:
                if self._due:
                    lane = next(iter(self._due))
                    del self._due[lane]
                    return lane
                if not self._unwritten:
                    self._linger_idle = True
                    self._wakeup.wait()
                    self._linger_idle = False
                    continue
                oldest = next(iter(self._unwritten.values()))
                delay = oldest.created + self._linger - _monotonic()
                if delay > 0:
                    self._wakeup.wait(delay)
                    continue
                return self._close_batch(oldest)
        return None

    # -- flush, close, exit ---------------------------------------------------------

    def flush(self, timeout: float | None = None) -> None:
        """Write every record sent so far; afterwards every future is done.

        ``timeout`` (seconds, None: no limit) bounds the whole call: a batch
        whose write could not take its partition's writer lock in time fails
        with the :class:`~minikafka.TimeoutError` (its futures raise it),
        and flush raises the first such error once every batch was tried.
        """
        deadline = deadline_of(timeout)
        if self._closed:
            raise ClosedError("producer is closed")
        with self._lock:
            for batch in list(self._unwritten.values()):
                self._close_batch(batch)
            lanes = list(self._busy)
        error = self._write_lanes(lanes, timeout, deadline)
        if error is not None:
            raise error

    def write_held(self, timeout: float) -> None:
        """Write what this producer holds, within ``timeout`` seconds: its
        broker is closing (``Broker.close``). Never raises; a warning names
        what was not written (those futures raise why)."""
        if self._closed:
            return
        try:
            self.flush(timeout)
        except ClosedError:
            pass  # closed by another thread meanwhile, which wrote or failed its records
        except MiniKafkaError as e:
            log.warning("closing broker %s: records an open producer held were not written: %s",
                        self._broker.path, e)

    def close(self, timeout: float | None = None) -> None:
        """Flush, stop the linger thread; later sends raise ClosedError.

        Waits at most ``timeout`` seconds (None: the broker's
        ``request_timeout``), then raises as ``flush`` does; closed either way.
        """
        if timeout is None:
            timeout = self._request_timeout
        deadline = deadline_of(timeout)
        if not self._lock.acquire(timeout=-1 if deadline is None else timeout):
            raise TimeoutError(f"timed out after {timeout:g} s waiting for the producer's lock "
                               f"(another thread of this process holds it)")
        failed: list[_Batch] = []
        try:
            if self._closed:
                return
            self._closed = True
            broker_closed = self._broker.closed
            for batch in list(self._unwritten.values()):
                if broker_closed:
                    batch.error = ClosedError("broker closed before the record was written")
                    failed.append(batch)
                else:
                    self._close_batch(batch)
            self._unwritten.clear()
            lanes = list(self._busy)
            self._topics.clear()  # send() finds no route and raises ClosedError
            self._wakeup.notify_all()
        finally:
            self._lock.release()
        for batch in failed:
            batch.settle()
        error = self._write_lanes(lanes, timeout, deadline)
        thread = self._linger_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(None if deadline is None else max(0.0, deadline - _monotonic()))
        _LIVE.discard(self)
        if error is not None:
            raise error

    def _write_at_exit(self, timeout: float) -> None:
        """Close at interpreter exit, waiting at most ``timeout`` seconds;
        log a warning naming the records that were not written."""
        if self._closed:
            return
        # Read without the lock, which a thread stopped forever may hold
        # (copying a dict, set or deque runs no Python code: atomic).
        held = list(self._unwritten.values())
        for lane in list(self._busy):
            held += list(lane.queue)
        reason: BaseException | None = None
        self._exiting = True
        try:
            self.close(timeout)
        except Exception as e:
            reason = e
        lost: dict[tuple[str, int], list[Any]] = {}
        for b in held:
            if b.base_offset < 0:
                entry = lost.setdefault((b.topic, b.partition), [0, b.error or reason])
                entry[0] += b.count
        for (topic, number), (count, why) in lost.items():
            log.warning("at interpreter exit, %d record(s) sent to %s/%d were not written: %s",
                        count, topic, number, why or "still waiting to be written")
        if reason is not None and not lost:
            log.warning("at interpreter exit, closing a producer failed: %s", reason)
