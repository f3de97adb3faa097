"""One partition: its segments, the append path, rolling and retention,
and the read cursor consumers use.

Writers in any process serialize on ``writer.lock`` (flock). The log itself
is the only shared state: a writer that takes the lock first *follows* the
published batches from where it last looked to the real end (other
processes may have appended or rolled), then appends. A batch is published
by writing its length word last, so readers — which take no lock — see
either a whole batch or nothing.

Recovery rule: with the lock held, a non-zero length word at the tail that
does not introduce a valid batch (short, bad length, wrong base offset, bad
checksum) can only be the torn write of a writer that died, or garbage left
by a crash; the writer zeroes that word, cutting the tail there. Without
the lock (readers) such bytes just mean "nothing here yet".
"""

from __future__ import annotations

import bisect
import mmap
import os
import threading
import time
from collections.abc import Callable

from .errors import ClosedError, CorruptLogError, RecordTooLargeError, TopicNotFoundError
from .format import (
    BATCH_HEADER,
    BATCH_HEADER_SIZE,
    CHECKSUM,
    CHECKSUM_AT,
    INT64_MIN,
    SEGMENT_HEADER_SIZE,
    TRAILER_SIZE,
    U32,
    batch_checksum,
    decode_records,
    index_name,
    record_timestamps,
    segment_name,
    skip_records,
)
from .index import OffsetIndex
from .locking import FileLock, Waker
from .options import TopicConfig
from .records import Record
from .segment import (
    SPARE_MIN_BYTES,
    Segment,
    Status,
    UnfinishedSegmentError,
    has_spare,
    prepare_spare,
    read_batch,
    read_seal,
    remove_stale_spares,
)

_ZERO_WORD = bytes(TRAILER_SIZE)
_NO_INDEX = -(1 << 62)
_PAGE = mmap.PAGESIZE
BEHIND_CHECK_SECONDS = 0.1


def _is_segment_name(name: str) -> bool:
    return len(name) == 24 and name.endswith(".log") and name[:20].isdigit()


class _Tail:
    """Where the next batch goes: the writer's view of the active segment."""

    __slots__ = ("index", "last_indexed_pos", "max_ts", "next_offset", "pos", "seg", "spare_at")

    def __init__(self, seg: Segment, index: OffsetIndex) -> None:
        self.seg = seg
        self.index = index
        self.pos = SEGMENT_HEADER_SIZE
        self.next_offset = seg.base
        self.max_ts = INT64_MIN
        self.last_indexed_pos = _NO_INDEX
        # Past this position, make sure a spare segment is being prepared.
        self.spare_at = seg.capacity // 2 if seg.capacity >= SPARE_MIN_BYTES else 1 << 62

    def close(self) -> None:
        self.seg.close()
        self.index.close()


