"""A cross-process doorbell: wakes readers the moment any process appends.

Readers of a partition written by another process cannot be signalled by a
condition variable, and inotify does not see writes through a mapping. On
Linux a *futex* on a word of a shared file mapping can: the kernel keys the
wait queue by the file's inode and offset, so every process that maps the
file waits on, and wakes, the same queue. The word lives in ``<data
dir>/doorbell`` (one page, never truncated; see docs/format.md).

Protocol (the classic futex pattern, lock-free):

- a writer publishes its batch, then stores a new random value in the word,
  and calls FUTEX_WAKE for all waiters only if the waiter count (the second
  word) is non-zero: a syscall per batch only while somebody sleeps;
- a reader reads the word *before* it looks for records, and if it found
  none raises the waiter count (atomically, with FUTEX_WAKE_OP), calls
  FUTEX_WAIT(word, value_read) — the kernel puts it to sleep only if the
  word still holds that value, so a ring that happened after the read is
  never missed — and lowers the count again.

The count is raised before the waiter's FUTEX_WAIT compares the word, and
the ringer reads it after storing the word with a full fence in between
(an atomic read-modify-write: the acquire of an uncontended lock), so
either the ringer sees the count or the waiter sees the new word. A waiter
killed while asleep leaves the count raised: rings then always call
FUTEX_WAKE, as before this optimisation, which is safe.

Writers of different partitions may race on the word; each stores a random
value (not old + 1), so two racing rings cannot both store the value a
reader already saw. Waits still time out after a bounded interval as a
safety net. Where futexes are unavailable (not Linux, an unknown CPU, a
seccomp filter), :func:`open_doorbell` returns None and readers fall back
to polling with back-off.
"""

from __future__ import annotations

import ctypes
import logging
import mmap
import os
import platform
import random
import struct
import sys
import threading
from collections.abc import Callable

log = logging.getLogger("minikafka")

# futex(2) syscall numbers per machine (asm/unistd.h).
_SYS_FUTEX = {
    "x86_64": 202, "amd64": 202,
    "aarch64": 98, "arm64": 98, "riscv64": 98, "loongarch64": 98,
    "ppc64le": 221, "ppc64": 221,
    "s390x": 238,
    "i386": 240, "i686": 240, "armv7l": 240, "armv6l": 240,
}
_FUTEX_WAIT = 0
_FUTEX_WAKE = 1
_FUTEX_WAKE_OP = 5
_WAKE_ALL = 0x7FFFFFFF
_WORD = struct.Struct("<I")
WAITERS_AT = 4  # the waiter count: a u32 after the doorbell word
SIZE = mmap.PAGESIZE


def _add_op(n: int) -> int:
    """FUTEX_OP(FUTEX_OP_ADD, n, FUTEX_OP_CMP_EQ, 0): atomically add ``n``
    (12-bit signed) to the second word; the compare only decides a wake of
    nobody (0 waiters asked for)."""
    return (1 << 28) | ((n & 0xFFF) << 12)


_INCREMENT = _add_op(1)

