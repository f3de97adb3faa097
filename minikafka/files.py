"""File primitives shared by every file minikafka preallocates.

A file that other processes may map is created whole or not at all: under a
temporary name, at its full size on real blocks, then renamed into place.
It is never truncated afterwards (a mapping past the end of its file is a
SIGBUS).
"""

from __future__ import annotations

import os

#: "No such position / time, ever": larger than any offset, byte position or
#: millisecond timestamp minikafka writes.
NEVER = 1 << 62

TMP_SUFFIX = ".tmp"


def allocate(fd: int, size: int) -> None:
    """Give the file ``size`` bytes of real, zeroed blocks: a full disk is an
    OSError now, not a SIGBUS on a later write through the mapping."""
    if hasattr(os, "posix_fallocate"):
        os.posix_fallocate(fd, 0, size)
    else:  # pragma: no cover - macOS has no posix_fallocate
        os.ftruncate(fd, size)


def create_preallocated(final: str, size: int, header: bytes) -> None:
    """Create ``final`` atomically: ``size`` zero bytes with ``header`` at
    byte 0. Raises OSError (ENOSPC) before the name exists."""
    tmp = final + TMP_SUFFIX
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        allocate(fd, size)
        os.pwrite(fd, header, 0)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.rename(tmp, final)


def fsync_directory(directory: str) -> None:
    """Make the names created or renamed in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unlink_quietly(path: str) -> None:
    """Remove ``path``; already gone is fine (retention, a racing process)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
