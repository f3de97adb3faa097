"""Cross-process locks and in-process wake-ups.

Locks are ``fcntl.flock`` on a dedicated file that is never deleted. Unlike
POSIX record locks (``lockf``), a flock is not dropped when some other
descriptor of the file closes, and the kernel releases it when its process
dies, so a writer killed mid-append never blocks the others.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
import weakref
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .doorbell import Doorbell

_open_locks: weakref.WeakSet[FileLock] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # A forked child shares its parent's open file descriptions, and with
    # them the parent's flocks. Drop the child's copies so the child never
    # believes it holds a lock; a lock it needs is reopened (a new file
    # description) on next use.
    for lock in list(_open_locks):
        lock._forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class FileLock:
    """An exclusive flock on ``path``, opened lazily and kept open.

    flock belongs to the open file description, so two FileLock objects on
    one path conflict even inside one process; a thread lock must still
    guard one FileLock shared by threads.
    """

    __slots__ = ("__weakref__", "_fd", "path")

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = -1

    def _open(self) -> int:
        if self._fd < 0:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            _open_locks.add(self)
        return self._fd

    def _forget(self) -> None:
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = -1

    def acquire(self, blocking: bool = True) -> bool:
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def fileno(self) -> int:
        return self._open()

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class Waker:
    """Lets readers sleep until data may have arrived.

    With a :class:`~minikafka.doorbell.Doorbell` (Linux), every append in
    any process rings it and waiting readers wake at once; they sleep at
    most ``DOORBELL_RECHECK`` seconds between checks, as a safety net.

    Without one, appends made in this process wake sleepers through a
    condition variable, and appends made by other processes are found by
    polling on a back-off schedule: re-check without sleeping for the first
    1 ms of a wait (a consumer that keeps up sees the next record within
    tens of µs), then sleep 1/8 of the time waited so far — from 50 µs up
    to ``max_sleep`` (``BrokerOptions.poll_interval``, 4 ms by default).
    """

    SPIN_SECONDS = 0.001
    FIRST_SLEEP = 0.00005
    DOORBELL_RECHECK = 0.1

    def __init__(self, max_sleep: float = 0.004, doorbell: Doorbell | None = None) -> None:
        self.max_sleep = max_sleep
        self.doorbell = doorbell
        self._cond = threading.Condition(threading.Lock())
        self._generation = 0

    def notify(self) -> None:
        """An append happened (or a waiter should look again, e.g. on close)."""
        if self.doorbell is not None:
            self.doorbell.ring()
            return
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    @property
    def generation(self) -> int:
        """Read before looking for records; pass to :meth:`wait`."""
        if self.doorbell is not None:
            return self.doorbell.value()
        return self._generation

    def backoff(self, started: float) -> float:
        """How long to sleep on this round, given when waiting started."""
        if self.doorbell is not None:
            return self.DOORBELL_RECHECK
        waited = time.monotonic() - started
        if waited < self.SPIN_SECONDS:
            return 0.0
        return min(self.max_sleep, max(self.FIRST_SLEEP, waited / 8))

    def wait(self, generation: int, seconds: float) -> None:
        """Sleep up to ``seconds`` unless an append happened since
        ``generation`` was read."""
        if seconds <= 0:
            time.sleep(0)
            return
        if self.doorbell is not None:
            self.doorbell.wait(generation, seconds)
            return
        with self._cond:
            if self._generation == generation:
                self._cond.wait(seconds)