# A ring's new word comes from a generator of our own: drawing from the global
# ``random`` in a producer's background thread moved users' seeded random
# sequences (and hypothesis, which checks that no draw touches it). Reseeded in
# a forked child, as ``random`` reseeds its own.
_rng = random.Random()
_getrandbits = _rng.getrandbits
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_rng.seed)
_DECREMENT = _add_op(-1)


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class Doorbell:
    """The futex word of one data directory, mapped shared."""

    __slots__ = ("_addr", "_fence", "_mm", "_nr", "_syscall", "_waiters", "_waiters_addr", "_word")

    def __init__(self, mm: mmap.mmap, nr: int, syscall: Callable[..., int]) -> None:
        self._mm = mm
        # The ctypes views pin the mapping (mmap.close() would fail while
        # they exist), so the addresses stay valid for the doorbell's lifetime.
        self._word = ctypes.c_uint32.from_buffer(mm)
        self._addr = ctypes.c_void_p(ctypes.addressof(self._word))
        self._waiters = ctypes.c_uint32.from_buffer(mm, WAITERS_AT)
        self._waiters_addr = ctypes.c_void_p(ctypes.addressof(self._waiters))
        self._fence = threading.Lock()
        self._nr = nr
        self._syscall = syscall

    def value(self) -> int:
        """Read before looking for records; pass to :meth:`wait`."""
        word: int = _WORD.unpack_from(self._mm, 0)[0]
        return word

    def waiters(self) -> int:
        """Readers asleep (or about to be) on this doorbell, in any process."""
        count: int = _WORD.unpack_from(self._mm, WAITERS_AT)[0]
        return count

    def ring(self) -> None:
        """Wake every reader waiting on this data directory, in any process."""
        mm = self._mm
        old = _WORD.unpack_from(mm, 0)[0]
        new = _getrandbits(32)
        _WORD.pack_into(mm, 0, new if new != old else new ^ 1)
        fence = self._fence  # store -> full fence -> load (see the module docstring)
        fence.acquire()
        fence.release()
        if _WORD.unpack_from(mm, WAITERS_AT)[0]:
            self._syscall(self._nr, self._addr, _FUTEX_WAKE, _WAKE_ALL, None, None, 0)

    def close(self) -> None:
        """Unmap the word. A racing wait or ring then gets EFAULT from the
        kernel (it holds only addresses), never touches freed memory."""
        self._word = self._waiters = None  # type: ignore[assignment]  # release the buffer exports
        try:
            self._mm.close()
        except BufferError:
            pass  # still exported somewhere: unmapped when collected

    def wait(self, seen: int, seconds: float) -> None:
        """Sleep until a ring after ``seen`` was read, or ``seconds`` pass.

        Returns at once if the word no longer holds ``seen``. Spurious
        wake-ups are possible; callers re-check. The GIL is released."""
        ts = _Timespec(int(seconds), int((seconds % 1.0) * 1e9))
        syscall, nr, waiters = self._syscall, self._nr, self._waiters_addr
        syscall(nr, waiters, _FUTEX_WAKE_OP, 0, None, waiters, _INCREMENT)
        try:
            syscall(nr, self._addr, _FUTEX_WAIT, ctypes.c_uint32(seen), ctypes.byref(ts), None, 0)
        finally:
            syscall(nr, waiters, _FUTEX_WAKE_OP, 0, None, waiters, _DECREMENT)


def open_doorbell(path: str) -> Doorbell | None:
    """Map the doorbell file at ``path`` (creating it), or None where
    futexes are not available and readers must poll."""
    nr = _SYS_FUTEX.get(platform.machine().lower())
    if not sys.platform.startswith("linux") or nr is None or os.environ.get("MINIKAFKA_NO_FUTEX"):
        return None
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
        log.info("doorbell %s cannot be opened (%s): readers poll instead", path, e)
        return None  # e.g. no write permission: poll instead
    try:
        if os.fstat(fd).st_size < SIZE:
            os.ftruncate(fd, SIZE)  # only ever grows it: others may map it
        mm = mmap.mmap(fd, SIZE)
    except OSError as e:
        log.info("doorbell %s cannot be mapped (%s): readers poll instead", path, e)
        return None
    finally:
        os.close(fd)
    try:
        syscall = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):
        mm.close()
        return None
    syscall.restype = ctypes.c_long
    bell = Doorbell(mm, nr, syscall)
    # A wake with nobody waiting returns 0; -1 means no usable futex (ENOSYS
    # under emulation, EPERM under a seccomp filter).
    if syscall(nr, bell._addr, _FUTEX_WAKE, _WAKE_ALL, None, None, 0) < 0:
        return None
    # FUTEX_WAKE_OP (the waiter count) must work too: add 0 as the probe.
    if syscall(nr, bell._waiters_addr, _FUTEX_WAKE_OP, 0, None, bell._waiters_addr, _add_op(0)) < 0:
        return None
    return bell
