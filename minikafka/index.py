"""The sparse offset + time index of one segment (``<base>.index``).

An entry is written after its batch is published, so an entry always
points at a published batch; a crash can only leave entries missing, which
costs a longer scan, never a wrong answer. Every lookup result is checked
against the log by the caller, and an index that disagrees is rebuilt.
"""

from __future__ import annotations

import mmap
import os

from .format import (
    FORMAT_VERSION,
    INDEX_ENTRY,
    INDEX_ENTRY_SIZE,
    INDEX_HEADER,
    INDEX_HEADER_SIZE,
    INDEX_MAGIC,
    index_name,
)
from .segment import allocate

_unpack_entry = INDEX_ENTRY.unpack_from


class OffsetIndex:
    """A mapped index file; entries are (relative offset, position, max
    timestamp before the batch)."""

    __slots__ = ("base", "count", "mm", "path", "slots")

    def __init__(self, path: str, base: int, mm: mmap.mmap) -> None:
        self.path = path
        self.base = base
        self.mm = mm
        self.slots = (len(mm) - INDEX_HEADER_SIZE) // INDEX_ENTRY_SIZE
        self.count = self._count()

    @staticmethod
    def size_for(segment_capacity: int, interval: int) -> int:
        return INDEX_HEADER_SIZE + (segment_capacity // max(interval, 1) + 2) * INDEX_ENTRY_SIZE

    @classmethod
    def create(cls, directory: str, base: int, size: int) -> None:
        final = os.path.join(directory, index_name(base))
        tmp = final + ".tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            allocate(fd, size)
            os.pwrite(fd, INDEX_HEADER.pack(INDEX_MAGIC, FORMAT_VERSION, 0, base), 0)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        os.rename(tmp, final)

    @classmethod
    def open(cls, directory: str, base: int, writable: bool = False) -> OffsetIndex | None:
        """Map the index, or None when it is missing or its header is wrong."""
        path = os.path.join(directory, index_name(base))
        try:
            fd = os.open(path, os.O_RDWR if writable else os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            size = os.fstat(fd).st_size
            if size < INDEX_HEADER_SIZE + INDEX_ENTRY_SIZE:
                return None
            mm = mmap.mmap(fd, size, access=mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ)
        finally:
            os.close(fd)
        magic, version, _, hbase = INDEX_HEADER.unpack_from(mm, 0)
        if magic != INDEX_MAGIC or hbase != base or version > FORMAT_VERSION:
            mm.close()
            return None
        return cls(path, base, mm)

    def _count(self) -> int:
        """Number of entries: binary search for the first with position 0."""
        lo, hi = 0, self.slots
        mm = self.mm
        while lo < hi:
            mid = (lo + hi) // 2
            if _unpack_entry(mm, INDEX_HEADER_SIZE + mid * INDEX_ENTRY_SIZE)[1] == 0:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def refresh(self) -> None:
        """Re-count entries another process may have added."""
        self.count = self._count()

    def entry(self, i: int) -> tuple[int, int, int]:
        return _unpack_entry(self.mm, INDEX_HEADER_SIZE + i * INDEX_ENTRY_SIZE)

    def floor_offset(self, relative: int) -> tuple[int, int, int] | None:
        """The last entry whose relative offset is <= ``relative``."""
        lo, hi = 0, self.count
        while lo < hi:
            mid = (lo + hi) // 2
            if self.entry(mid)[0] <= relative:
                lo = mid + 1
            else:
                hi = mid
        return self.entry(lo - 1) if lo else None

    def floor_time(self, timestamp: int) -> tuple[int, int, int] | None:
        """The last entry before which every record is older than
        ``timestamp``: scanning from it finds the first record >= it."""
        lo, hi = 0, self.count
        while lo < hi:
            mid = (lo + hi) // 2
            if self.entry(mid)[2] < timestamp:
                lo = mid + 1
            else:
                hi = mid
        return self.entry(lo - 1) if lo else None

    def append(self, relative: int, position: int, max_before: int) -> None:
        if self.count >= self.slots:
            return  # a sparser index is still correct
        INDEX_ENTRY.pack_into(
            self.mm, INDEX_HEADER_SIZE + self.count * INDEX_ENTRY_SIZE, relative, position, max_before
        )
        self.count += 1

    def truncate_entries(self, count: int) -> None:
        """Zero every entry from ``count`` on (the file itself keeps its size)."""
        start = INDEX_HEADER_SIZE + count * INDEX_ENTRY_SIZE
        end = len(self.mm)
        if end > start:
            self.mm[start:end] = bytes(end - start)
        self.count = count

    def close(self) -> None:
        self.mm.close()
