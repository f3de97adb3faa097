"""One segment file: creation, mapping and batch-by-batch validation.

A segment is created at its full size with real blocks (``posix_fallocate``)
under a temporary name and renamed into place, so every process that sees
``<base>.log`` sees a whole, zero-filled file. It is never truncated or
shrunk: other processes may have it mapped, and touching a mapping past the
end of its file kills the process with SIGBUS. Retention only unlinks whole
segments, which leaves existing mappings valid.
"""

from __future__ import annotations

import mmap
import os
import threading
import time
import uuid

from .errors import CorruptLogError
from .files import allocate, create_preallocated
from .format import (
    BATCH_HEADER_SIZE,
    END_OF_SEGMENT,
    SEALED,
    SEG_FLAGS,
    SEG_FLAGS_AT,
    SEG_SEAL,
    SEG_SEAL_AT,
    SEGMENT_HEADER,
    SEGMENT_HEADER_SIZE,
    SEGMENT_MAGIC,
    SEGMENT_VERSION,
    U32,
    segment_name,
)

# Spare segments. The first write to each page of a freshly fallocated file
# costs a page fault plus the filesystem's conversion of an unwritten extent
# (measured ~20x the cost of the copy itself; docs/performance.md). A spare is
# a segment-sized file already filled with zeros by a background thread —
# with pwrite, which releases the GIL — so a roll only writes a header and
# renames it, and appends then land on pages that are already in the cache.
SPARE_MIN_BYTES = 1 << 20
_ZERO_CHUNK = bytes(1 << 20)


