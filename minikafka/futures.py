"""What a send returns: a ``RecordFuture`` (one record; ``BatchFuture``
for a record of a batch), ``SendManyResult`` (a bulk send), and
``PendingBatch``, the records of one partition delivered together, which
a backend subclasses and settles."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from .records import RecordMetadata

log = logging.getLogger("minikafka")


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

    def add_callback(self, future: RecordFuture, fn: Callable[[RecordFuture], Any]) -> None:
        """``future.add_done_callback(fn)`` for a record of this batch: kept
        for :meth:`settle`, or run now if the record is done."""
        if not future.done():
            with self.lock:  # against settle() taking the callbacks meanwhile
                if not future.done():
                    if self.callbacks is None:
                        self.callbacks = []
                    self.callbacks.append((fn, future))
                    return
        run_callbacks([(fn, future)])

    def settle(self) -> None:
        """Run the done callbacks (``base_offset`` or ``error`` is set), each
        once and guarded (:func:`run_callbacks`). They are taken under
        ``lock`` and run after it is released, unless the caller holds it."""
        with self.lock:  # against add_done_callback adding one meanwhile
            callbacks, self.callbacks = self.callbacks, None
        if callbacks:
            run_callbacks(callbacks)


class RecordFuture:
    """The outcome of one ``send``: ``result()`` gives its RecordMetadata.

    On a data directory, calling ``result()`` before the record's batch is
    written writes it now; on ``kafka://`` it waits for the broker's
    acknowledgement.
    """

    __slots__ = ()

    def done(self) -> bool:
        """Whether the record is written (or failed); never waits or writes."""
        raise NotImplementedError

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
        raise NotImplementedError

    def get(self, timeout: float | None = None) -> RecordMetadata:
        """``result(timeout)`` (kafka-python's name)."""
        return self.result(timeout)

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
        raise NotImplementedError


class BatchFuture(RecordFuture, tuple[Any, ...]):  # RecordFuture has no instance layout: tuple can be a base
    """A record of a :class:`PendingBatch`: the tuple (batch, index in it,
    timestamp), the cheapest object to create, one per send. Calling
    ``result()`` before the batch is delivered delivers it now
    (``batch.complete``)."""

    __slots__ = ()

    def done(self) -> bool:
        b = self[0]
        return b.base_offset >= 0 or b.error is not None

    def result(self, timeout: float | None = None) -> RecordMetadata:
        b, index, ts = self
        if b.base_offset < 0 and b.error is None:
            b.complete(timeout)
        if b.error is not None:
            raise b.error
        return RecordMetadata(b.topic, b.partition, b.base_offset + index, ts)

    get = result

    def add_done_callback(self, fn: Callable[[RecordFuture], Any]) -> None:
        self[0].add_callback(self, fn)

    def __repr__(self) -> str:
        b, index, _ts = self
        if b.error is not None:
            state = f"failed: {type(b.error).__name__}"
        else:
            state = "pending" if b.base_offset < 0 else f"offset={b.base_offset + index}"
        return f"<RecordFuture {b.topic}/{b.partition} {state}>"


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
