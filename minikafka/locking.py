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

from .errors import TimeoutError

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

    ``acquire(timeout=...)`` never waits longer than asked: it polls with
    ``LOCK_NB`` on a bounded back-off and raises
    :class:`~minikafka.TimeoutError` naming the lock file and the holder's
    pid (from ``/proc/locks``, where readable). The lock file's content is
    never touched: some lock files (a group member's) carry data.
    """

    __slots__ = ("__weakref__", "_fd", "path")

    #: First and longest sleep between two tries of a contended lock.
    FIRST_SLEEP = 0.0001
    MAX_SLEEP = 0.01

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

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take the lock. ``blocking=False``: one try, False if it is held.
        Otherwise wait, forever when ``timeout`` is None, else at most
        ``timeout`` seconds and then raise :class:`~minikafka.TimeoutError`."""
        fd = self._open()
        if blocking and timeout is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if not blocking:
                return False
        assert timeout is not None  # blocking without a timeout returned above
        deadline = time.monotonic() + max(0.0, timeout)
        sleep = self.FIRST_SLEEP
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(self._timeout_message(timeout))
            time.sleep(min(sleep, remaining))
            sleep = min(self.MAX_SLEEP, sleep * 2)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                pass

    def _timeout_message(self, timeout: float) -> str:
        pids = self.holders()
        who = f" (held by pid {', '.join(map(str, pids))})" if pids else ""
        return f"timed out after {timeout:g} s waiting for lock {self.path}{who}"

    def holders(self) -> list[int]:
        """Pids that hold a flock on this file, from ``/proc/locks`` (Linux);
        empty where unknown. The pid is the process that took the lock (a
        forked child sharing it is not listed)."""
        try:
            st = os.fstat(self._open())
            with open("/proc/locks") as f:
                lines = f.read().splitlines()
        except OSError:
            return []
        ident = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        pids = []
        for line in lines:
            fields = line.split()
            # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; blocked
            # waiters appear as "1: -> FLOCK ..." and are not holders.
            if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == ident:
                try:
                    pids.append(int(fields[4]))
                except ValueError:
                    continue
        return sorted(set(pids))

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

    def close(self) -> None:
        """Release the doorbell mapping; later waits fall back to the condition."""
        bell, self.doorbell = self.doorbell, None
        if bell is not None:
            bell.ring()
            bell.close()

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
