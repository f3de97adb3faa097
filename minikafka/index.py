"""The sparse offset + time index of one segment (``<base>.index``).

An entry is written after its batch is published, so an entry always
points at a published batch; a crash can only leave entries missing, which
costs a longer scan, never a wrong answer. Every lookup result is checked
against the log by the caller, and an index that disagrees is rebuilt.
"""

from __future__ import annotations

import mmap
import os

from .batch import BatchWalker, Status, read_batch
from .files import NEVER, create_preallocated
from .format import (
    BATCH_HEADER_SIZE,
    INDEX_ENTRY,
    INDEX_ENTRY_SIZE,
    INDEX_HEADER,
    INDEX_HEADER_SIZE,
    INDEX_MAGIC,
    INDEX_VERSION,
    INT64_MIN,
    RECORD_PREFIX_SIZE,
    SEGMENT_HEADER_SIZE,
    index_name,
)

_unpack_entry = INDEX_ENTRY.unpack_from
Entry = tuple[int, int, int]  # relative offset, position, max timestamp before

#: ``last_indexed_pos`` of a segment with no entry yet: its first batch is due.
NOT_INDEXED = -NEVER

#: The smallest batch (one record, no key, value or headers): two indexed
#: batches are at least this far apart, whatever ``index_interval_bytes``.
MIN_BATCH_BYTES = BATCH_HEADER_SIZE + RECORD_PREFIX_SIZE


def index_due(pos: int, last_indexed_pos: int, interval: int) -> bool:
    """The index-interval rule: a batch at ``pos`` gets an entry when it
    starts at least ``interval`` bytes after the last indexed batch (so the
    first batch of a segment always does)."""
    return pos - last_indexed_pos >= interval


def points_at_batch(mm: mmap.mmap, capacity: int, base: int, entry: Entry) -> bool:
    """Whether an index entry points at a valid batch with its offset
    (every entry is checked against the log before it is used)."""
    rel, pos, _ = entry
    return (SEGMENT_HEADER_SIZE <= pos < capacity
            and read_batch(mm, pos, capacity, base + rel).status is Status.BATCH)


def time_holds(mm: mmap.mmap, capacity: int, base: int, prev: Entry | None, entry: Entry) -> bool:
    """Whether ``entry``'s max-timestamp-before agrees with the log: it must
    be ``prev``'s (the entry before it; None: the segment start) raised by
    the batch headers between the two, and that walk must land on
    ``entry``'s position and offset. Catches a damaged timestamp in either
    entry (a time lookup started from an understated one would skip
    records) at the cost of one header walk of ~``index_interval_bytes``."""
    rel, pos, max_ts = prev if prev is not None else (0, SEGMENT_HEADER_SIZE, INT64_MIN)
    if not SEGMENT_HEADER_SIZE <= pos <= entry[1]:
        return False
    walker = BatchWalker(mm, capacity, pos, base + rel, verify=False, max_ts=max_ts)
    for _ in walker:
        if walker.pos >= entry[1]:
            break
    return walker.pos == entry[1] and walker.offset == base + entry[0] and walker.max_ts == entry[2]


def build_entries(mm: mmap.mmap, capacity: int, base: int, interval: int) -> list[Entry]:
    """The entries a writer would have written for the batches of a
    segment, from its log (index rebuild, and readers' in-memory index)."""
    entries: list[Entry] = []
    last = NOT_INDEXED
    walker = BatchWalker(mm, capacity, SEGMENT_HEADER_SIZE, base, verify=True, max_ts=INT64_MIN)
    for _ in walker:
        if index_due(walker.pos, last, interval):
            entries.append((walker.offset - base, walker.pos, walker.max_ts))
            last = walker.pos
    return entries


def rebuild_file(directory: str, base: int, mm: mmap.mmap, capacity: int, interval: int) -> None:
    """Rewrite ``<base>.index`` from the log of a sealed segment (the
    writer, flock held): the same entries the writer wrote as it went."""
    entries = build_entries(mm, capacity, base, interval)
    OffsetIndex.create(directory, base, OffsetIndex.size_for(capacity, interval))
    index = OffsetIndex.open(directory, base, writable=True)
    if index is not None:
        index.write_entries(entries)
        index.close()


class _Lookups:
    """Binary searches over ``count`` entries read with ``entry(i)``."""

    __slots__ = ()
    count: int

    def entry(self, i: int) -> Entry:
        raise NotImplementedError

    def floor_offset(self, relative: int) -> Entry | None:
        """The last entry whose relative offset is <= ``relative``."""
        lo, hi = 0, self.count
        while lo < hi:
            mid = (lo + hi) // 2
            if self.entry(mid)[0] <= relative:
                lo = mid + 1
            else:
                hi = mid
        return self.entry(lo - 1) if lo else None

    def floor_time(self, timestamp: int) -> Entry | None:
        """The last entry before which every record is older than
        ``timestamp``: scanning from it finds the first record >= it."""
        i = self.floor_time_at(timestamp)
        return self.entry(i) if i >= 0 else None

    def floor_time_at(self, timestamp: int) -> int:
        """The number of ``floor_time``'s entry, or -1 (callers check the
        entry with ``time_holds`` against the one before it)."""
        lo, hi = 0, self.count
        while lo < hi:
            mid = (lo + hi) // 2
            if self.entry(mid)[2] < timestamp:
                lo = mid + 1
            else:
                hi = mid
        return lo - 1

    def close(self) -> None:
        pass


class MemoryIndex(_Lookups):
    """An index built from the log in memory: what a reader uses when the
    file is missing or wrong (a reader never writes; the writer rebuilds
    the file)."""

    __slots__ = ("count", "entries")

    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries
        self.count = len(entries)

    def entry(self, i: int) -> Entry:
        return self.entries[i]


class OffsetIndex(_Lookups):
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
        """Room for every entry a segment can get: one per batch at most,
        so an interval below the smallest batch needs no more slots than it
        (an interval of 1 made the index 16x its segment)."""
        spacing = max(interval, MIN_BATCH_BYTES)
        return INDEX_HEADER_SIZE + (segment_capacity // spacing + 2) * INDEX_ENTRY_SIZE

    @classmethod
    def create(cls, directory: str, base: int, size: int) -> None:
        """Create an empty ``<base>.index`` atomically (replacing one)."""
        create_preallocated(os.path.join(directory, index_name(base)), size,
                            INDEX_HEADER.pack(INDEX_MAGIC, INDEX_VERSION, 0, base))

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
        if magic != INDEX_MAGIC or hbase != base or version > INDEX_VERSION:
            mm.close()
            return None
        return cls(path, base, mm)

    @classmethod
    def exists_valid(cls, directory: str, base: int) -> bool:
        """Whether ``<base>.index`` is there with a header this reads."""
        index = cls.open(directory, base)
        if index is None:
            return False
        index.close()
        return True

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

    def entry(self, i: int) -> Entry:
        return _unpack_entry(self.mm, INDEX_HEADER_SIZE + i * INDEX_ENTRY_SIZE)

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

    def write_entries(self, entries: list[Entry]) -> None:
        """Replace every entry (a rebuild)."""
        self.truncate_entries(0)
        for e in entries:
            self.append(*e)

    def close(self) -> None:
        self.mm.close()