def prepare_spare(directory: str, size: int, stop: threading.Event | None = None) -> None:
    """Write ``spare-<id>.seg``: ``size`` zero bytes on real blocks. Runs in
    a background thread; a spare that is half done is ``.prep``. Setting
    ``stop`` abandons it (the partition is closing: nothing may be left
    writing into a directory its owner may delete next)."""
    name = os.path.join(directory, f"spare-{uuid.uuid4().hex}")
    prep = name + ".prep"
    try:
        fd = os.open(prep, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            allocate(fd, size)
            for off in range(0, size, len(_ZERO_CHUNK)):
                if stop is not None and stop.is_set():
                    raise OSError("spare abandoned: partition closed")
                n = min(len(_ZERO_CHUNK), size - off)
                os.pwrite(fd, _ZERO_CHUNK if n == len(_ZERO_CHUNK) else _ZERO_CHUNK[:n], off)
        finally:
            os.close(fd)
        os.rename(prep, name + ".seg")
    except OSError:  # full disk, topic deleted meanwhile, closed: a spare is optional
        try:
            os.unlink(prep)
        except OSError:
            pass


def has_spare(directory: str) -> bool:
    return any(n.startswith("spare-") for n in os.listdir(directory))


def _take_spare(directory: str, size: int) -> str | None:
    for name in os.listdir(directory):
        if name.startswith("spare-") and name.endswith(".seg"):
            path = os.path.join(directory, name)
            try:
                if os.stat(path).st_size == size:
                    return path
                os.unlink(path)  # from an older segment size
            except FileNotFoundError:
                pass
    return None


def remove_stale_spares(directory: str, older_than: float = 60.0) -> None:
    """Delete half-written spares of processes that died while writing."""
    now = time.time()
    for name in os.listdir(directory):
        if name.startswith("spare-") and name.endswith(".prep"):
            path = os.path.join(directory, name)
            try:
                if now - os.stat(path).st_mtime > older_than:
                    os.unlink(path)
            except FileNotFoundError:
                pass


class UnfinishedSegmentError(CorruptLogError):
    """A segment whose header is damaged and in which nothing was ever
    published (its first length word is zero): a roll cut short by a power
    loss (the name reached the disk, the header did not). It holds no
    records, so readers treat it as not there yet and a writer recreates it."""


def tiny_file_error(path: str, data: bytes, base: int | None = None) -> CorruptLogError:
    """The error for a segment file too short to hold a batch (``data``: all
    of it). Zeros, or a whole header with nothing after it, is a roll cut
    short by a power loss (the name reached the disk, the size or the bytes
    did not): nothing was published, so readers wait and a writer creates
    it again (``UnfinishedSegmentError``). Anything else is damage.
    ``base``: the offset the file's name gives (None: any)."""
    message = f"{path}: segment file is only {len(data)} bytes"
    head, rest = data[:SEGMENT_HEADER_SIZE], data[SEGMENT_HEADER_SIZE:]
    intact = (len(head) == SEGMENT_HEADER_SIZE and head[:4] == SEGMENT_MAGIC
              and base in (None, SEGMENT_HEADER.unpack(head)[3]))
    if not any(rest) and (intact or not any(head)):
        return UnfinishedSegmentError(message + " (nothing published in it)")
    return CorruptLogError(message)


class Segment:
    """A mapped segment file. Each user (a writer, one reader cursor) maps
    its own, so a mapping is closed by exactly the code that opened it."""

    __slots__ = ("base", "capacity", "created_ms", "fd", "mm", "path", "short")

    def __init__(self, path: str, base: int, mm: mmap.mmap) -> None:
        self.path = path
        self.base = base
        self.mm = mm
        self.fd = -1
        magic, version, _, hbase, capacity, created, _, _ = SEGMENT_HEADER.unpack_from(mm, 0)
        if magic != SEGMENT_MAGIC or hbase != base or capacity < len(mm):
            if U32.unpack_from(mm, SEGMENT_HEADER_SIZE)[0] == 0:
                raise UnfinishedSegmentError(
                    f"{path}: not a minikafka segment or header damaged (nothing published in it)"
                )
            raise CorruptLogError(f"{path}: not a minikafka segment or header damaged")
        if version > SEGMENT_VERSION:
            raise CorruptLogError(
                f"{path}: segment format version {version} is newer than this "
                f"minikafka reads ({SEGMENT_VERSION})"
            )
        # A file cut short (copied partially, truncated by hand) is read up to
        # its real end only; a writer regrows it first (see open()).
        self.capacity = len(mm)
        self.short = capacity > len(mm)
        self.created_ms = created

    @classmethod
    def open(cls, directory: str, base: int, writable: bool = False) -> Segment:
        """Map an existing segment; ``FileNotFoundError`` if it is gone."""
        path = os.path.join(directory, segment_name(base))
        fd = os.open(path, os.O_RDWR if writable else os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            if size < SEGMENT_HEADER_SIZE + BATCH_HEADER_SIZE:
                raise tiny_file_error(path, os.pread(fd, size, 0), base)
            if writable:
                capacity = SEGMENT_HEADER.unpack(os.pread(fd, SEGMENT_HEADER_SIZE, 0))[4]
                if size < capacity <= (1 << 32):
                    # Regrow a short file with zeros (never shrink one): the
                    # lost tail then reads as "nothing written" and recovery
                    # cuts at the last whole batch.
                    allocate(fd, capacity)
                    size = capacity
            mm = mmap.mmap(fd, size, access=mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ)
        except BaseException:
            os.close(fd)
            raise
        if not writable:
            os.close(fd)
        try:
            seg = cls(path, base, mm)
        except BaseException:
            mm.close()
            if writable:
                os.close(fd)
            raise
        # A writer keeps the descriptor: batches are written with pwrite
        # (see Partition.append), which on pages not yet in the cache costs
        # less than faulting them in through the mapping.
        seg.fd = fd if writable else -1
        return seg

    @staticmethod
    def create(directory: str, base: int, capacity: int) -> None:
        """Create ``<base>.log`` atomically at full size. Raises ``OSError``
        (ENOSPC) here, at roll time, rather than SIGBUS on a later write.

        A prepared spare (see ``prepare_spare``) is used when one is ready.
        """
        final = os.path.join(directory, segment_name(base))
        header = SEGMENT_HEADER.pack(
            SEGMENT_MAGIC, SEGMENT_VERSION, 0, base, capacity, int(time.time() * 1000), 0, 0
        )
        spare = _take_spare(directory, capacity)
        if spare is not None:
            fd = os.open(spare, os.O_RDWR)
            try:
                os.pwrite(fd, header, 0)
            finally:
                os.close(fd)
            os.rename(spare, final)
            return
        create_preallocated(final, capacity, header)

    @property
    def sealed(self) -> bool:
        return bool(SEG_FLAGS.unpack_from(self.mm, SEG_FLAGS_AT)[0] & SEALED)

    def seal_info(self) -> tuple[int, int] | None:
        """(max timestamp, end offset) if the segment has rolled, else None."""
        if not self.sealed:
            return None
        return SEG_SEAL.unpack_from(self.mm, SEG_SEAL_AT)

    def seal(self, pos: int, max_timestamp: int, end_offset: int) -> None:
        """Mark the segment full: end marker at ``pos`` first (readers follow
        it), then the header summary used by retention and tools."""
        U32.pack_into(self.mm, pos, END_OF_SEGMENT)
        SEG_SEAL.pack_into(self.mm, SEG_SEAL_AT, max_timestamp, end_offset)
        flags = SEG_FLAGS.unpack_from(self.mm, SEG_FLAGS_AT)[0]
        SEG_FLAGS.pack_into(self.mm, SEG_FLAGS_AT, flags | SEALED)

    def close(self) -> None:
        self.mm.close()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def read_seal(directory: str, base: int) -> tuple[int, int] | None:
    """(max timestamp, end offset) of a sealed segment read with one
    ``pread`` — no mapping; None if not sealed or gone."""
    path = os.path.join(directory, segment_name(base))
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        header = os.pread(fd, SEGMENT_HEADER_SIZE, 0)
    finally:
        os.close(fd)
    if len(header) < SEGMENT_HEADER_SIZE:
        return None
    magic, _, flags, _, _, _, max_ts, end = SEGMENT_HEADER.unpack(header)
    if magic != SEGMENT_MAGIC or not flags & SEALED:
        return None
    return max_ts, end