class Partition:
    """A partition directory as seen by this process (shared by its threads)."""

    def __init__(
        self, topic: str, number: int, directory: str, config: TopicConfig, waker: Waker,
        fsync: bool, on_deleted: Callable[[], None] | None = None,
    ) -> None:
        self.topic = topic
        self.number = number
        self.dir = directory
        self.config = config
        self.waker = waker
        self.fsync = fsync
        self._lock = threading.Lock()
        self._flock = FileLock(os.path.join(directory, "writer.lock"))
        self._tail: _Tail | None = None
        self._seals: dict[int, tuple[int, int]] = {}
        self._closed = False
        self._deleted = False  # closed because the topic was deleted
        self._on_deleted = on_deleted
        self._bases: list[int] | None = None  # the last listing of segments
        self._spare: threading.Thread | None = None  # prepare_spare running in the background
        self._spare_stop = threading.Event()

    def __repr__(self) -> str:
        return f"<Partition {self.topic}/{self.number}>"

    # -- segments on disk ---------------------------------------------------

    def bases(self, cached: bool = False) -> list[int]:
        """Base offsets of the segments on disk, oldest first.

        ``cached``: the last listing, which may miss segments made or deleted
        since; only for callers that detect that and ask again (seek)."""
        if cached and self._bases is not None:
            return self._bases
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            raise ClosedError(f"partition {self.topic}/{self.number}: directory is gone "
                              f"(topic deleted?)") from None
        bases = self._bases = sorted(int(n[:20]) for n in names if _is_segment_name(n))
        return bases

    def _seal(self, base: int) -> tuple[int, int] | None:
        """(max timestamp, end offset) of a closed segment, cached."""
        info = self._seals.get(base)
        if info is None:
            info = read_seal(self.dir, base)
            if info is not None:
                self._seals[base] = info
        return info

    def _create_segment(self, base: int) -> None:
        cfg = self.config
        OffsetIndex.create(self.dir, base, OffsetIndex.size_for(cfg.segment_bytes, cfg.index_interval_bytes))
        Segment.create(self.dir, base, cfg.segment_bytes)
        if self.fsync:
            fd = os.open(self.dir, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _open_writable(self, base: int) -> Segment:
        """Open a segment for writing (flock held); a segment left with a
        torn header and nothing in it is created again."""
        try:
            return Segment.open(self.dir, base, writable=True)
        except UnfinishedSegmentError:
            try:
                os.unlink(os.path.join(self.dir, index_name(base)))
            except FileNotFoundError:
                pass
            self._create_segment(base)  # renamed over the torn file
            return Segment.open(self.dir, base, writable=True)

    def _open_index(self, base: int, capacity: int) -> tuple[OffsetIndex, bool]:
        """Open (or recreate) a writable index; True if it was recreated."""
        index = OffsetIndex.open(self.dir, base, writable=True)
        if index is not None:
            return index, False
        OffsetIndex.create(self.dir, base, OffsetIndex.size_for(capacity, self.config.index_interval_bytes))
        index = OffsetIndex.open(self.dir, base, writable=True)
        assert index is not None
        return index, True

    # -- the write side (callers hold self._lock and the flock) --------------

    def _open_tail(self) -> _Tail:
        """Find the end of the log and recover it. Runs once per process."""
        for name in os.listdir(self.dir):
            if name.endswith(".tmp"):  # a creation that died before its rename
                os.unlink(os.path.join(self.dir, name))
        remove_stale_spares(self.dir)
        bases = self.bases()
        if not bases:
            self._create_segment(0)
            bases = [0]
        base = bases[-1]
        seg = self._open_writable(base)
        index, _ = self._open_index(base, seg.capacity)
        tail = _Tail(seg, index)
        # Resume from the last index entry that points at a valid batch;
        # entries after it are damaged and go.
        for i in range(index.count - 1, -1, -1):
            rel, pos, max_before = index.entry(i)
            if (
                SEGMENT_HEADER_SIZE <= pos < seg.capacity
                and read_batch(seg.mm, pos, seg.capacity, base + rel).status is Status.BATCH
            ):
                index.truncate_entries(i + 1)
                tail.pos, tail.next_offset, tail.last_indexed_pos = pos, base + rel, pos
                tail.max_ts = max_before
                break
        else:
            index.truncate_entries(0)
        self._follow(tail, fix=True, reindex=True)
        self._tail = tail
        return tail

    def _follow(self, t: _Tail, fix: bool, reindex: bool = False) -> None:
        """Advance ``t`` over batches appended since it last looked.

        ``fix`` (flock held): cut a torn tail, finish a roll a dead writer
        left half done. ``reindex``: add the index entries those batches
        lack (recovery); otherwise re-read the index other writers extended.
        """
        interval = self.config.index_interval_bytes
        moved = False
        while True:
            info = read_batch(t.seg.mm, t.pos, t.seg.capacity, t.next_offset)
            status = info.status
            if status is Status.BATCH:
                if reindex and t.pos - t.last_indexed_pos >= interval:
                    t.index.append(t.next_offset - t.seg.base, t.pos, t.max_ts)
                    t.last_indexed_pos = t.pos
                t.pos += info.length
                t.next_offset += info.count
                if info.max_timestamp > t.max_ts:
                    t.max_ts = info.max_timestamp
                moved = True
            elif status is Status.END:
                if not self._next_segment(t, fix):
                    break
                moved = True
            else:
                if status is Status.INVALID and fix:
                    U32.pack_into(t.seg.mm, t.pos, 0)
                break
        if moved and not reindex:
            t.index.refresh()
            if t.index.count:
                t.last_indexed_pos = t.index.entry(t.index.count - 1)[1]

    def _next_segment(self, t: _Tail, fix: bool) -> bool:
        """Move ``t`` into the segment after an end marker. A writer that
        died after writing the marker may have left the seal or the next
        file undone; with the lock held, finish its work."""
        base = t.next_offset
        if fix and not t.seg.sealed:
            t.seg.seal(t.pos, t.max_ts, base)
        try:
            seg = self._open_writable(base) if fix else Segment.open(self.dir, base, writable=True)
        except (FileNotFoundError, UnfinishedSegmentError):
            if not fix:
                return False
            self._create_segment(base)
            seg = Segment.open(self.dir, base, writable=True)
        index, _ = self._open_index(base, seg.capacity)
        t.close()
        t.seg, t.index = seg, index
        t.pos, t.max_ts, t.last_indexed_pos = SEGMENT_HEADER_SIZE, INT64_MIN, _NO_INDEX
        t.spare_at = seg.capacity // 2 if seg.capacity >= SPARE_MIN_BYTES else 1 << 62
        return True

    def _check_not_deleted(self) -> None:
        """With the writer lock held: fail if the topic was deleted. A
        deleter holds every writer lock while it removes the topic, so a
        writer that gets the lock afterwards finds its lock file unlinked."""
        if os.fstat(self._flock.fileno()).st_nlink == 0:
            self._closed = self._deleted = True
            if self._on_deleted is not None:
                self._on_deleted()
            raise TopicNotFoundError(
                f"topic {self.topic!r} was deleted; partition {self.number} takes no more records"
            )

    def _start_spare(self) -> None:
        """Have a zero-filled spare ready before the next roll."""
        if not has_spare(self.dir):
            self._spare = threading.Thread(
                target=prepare_spare, args=(self.dir, self.config.segment_bytes, self._spare_stop),
                name="minikafka-spare", daemon=True,
            )
            self._spare.start()

    def _roll(self, t: _Tail) -> None:
        """Seal the active segment and start the next one. The end marker
        goes first: a crash before the new file exists is repaired by the
        next writer (see _next_segment)."""
        old = t.seg
        old.seal(t.pos, t.max_ts, t.next_offset)
        if self.fsync:
            old.mm.flush()
        self._seals[old.base] = (t.max_ts, t.next_offset)
        self._next_segment(t, fix=True)
        self._apply_retention()

    def append(self, buf: bytearray, count: int, first_ts: int, max_ts: int) -> int:
        """Write one batch; ``buf`` holds a placeholder header and ``count``
        encoded records. Fills in the header and returns the base offset."""
        n = len(buf)
        cfg = self.config
        if n > cfg.max_batch_bytes:
            raise RecordTooLargeError(
                f"{self.topic}/{self.number}: batch of {n} bytes does not fit in a "
                f"segment of {cfg.segment_bytes} bytes"
            )
        with self._lock:
            if self._closed:
                # Another writer of this process (or delete_topic here) may
                # have found the topic deleted and closed us first.
                if self._deleted or not os.path.exists(self._flock.path):
                    raise TopicNotFoundError(
                        f"topic {self.topic!r} was deleted; partition {self.number} takes no more records"
                    )
                raise ClosedError(f"partition {self.topic}/{self.number} is closed")
            self._flock.acquire()
            try:
                self._check_not_deleted()
                t = self._tail or self._open_tail()
                self._follow(t, fix=True)
                pos = t.pos
                if pos + n + TRAILER_SIZE > t.seg.capacity or (
                    cfg.segment_ms is not None
                    and pos > SEGMENT_HEADER_SIZE
                    and time.time() * 1000 - t.seg.created_ms >= cfg.segment_ms
                ):
                    self._roll(t)
                    pos = t.pos
                base = t.next_offset
                BATCH_HEADER.pack_into(buf, 0, n, 0, 1, 0, 0, base, count, 0, first_ts, max_ts)
                CHECKSUM.pack_into(buf, CHECKSUM_AT, batch_checksum(buf, n))
                mm = t.seg.mm
                end = pos + n
                # Everything but the length word, and a zero next word (stale
                # bytes of a writer that died there must never read as the
                # next batch) in one pwrite; then the length publishes it.
                with memoryview(buf) as mv:
                    written = os.pwritev(t.seg.fd, (mv[4:], _ZERO_WORD), pos + 4)
                if written != n:  # n - 4 body bytes + the 4-byte zero word
                    raise OSError(f"{t.seg.path}: short write at byte {pos + 4} ({written} of {n} bytes)")
                U32.pack_into(mm, pos, n)
                if pos - t.last_indexed_pos >= cfg.index_interval_bytes:
                    t.index.append(base - t.seg.base, pos, t.max_ts)
                    t.last_indexed_pos = pos
                if max_ts > t.max_ts:
                    t.max_ts = max_ts
                t.pos = end
                t.next_offset = base + count
                if end > t.spare_at:
                    t.spare_at = 1 << 62
                    self._start_spare()
                if self.fsync:
                    start = pos - pos % _PAGE
                    mm.flush(start, end + TRAILER_SIZE - start)
            finally:
                self._flock.release()
        self.waker.notify()
        return base

    # -- offsets ------------------------------------------------------------

    def end_offset(self) -> int:
        """The offset the next record will get."""
        with self._lock:
            if self._closed:
                raise ClosedError(f"partition {self.topic}/{self.number} is closed")
            t = self._tail
            if t is None:
                if not self.bases():
                    return 0  # nothing written; do not allocate a segment to say so
                with self._flock:
                    t = self._open_tail()
            else:
                self._follow(t, fix=False)
            return t.next_offset

    def beginning_offset(self) -> int:
        bases = self.bases()
        return bases[0] if bases else 0

    def apply_retention(self) -> None:
        """Delete closed segments past ``retention_ms`` / ``retention_bytes``."""
        cfg = self.config
        if cfg.retention_ms is None and cfg.retention_bytes is None:
            return
        with self._lock, self._flock:
            self._apply_retention()

    def _apply_retention(self) -> None:
        cfg = self.config
        if cfg.retention_ms is None and cfg.retention_bytes is None:
            return
        bases = self.bases()
        sizes = {}
        for b in bases:
            size = 0
            for name in (segment_name(b), index_name(b)):
                try:
                    size += os.stat(os.path.join(self.dir, name)).st_size
                except FileNotFoundError:
                    pass
            sizes[b] = size
        total = sum(sizes.values())
        now_ms = int(time.time() * 1000)
        for b in bases[:-1]:  # never the active segment
            expired = False
            if cfg.retention_ms is not None:
                seal = self._seal(b)
                expired = seal is not None and seal[0] < now_ms - cfg.retention_ms
            if not expired and cfg.retention_bytes is not None:
                expired = total - sizes[b] >= cfg.retention_bytes
            if not expired:
                break
            # Unlink only: processes that have the segment mapped keep a
            # valid mapping (no truncation, so no SIGBUS).
            for name in (segment_name(b), index_name(b)):
                try:
                    os.unlink(os.path.join(self.dir, name))
                except FileNotFoundError:
                    pass
            self._seals.pop(b, None)
            total -= sizes[b]

    # -- lookups ------------------------------------------------------------

    def locate(self, seg: Segment, offset: int) -> tuple[int, int]:
        """(position, base offset) of a batch at or before ``offset`` in
        ``seg``, from the sparse index; the segment start if the index is
        missing or wrong (then it is rebuilt, if the segment is sealed)."""
        index = OffsetIndex.open(self.dir, seg.base)
        if index is not None:
            try:
                entry = index.floor_offset(offset - seg.base)
            finally:
                index.close()
            if entry is not None:
                rel, pos, _ = entry
                if (
                    SEGMENT_HEADER_SIZE <= pos < seg.capacity
                    and read_batch(seg.mm, pos, seg.capacity, seg.base + rel).status is Status.BATCH
                ):
                    return pos, seg.base + rel
                self._rebuild_index(seg)
        elif seg.sealed:
            self._rebuild_index(seg)
        return SEGMENT_HEADER_SIZE, seg.base

    def _rebuild_index(self, seg: Segment) -> None:
        """Rewrite the index of a sealed segment from its log. The active
        segment's index is rebuilt by the next writer's recovery instead."""
        if not seg.sealed:
            return
        # The thread lock too: flock is per open file description, so without
        # it this release would drop the lock a writer thread holds mid-append.
        with self._lock, self._flock:
            OffsetIndex.create(
                self.dir, seg.base, OffsetIndex.size_for(seg.capacity, self.config.index_interval_bytes)
            )
            index = OffsetIndex.open(self.dir, seg.base, writable=True)
            if index is None:
                return
            try:
                pos, offset, max_ts, last = SEGMENT_HEADER_SIZE, seg.base, INT64_MIN, _NO_INDEX
                while True:
                    info = read_batch(seg.mm, pos, seg.capacity, offset)
                    if info.status is not Status.BATCH:
                        break
                    if pos - last >= self.config.index_interval_bytes:
                        index.append(offset - seg.base, pos, max_ts)
                        last = pos
                    max_ts = max(max_ts, info.max_timestamp)
                    pos += info.length
                    offset += info.count
            finally:
                index.close()

    def offset_for_time(self, timestamp: int) -> int | None:
        """The earliest offset whose timestamp is >= ``timestamp``."""
        # The cached listing first (as seek does): segments deleted since fail
        # to open and are skipped; segments made since come after every
        # cached one, so only a search that found nothing must list again.
        for cached in (True, False):
            for base in self.bases(cached=cached):
                seal = self._seal(base)
                if seal is not None and seal[0] < timestamp:
                    continue  # every record of this closed segment is older
                try:
                    seg = Segment.open(self.dir, base)
                except (FileNotFoundError, UnfinishedSegmentError):
                    continue  # deleted by retention meanwhile, or holds nothing
                try:
                    found = self._time_in_segment(seg, timestamp)
                finally:
                    seg.close()
                if found is not None:
                    return found
        return None

    def _time_in_segment(self, seg: Segment, timestamp: int) -> int | None:
        pos, offset = SEGMENT_HEADER_SIZE, seg.base
        index = OffsetIndex.open(self.dir, seg.base)
        if index is not None:
            try:
                entry = index.floor_time(timestamp)
            finally:
                index.close()
            if entry is not None:
                rel, epos, _ = entry
                if (
                    SEGMENT_HEADER_SIZE <= epos < seg.capacity
                    and read_batch(seg.mm, epos, seg.capacity, seg.base + rel).status is Status.BATCH
                ):
                    pos, offset = epos, seg.base + rel
        while True:
            info = read_batch(seg.mm, pos, seg.capacity, offset)
            if info.status is not Status.BATCH:
                return None
            if info.max_timestamp >= timestamp:
                stamps = record_timestamps(info.data, BATCH_HEADER_SIZE, info.count)
                for i, ts in enumerate(stamps):
                    if ts >= timestamp:
                        return offset + i
            pos += info.length
            offset += info.count

    def reader(self) -> PartitionReader:
        return PartitionReader(self)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._tail is not None:
                self._tail.close()
                self._tail = None
            self._flock.close()
            spare, self._spare = self._spare, None
        if spare is not None:
            # Once close() returns nothing of ours writes in the directory,
            # so `with TemporaryDirectory() as d, Broker(d)` cleans up.
            self._spare_stop.set()
            spare.join()


class PartitionReader:
    """A consumer's cursor over one partition. Takes no lock: it only reads
    published batches, and maps segments itself so it never depends on a
    mapping another thread may close."""

    __slots__ = ("_behind_check_at", "_data", "_data_p", "_remaining", "batch_offset", "behind", "offset",
                 "part", "pos", "seg")

    def __init__(self, partition: Partition) -> None:
        self.part = partition
        self.seg: Segment | None = None
        self.pos = SEGMENT_HEADER_SIZE
        self.batch_offset = 0  # offset of the batch at ``pos``
        self.offset = 0  # next offset to return
        self._data = b""  # the current batch, while records remain in it
        self._data_p = 0
        self._remaining = 0
        # The next segment was deleted by retention: the position is outside
        # the retained range and only a new seek can move on.
        self.behind = False
        self._behind_check_at = 0.0

    def _deleted_ahead(self) -> bool:
        """The segment at ``batch_offset`` is missing while a later one
        exists: retention deleted it. (A writer between an end marker and
        the next file leaves no later segment.) Lists the directory at most
        every BEHIND_CHECK_SECONDS: an idle reader of an empty partition
        gets here on every wake-up."""
        now = time.monotonic()
        if now < self._behind_check_at:
            return False
        self._behind_check_at = now + BEHIND_CHECK_SECONDS
        try:
            bases = self.part.bases()
        except ClosedError:
            return False
        return bool(bases) and bases[0] > self.batch_offset

    def _drop(self) -> None:
        if self.seg is not None:
            self.seg.close()
            self.seg = None
        self._data, self._remaining = b"", 0

    def seek(self, offset: int) -> bool:
        """Position at ``offset``; False if it is outside the retained
        range (below the first segment, or past the end)."""
        self.behind = False
        self._behind_check_at = 0.0
        for attempt in range(4):  # a segment may vanish (retention) between list and open
            self._drop()
            # A cached listing is safe to try first: segments only appear at
            # the end (then _seek_in meets an end marker and returns None) or
            # vanish (the open fails); either way the next round lists anew.
            # Offsets below the cached first base cannot have come back.
            bases = self.part.bases(cached=attempt == 0)
            if not bases:
                if attempt == 0:
                    continue  # an empty cached listing says nothing about now
                if offset != 0:
                    return False
                self.pos, self.batch_offset, self.offset = SEGMENT_HEADER_SIZE, 0, 0
                return True
            i = bisect.bisect_right(bases, offset) - 1
            if i < 0:
                return False
            try:
                seg = Segment.open(self.part.dir, bases[i])
            except FileNotFoundError:
                continue
            except UnfinishedSegmentError:
                if offset != bases[i]:
                    return False
                # Nothing published there yet: wait at its start.
                self.pos, self.batch_offset, self.offset = SEGMENT_HEADER_SIZE, offset, offset
                return True
            result = self._seek_in(seg, offset)
            if result is not None:
                return result
            seg.close()
        return False

    def _seek_in(self, seg: Segment, offset: int) -> bool | None:
        pos, boff = self.part.locate(seg, offset)
        while True:
            info = read_batch(seg.mm, pos, seg.capacity, boff)
            if info.status is Status.BATCH:
                if boff + info.count > offset:
                    skip = offset - boff
                    self._data = info.data
                    self._data_p = skip_records(info.data, BATCH_HEADER_SIZE, skip)
                    self._remaining = info.count - skip
                    break
                pos += info.length
                boff += info.count
            elif info.status is Status.END and offset > boff:
                return None  # the next segment appeared after we listed: retry
            else:
                if offset > boff:
                    damaged = info.status is Status.INVALID and seg.sealed
                    seg.close()
                    if damaged:
                        raise CorruptLogError(
                            f"{self.part.topic}/{self.part.number}: batch at offset {boff} "
                            f"(byte {pos} of {seg.path}) is damaged; offset {offset} is behind it"
                        )
                    return False
                break  # at the end of the log, or at an end marker
        self.seg, self.pos, self.batch_offset, self.offset = seg, pos, boff, offset
        return True

    def read(self, max_records: int, key_deserializer=None, value_deserializer=None) -> list[Record]:
        """Up to ``max_records`` records from the position on; [] if none yet."""
        out: list[Record] = []
        part = self.part
        while max_records > 0:
            if self._remaining:
                take = min(self._remaining, max_records)
                records, self._data_p = decode_records(
                    self._data, self._data_p, take, part.topic, part.number, self.offset,
                    key_deserializer, value_deserializer,
                )
                out += records
                self.offset += take
                self._remaining -= take
                max_records -= take
                if not self._remaining:
                    self.pos += len(self._data)
                    self.batch_offset = self.offset
                    self._data = b""
                continue
            seg = self.seg
            if seg is None:
                path = os.path.join(part.dir, segment_name(self.batch_offset))
                if not os.access(path, os.F_OK):  # no exception: this runs on every idle wake
                    self.behind = self._deleted_ahead()
                    break  # no segment yet: nothing written (or deleted: behind)
                try:
                    seg = self.seg = Segment.open(part.dir, self.batch_offset)
                except (FileNotFoundError, UnfinishedSegmentError):
                    break
                self.pos = SEGMENT_HEADER_SIZE
            info = read_batch(seg.mm, self.pos, seg.capacity, self.batch_offset)
            status = info.status
            if status is Status.BATCH:
                self._data, self._data_p, self._remaining = info.data, BATCH_HEADER_SIZE, info.count
            elif status is Status.END:
                try:
                    nxt = Segment.open(part.dir, self.batch_offset)
                except (FileNotFoundError, UnfinishedSegmentError):
                    self.behind = self._deleted_ahead()
                    break  # the writer is between marker and new file (or deleted: behind)
                seg.close()
                self.seg, self.pos = nxt, SEGMENT_HEADER_SIZE
            elif status is Status.EMPTY:
                break
            else:
                if seg.sealed:
                    if out:
                        break  # return the whole records first; raise on the next call
                    raise CorruptLogError(
                        f"{part.topic}/{part.number}: batch at offset {self.batch_offset} "
                        f"(byte {self.pos} of {seg.path}) is damaged"
                    )
                break  # a torn tail in the active segment: the next writer cuts it
        return out

    def close(self) -> None:
        self._drop()
