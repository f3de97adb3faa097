"""The asyncio wake-up hub: one waiter thread per broker's waker, shared by
every AsyncConsumer and event loop of the process.

It sleeps in ``Waker.wait`` and, when the doorbell rings, wakes every
waiting loop through ``call_soon_threadsafe`` (without a doorbell it wakes
them every polling interval, as a sync ``poll`` looks then). It starts with
the first waiter of a broker and ends with the last one. A broker without a
waker (a remote backend) gets a hub that wakes waiters every
``FALLBACK_INTERVAL``. aio.py decides what to do when woken.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from typing import Any

from .locking import Waker

FALLBACK_INTERVAL = 0.005  # seconds between looks on a broker with no waker


def wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class Hub:
    """One waiter thread for one waker, shared by all loops that wait on it."""

    def __init__(self, waker: Waker | None) -> None:
        # Weak: the hub lives in a registry keyed by the waker, and must not
        # keep a closed broker's waker (and its doorbell mapping) alive.
        self.waker_ref = None if waker is None else weakref.ref(waker)
        # Re-entrant: AsyncConsumer.__del__ calls release(), and the cycle
        # collector may run it in a thread that holds this lock already.
        self._cond = threading.Condition(threading.RLock())
        # token -> (loop, future, generation the waiter saw)
        self._waiters: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future[None], int]] = {}
        self._next = 0
        self._users = 0
        self._thread: threading.Thread | None = None

    @property
    def waker(self) -> Waker | None:
        return None if self.waker_ref is None else self.waker_ref()

    @property
    def polling(self) -> bool:
        """No doorbell: other processes' appends are found only by looking."""
        return getattr(self.waker, "doorbell", None) is None

    def generation(self) -> int:
        """Read before looking for records; pass to :meth:`wait`."""
        waker = self.waker
        return 0 if waker is None else waker.generation

    def acquire(self) -> None:
        """An AsyncConsumer starts using this hub (the thread starts lazily)."""
        with self._cond:
            self._users += 1

    def release(self) -> None:
        """An AsyncConsumer is done; the last one lets the thread end."""
        with self._cond:
            self._users -= 1
            self._cond.notify_all()

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    async def wait(self, seen: int, timeout: float) -> None:
        """Return once the waker moved past ``seen``, or after ``timeout`` s."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        with self._cond:
            token = self._next
            self._next += 1
            self._waiters[token] = (loop, fut, seen)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="minikafka-aio-waker",
                                                daemon=True)
                self._thread.start()
            self._cond.notify_all()
        # A ring between the caller reading ``seen`` and the thread reading
        # the word would go unnoticed by the thread until its next recheck.
        if self.generation() != seen:
            fut.set_result(None)
        handle = loop.call_later(timeout, wake, fut)
        try:
            await fut
        finally:
            handle.cancel()
            with self._cond:
                self._waiters.pop(token, None)

    def _fire(self, only_changed: int | None) -> None:
        """Wake waiters (those whose generation differs from ``only_changed``,
        or all of them when it is None)."""
        with self._cond:
            due = [t for t, (_, _, seen) in self._waiters.items()
                   if only_changed is None or seen != only_changed]
            targets = [self._waiters.pop(t) for t in due]
        for loop, fut, _ in targets:
            try:
                loop.call_soon_threadsafe(wake, fut)
            except RuntimeError:
                pass  # that loop is closed

    def _run(self) -> None:
        waker = self.waker
        # The waker's own recheck interval: the doorbell's safety-net period,
        # or the polling interval where there is no doorbell.
        interval = FALLBACK_INTERVAL if waker is None else max(waker.backoff(0.0), 0.0005)
        # With a doorbell every append in any process changes the word, so
        # only a change wakes the loops (their own RECHECK is the safety net).
        polling = self.polling
        while True:
            with self._cond:
                # With a doorbell the thread keeps waiting on the word while
                # consumers exist (a registration then needs no hand-off);
                # otherwise it parks until someone waits.
                while not self._waiters and self._users > 0 and polling:
                    self._cond.wait()
                if not self._waiters and self._users <= 0:  # no users left
                    if self._thread is threading.current_thread():
                        self._thread = None
                    return
            if waker is None:
                with self._cond:
                    self._cond.wait(interval)
                self._fire(None)
                continue
            generation = waker.generation
            self._fire(generation)
            waker.wait(generation, interval)
            now = waker.generation
            if now != generation:
                self._fire(now)  # a ring: wake those who saw an older word
            elif polling:
                # No doorbell: appends by other processes ring nothing, so a
                # timeout means "look again" for everyone (as a sync poll).
                self._fire(None)


_hubs: weakref.WeakKeyDictionary[Waker, Hub] = weakref.WeakKeyDictionary()
_fallback_hub: list[Hub] = []
_hubs_lock = threading.Lock()


def hub_for(broker: Any) -> Hub:
    waker = getattr(broker, "waker", None)
    with _hubs_lock:
        if not isinstance(waker, Waker):
            if not _fallback_hub:
                _fallback_hub.append(Hub(None))
            return _fallback_hub[0]
        hub = _hubs.get(waker)
        if hub is None:
            hub = _hubs[waker] = Hub(waker)
        return hub


def _forget_hubs() -> None:
    # A forked child has none of its parent's threads: start afresh.
    global _hubs_lock
    _hubs_lock = threading.Lock()
    _hubs.clear()
    _fallback_hub.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_hubs)
