"""Delivery: one record on its way to a Kafka cluster — the future
``send`` returns and the delivery callback librdkafka calls with the
record's report — and the lock its reports skip when nobody holds it
(``HeldCountLock``). The writer that serves the reports is in
producing.py."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import ClosedError
from ..futures import PendingBatch, RecordFuture
from ..options import wait_limit
from ..records import RecordMetadata
from .errors import TimeoutError, translate

if TYPE_CHECKING:
    from .producing import KafkaRecordWriter


class Delivery(PendingBatch, RecordFuture):
    """One record on its way to the cluster: the future ``send`` returns
    (a ``PendingBatch`` of one), and its delivery callback — librdkafka
    calls it with the record's report.

    Made once per record, so made cheaply: :func:`delivery_class` builds one
    subclass per partition whose class attributes are what
    ``PendingBatch.start`` sets (topic, partition, lock, nothing delivered
    yet) and the writer, so a record's Delivery starts as an empty instance
    and its report sets ``base_offset`` and ``timestamp`` (or ``error``) on
    it. A thread that waits for it serves the reports itself
    (``KafkaRecordWriter.wait_for``).
    """

    writer: KafkaRecordWriter
    lock: HeldCountLock  # type: ignore[assignment]  # an RLock that counts its holders
    #: The record's timestamp (ms) as stored: what the report says.
    timestamp: int

    def __call__(self, err: Any, msg: Any) -> None:
        """confluent-kafka's delivery callback for this record."""
        if err is None:
            self.timestamp = msg.timestamp()[1]  # librdkafka's "now" at produce, or the given one
            self.base_offset = msg.offset()
        else:
            error = translate(err, f"producing to {self.topic}/{self.partition}")
            # a record that timed out says why: the producer's last error (an unreachable cluster)
            self.error = self.writer.log.explain(error) if isinstance(error, TimeoutError) else error
        # settle() has work only for added callbacks: skip it (and the lock)
        # when none can be there — see HeldCountLock for why reading
        # ``held`` without the lock is enough.
        if self.callbacks is not None or self.lock.held:
            # settle() takes the lock: an add_done_callback under way
            # finishes first, and nothing is added once the record is done.
            self.settle()

    def complete(self, timeout: float | None) -> None:
        """Until the delivery report arrived; ``TimeoutError`` after ``timeout``."""
        timeout = wait_limit(timeout)  # NaN would wait for ever, 1e300 overflow
        if not self.writer.wait_for(self, timeout):
            if self.writer._poll is None:
                raise ClosedError(f"record for {self.topic}/{self.partition}: the producer closed "
                                  f"before it was acknowledged")
            raise TimeoutError(f"record for {self.topic}/{self.partition}: not acknowledged "
                               f"within {timeout:g} s")

    # -- RecordFuture ----------------------------------------------------------

    def done(self) -> bool:
        return self.base_offset >= 0 or self.error is not None

    def result(self, timeout: float | None = None) -> RecordMetadata:
        if self.base_offset < 0 and self.error is None:
            self.complete(timeout)
        if self.error is not None:
            raise self.error
        return RecordMetadata(self.topic, self.partition, self.base_offset, self.timestamp)

    get = result

    def add_done_callback(self, fn: Callable[[RecordFuture], Any]) -> None:
        self.add_callback(self, fn)

    def __repr__(self) -> str:
        return f"<RecordFuture {self.topic}/{self.partition} {'done' if self.done() else 'pending'}>"


def delivery_class(writer: KafkaRecordWriter, topic: str, partition: int) -> type[Delivery]:
    """The Delivery class of one partition: ``PendingBatch.start``'s fields
    (and the writer) as class attributes, shared by every record until its
    report sets its own."""
    proto = Delivery()
    proto.start(topic, partition, writer.callback_lock)  # type: ignore[arg-type]  # duck-typed RLock
    state = vars(proto)
    mutable = sorted(k for k, v in state.items() if isinstance(v, (list, dict, set, bytearray)))
    if mutable:  # a class attribute would be one object shared by every record
        raise TypeError(f"PendingBatch.start sets mutable {', '.join(mutable)}: "
                        f"Delivery cannot share it between records")
    return type(f"Delivery[{topic}/{partition}]", (Delivery,), {**state, "writer": writer})


class HeldCountLock:
    """The ``PendingBatch.lock`` of a writer's deliveries: an RLock that
    counts how often it is held, so a delivery report can skip it.

    A delivery report sets ``base_offset`` (or ``error``) and only then
    reads ``held``; ``add_done_callback`` takes the lock (``held`` >= 1)
    before it reads ``done()``, and holds it until it has registered. So
    either it sees the record done, or the report sees ``held``, takes the
    lock once it is through and settles. Only holders change ``held``.
    """

    __slots__ = ("_lock", "held")

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.held = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        got = self._lock.acquire(blocking, timeout)
        if got:
            self.held += 1
        return got

    def release(self) -> None:
        self.held -= 1
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
