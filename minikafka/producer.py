"""The Producer facade.

``Producer(broker, **options)`` validates its options (``ProducerConfig``),
builds a :class:`~minikafka.send_front.SendFront` (serializers,
partitioner, record checks) and binds the ``send``/``send_many``/``flush``
of a backend — the local one (``local_producer.py``) for a
:class:`~minikafka.Broker`, or the one ``broker.producer_backend(front,
config)`` returns (the Kafka backend). Binding at construction keeps the
facade off the hot path. The interface is written down in
docs/architecture.md, "Producer backend interface". The names backends
share live in ``send_front.py`` and ``futures.py`` and are re-exported here.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import warnings
import weakref
from collections.abc import Callable, Iterable
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from .closeable import close_in_thread
from .errors import ClosedError
from .futures import (
    PENDING_SLOTS,
    BatchFuture,
    PendingBatch,
    RecordFuture,
    SendManyResult,
    new_future,
    run_callbacks,
)
from .options import MiB, ProducerConfig, wait_limit
from .send_front import (
    HeadersArg,
    Prepared,
    Route,
    SendFront,
    check_timestamp,
    deadline_of,
    now_ms,
    to_bytes,
)

if TYPE_CHECKING:
    from .broker import Broker

log = logging.getLogger("minikafka")

__all__ = [
    "PENDING_SLOTS", "BatchFuture", "HeadersArg", "PendingBatch", "Prepared", "Producer", "ProducerBackend",
    "RecordFuture", "Route", "SendFront", "SendManyResult", "check_timestamp", "deadline_of",
    "new_future", "now_ms", "run_callbacks", "to_bytes",
]


def _close_dropped(backend: ProducerBackend, in_thread: bool = False) -> None:
    """Close the backend of a collected Producer (as ``Producer.close()``);
    ``in_thread``: in a thread of its own (an AsyncProducer's, see
    ``closeable.close_in_thread``)."""
    if in_thread:
        close_in_thread(partial(_close_dropped, backend))
        return
    try:
        backend.close(wait_limit(None))
    except Exception as e:
        log.warning("closing a garbage-collected producer failed: %s", e)


class _DeferredClose:
    """Closes a collected Producer's backend once ``count`` bound methods
    that outlived it are dropped (see ``Producer.__del__``)."""

    def __init__(self, backend: ProducerBackend, count: int, in_thread: bool) -> None:
        self._backend = backend
        self._count = count
        self._in_thread = in_thread
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            self._count -= 1
            if self._count:
                return
        _close_dropped(self._backend, self._in_thread)


class ProducerBackend(Protocol):
    """Where records go. See docs/architecture.md, "Producer backend interface"."""

    def send(self, topic: str, value: Any = None, key: Any = None, *, partition: int | None = None,
             headers: HeadersArg | None = None, timestamp_ms: int | None = None) -> RecordFuture: ...

    def send_many(self, topic: str, values: Iterable[Any], keys: Iterable[Any] | None = None, *,
                  partition: int | None = None, timestamp_ms: int | None = None) -> SendManyResult: ...

    def partitions_for(self, topic: str) -> set[int]: ...

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

    #: Dropped without close(), close in a thread of its own, not in the one
    #: that dropped it (set by AsyncProducer: that thread runs an event loop).
    _drop_closes_in_thread = False

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
        # Bound once: a send through the facade costs no Python call of its
        # own. (The methods below document them and serve calls made via
        # the class.) Partials, not bound methods: CPython 3.11 unpacks a
        # bound method on the stack before calling it, which would drop it
        # before the call runs; a partial stays referenced until the call
        # returns, and ``__del__`` relies on that (+15 ns a call).
        for name in ("send", "send_many", "flush"):
            setattr(self, name, partial(getattr(type(backend), name), backend))
        self._pid = os.getpid()
        self._closed = False

    def __repr__(self) -> str:
        path = getattr(self._broker, "path", self._broker)
        return f"<Producer {str(path)!r}{' closed' if self._closed else ''}>"

    def __del__(self, _finalizing: Callable[[], bool] = sys.is_finalizing) -> None:
        # Dropped without close(), as an unclosed file: warn, and close (write
        # what it holds, stop its thread), rather than leave a linger or
        # delivery thread per dropped producer running until exit. At
        # interpreter shutdown the exit-time writer does it instead; a forked
        # child never writes its parent's records (docs/concurrency.md).
        if getattr(self, "_closed", True) or _finalizing() or self._pid != os.getpid():
            return
        warnings.warn(f"unclosed {self!r}: closed when garbage-collected; "
                      f"call close() or use 'with'", ResourceWarning, stacklevel=2, source=self)
        # send/send_many/flush are partials of the backend's methods, so in
        # `Producer(broker).send(...)` the facade dies before the call runs.
        # One still referenced (beyond this frame's) is such a call about
        # to run: close once the last of them is dropped, after the call,
        # as `open(path, "w").write(s)` closes its file after the write.
        probe = partial(id)  # a partial only a local holds: the baseline count
        base = sys.getrefcount(probe)
        held = []
        for name in ("send", "send_many", "flush"):
            method = self.__dict__.pop(name, None)
            if method is not None and sys.getrefcount(method) > base:
                held.append(method)
        if not held:
            _close_dropped(self._backend, self._drop_closes_in_thread)
            return
        countdown = _DeferredClose(self._backend, len(held), self._drop_closes_in_thread)
        for method in held:
            weakref.finalize(method, countdown.release).atexit = False  # at exit, _write_at_exit writes

    def __enter__(self) -> Producer:
        if self._closed:
            raise ClosedError("producer is closed")
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
        mapping or (name, value) pairs, values bytes-like, ``str`` (UTF-8)
        or None; ``timestamp_ms``: default now. Bad
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
        rules of ``send``; all records share one timestamp. ``partition``,
        if given, takes every record (as in ``send``); else keyed records go
        to their key's partition (or the partitioner's choice), the rest to
        one partition chosen as for keyless ``send``.
        Validated first: a call that raises writes nothing.
        """
        return self._backend.send_many(topic, values, keys, partition=partition,
                                       timestamp_ms=timestamp_ms)

    def partitions_for(self, topic: str) -> set[int]:
        """The partition numbers of ``topic``, looked up as the first send
        to it does (then remembered: later sends to it do not look again).
        Remote backend: the lookup waits for the cluster, at most
        ``request_timeout``. ``TopicNotFoundError`` for a topic that does
        not exist (unless the broker creates topics on first send)."""
        return self._backend.partitions_for(topic)

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
        timeout = wait_limit(timeout)  # checked before anything closes: a bad one loses nothing
        self._closed = True
        self._backend.close(timeout)
