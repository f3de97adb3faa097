"""``Closeable``: context-manager support for the objects users close; and
``close_in_thread``, the closer that closes the clients event loops drop.

A Producer or Consumer dropped without close() closes itself in its
``__del__``, in whatever thread dropped it. The clients of an AsyncProducer
and of a remote AsyncConsumer are dropped in an event loop's thread, and
their close waits for writes, the group or the cluster (up to
``request_timeout``): that would stop the loop that long, so they hand the
close to ``close_in_thread`` instead. A ``__del__`` (the cycle collector's
in particular) may run in a thread that holds any lock, threading's own
included, so it does not start a thread itself: it puts the close on a
``queue.SimpleQueue`` (reentrant, safe there), and one dispatcher thread,
started by the async clients as they are made (``start_closer``), starts a
thread per close, so closes run side by side. Those threads are not
daemons, and an exit hook waits for them, so what a close flushes at
interpreter exit is not lost.
"""

from __future__ import annotations

import atexit
import os
import queue
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

#: The name of the threads that run the closes ``close_in_thread`` is given.
CLOSER_THREAD = "minikafka-close-dropped"

_Close = Callable[[], None]
_Item = _Close | threading.Event | None  # a close, a barrier (``wait_for_closes``), the end


class Closeable:
    """``with obj: ...`` calls ``obj.close()`` on exit; entering a closed
    object raises ClosedError, as a closed file does."""

    def close(self) -> None:
        raise NotImplementedError

    def _check_open(self) -> None:
        """Raise ClosedError if ``close()`` was called."""

    def __enter__(self) -> Self:
        self._check_open()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class _Closer:
    """The dispatcher: the queue of closes, its thread, the closes running."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self.lock = threading.Lock()  # never taken by close_in_thread (a __del__)
        self.thread: threading.Thread | None = None
        self.running: set[threading.Thread] = set()
        self.stopped = False  # interpreter exit: closes run where they are dropped

    def start(self) -> None:
        with self.lock:
            if self.stopped or (self.thread is not None and self.thread.is_alive()):
                return
            thread = threading.Thread(target=self._dispatch, name=f"{CLOSER_THREAD}-dispatcher",
                                      daemon=True)
            try:
                thread.start()
            except RuntimeError:  # no new threads now (interpreter shutdown): closes run inline
                return
            self.thread = thread

    def accepting(self) -> bool:
        thread = self.thread  # is_alive() takes no lock that could be held
        return not self.stopped and thread is not None and thread.is_alive()

    def _dispatch(self) -> None:
        while True:
            close = self.queue.get()
            if close is None:
                return
            if isinstance(close, threading.Event):
                close.set()  # everything queued before it is running
                continue
            # Not a daemon (as this thread is): interpreter exit waits for it.
            worker = threading.Thread(target=self._run, args=(close,), name=CLOSER_THREAD, daemon=False)
            with self.lock:
                self.running.add(worker)
            try:
                worker.start()
            except RuntimeError:  # no new threads now (interpreter shutdown)
                with self.lock:
                    self.running.discard(worker)
                self._run(close)

    def _run(self, close: _Close) -> None:
        try:
            close()  # the close of a dropped client logs its own errors
        finally:
            with self.lock:
                self.running.discard(threading.current_thread())

    def stop(self) -> None:
        """At exit: run what is queued, then wait for every close (each is
        bounded by its client's ``request_timeout``)."""
        with self.lock:
            self.stopped = True
            thread = self.thread
        if thread is not None and thread.is_alive():
            self.queue.put(None)  # after whatever is queued
            thread.join()
        while True:
            try:
                close = self.queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(close, threading.Event):
                close.set()
            elif close is not None:
                self._run(close)
        with self.lock:
            running = list(self.running)
        for worker in running:
            worker.join()

    def wait(self, timeout: float) -> bool:
        """Until the closes handed over so far have ended; False after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        if self.accepting():
            barrier = threading.Event()
            self.queue.put(barrier)
            if not barrier.wait(timeout):
                return False
        with self.lock:
            running = list(self.running - {threading.current_thread()})  # a close that waits: not for itself
        for worker in running:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():
                return False
        return True


_closer = _Closer()
_hooked: list[bool] = []


def start_closer() -> None:
    """Make sure the dispatcher runs (AsyncProducer and AsyncConsumer call
    this as they are made: a ``__del__`` must not start threads)."""
    if not _hooked:
        _hooked.append(True)
        atexit.register(lambda: _closer.stop())
    _closer.start()


def close_in_thread(close: _Close) -> None:
    """Run ``close`` (the close of a client dropped without close(), which
    logs its own errors) in a thread of its own; where no dispatcher runs
    (none started, or interpreter exit), here."""
    if _closer.accepting():
        _closer.queue.put(close)
    else:
        close()


def wait_for_closes(timeout: float = 10.0) -> bool:
    """Wait until the closes handed to ``close_in_thread`` so far have
    ended; False if some still run after ``timeout`` seconds (for tests)."""
    return _closer.wait(timeout)


def _forget_closer() -> None:
    # A forked child has no dispatcher, and the parent's queued closes are not its own.
    global _closer
    _closer = _Closer()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_closer)
