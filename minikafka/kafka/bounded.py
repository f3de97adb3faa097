"""``BoundedCaller``: run librdkafka calls that have no timeout of their own
(a sync commit, a consumer's close) so that the caller waits at most a
deadline.

Against a cluster that is connected but stopped answering (a frozen
broker) those calls wait for minutes. Each runs in one worker thread per
client (started on first use, ended by :meth:`BoundedCaller.stop`); past the
deadline the caller gets TimeoutError and the call goes on in the
background. A call made while an earlier one is still stuck waits behind it
(within its own deadline): the client is used one call at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any

from .errors import TimeoutError

_STOP = None


class BoundedCaller:
    """One worker thread that runs ``fn()`` for callers waiting at most ``timeout``."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._queue: SimpleQueue[Any] = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()

    def call(self, fn: Callable[[], Any], timeout: float, what: str) -> Any:
        """``fn()``'s result (or its exception); TimeoutError naming ``what``
        after ``timeout`` seconds, ``fn`` still running."""
        with self._guard:
            if self._thread is None:
                self._thread = threading.Thread(target=_serve, args=(self._queue,), name=self._name,
                                                daemon=True)
                self._thread.start()
        done = threading.Lock()
        done.acquire()
        outcome: list[Any] = []
        self._queue.put((fn, outcome, done))
        if not done.acquire(timeout=timeout):
            raise TimeoutError(f"{what}: not done within {timeout:g} s (request_timeout)")
        ok, value = outcome[0]
        if not ok:
            raise value
        return value

    def stop(self) -> None:
        """The thread ends once the calls queued before this one are done."""
        with self._guard:
            if self._thread is not None:
                self._queue.put(_STOP)
                self._thread = None


def _serve(queue: SimpleQueue[Any]) -> None:
    while True:
        item = queue.get()
        if item is _STOP:
            return
        fn, outcome, done = item
        try:
            outcome.append((True, fn()))
        except BaseException as e:  # delivered to the caller, which re-raises it
            outcome.append((False, e))
        finally:
            done.release()
