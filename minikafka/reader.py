"""Reading a partition: the consumer's cursor and the lookups it needs.

Everything here is read-only: it maps segments and index files read-only,
never takes the writer's flock and never modifies a file, so a read never
waits for (or locks out) a writer in any process. Readers see only
published batches (the length word is written last). An index file that is
missing or disagrees with the log is replaced, for readers, by an index
built in memory from the log; the partition's writer rebuilds the file.
"""

from __future__ import annotations

import bisect
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .batch import (
    BatchWalker,
    Status,
    decode_records,
    read_batch,
    record_timestamps,
    skip_records,
    valid_batch_after,
)
from .errors import ClosedError, CorruptLogError
from .files import NEVER
from .format import BATCH_HEADER_SIZE, SEGMENT_HEADER_SIZE, TRAILER_SIZE, U32, segment_name
from .index import MemoryIndex, OffsetIndex, build_entries, points_at_batch, time_holds
from .records import Record
from .segment import Segment, UnfinishedSegmentError

if TYPE_CHECKING:
    from .index import Entry, _Lookups
    from .partition import Partition

BEHIND_CHECK_SECONDS = 0.1
#: What a search returns for an index entry that disagrees with the log.
_UNTRUSTED: Entry = (-1, -1, -1)


def _lookup(part: Partition, seg: Segment, search: Callable[[_Lookups], Entry | None]) -> tuple[int, int]:
    """(position, base offset) of the batch ``search`` picks from the index
    of ``seg``, checked against the log; the segment start if none fits.

    A sealed segment whose index file is missing or wrong is searched in an
    in-memory index (built once per process) and reported to the writer,
    which rebuilds the file. The active segment's index is rebuilt by the
    writer's recovery; until then readers scan from the segment start."""
    index = OffsetIndex.open(part.dir, seg.base)
    if index is not None:
        try:
            entry = search(index)
        finally:
            index.close()
        if entry is None:
            return SEGMENT_HEADER_SIZE, seg.base
        if entry is not _UNTRUSTED and points_at_batch(seg.mm, seg.capacity, seg.base, entry):
            return entry[1], seg.base + entry[0]
    if not seg.sealed:
        return SEGMENT_HEADER_SIZE, seg.base
    memory = part.memory_indexes.get(seg.base)
    if memory is None:
        memory = MemoryIndex(build_entries(seg.mm, seg.capacity, seg.base,
                                           part.config.index_interval_bytes))
        part.memory_indexes[seg.base] = memory
        part.damaged_indexes.add(seg.base)
    entry = search(memory)
    if entry is None or entry is _UNTRUSTED:
        return SEGMENT_HEADER_SIZE, seg.base
    return entry[1], seg.base + entry[0]


def locate(part: Partition, seg: Segment, offset: int) -> tuple[int, int]:
    """(position, base offset) of a batch at or before ``offset`` in ``seg``."""
    return _lookup(part, seg, lambda index: index.floor_offset(offset - seg.base))


def end_of_log(part: Partition) -> int:
    """The offset after the last published record, read without the
    writer lock (a torn tail counts as not written; the writer cuts it)."""
    bases = part.bases()
    if not bases:
        return 0
    base = bases[-1]
    while True:
        try:
            seg = Segment.open(part.dir, base)
        except (FileNotFoundError, UnfinishedSegmentError):
            return base
        try:
            pos, boff = locate(part, seg, NEVER)
            # Verified: bytes a crash left past the last batch may not have
            # been cut by a writer yet. A file cut short is read as the
            # writer will see it, regrown with zeros.
            mm: Any = bytes(seg.mm) + bytes(TRAILER_SIZE) if seg.short else seg.mm
            walker = BatchWalker(mm, len(mm), pos, boff)
            for _ in walker:
                pass
        finally:
            seg.close()
        if walker.status is not Status.END:
            return walker.offset
        base = walker.offset


def offset_for_time(part: Partition, timestamp: int) -> int | None:
    """The earliest offset whose timestamp is >= ``timestamp``."""
    # The cached listing first (as seek does): segments deleted since fail
    # to open and are skipped; segments made since come after every
    # cached one, so only a search that found nothing must list again.
    for cached in (True, False):
        for base in part.bases(cached=cached):
            seal = part.seal(base)
            if seal is not None and seal[0] < timestamp:
                continue  # every record of this closed segment is older
            try:
                seg = Segment.open(part.dir, base)
            except (FileNotFoundError, UnfinishedSegmentError):
                continue  # deleted by retention meanwhile, or holds nothing
            try:
                found = _time_in_segment(part, seg, timestamp)
            finally:
                seg.close()
            if found is not None:
                return found
    return None


def _time_in_segment(part: Partition, seg: Segment, timestamp: int) -> int | None:
    def search(index: _Lookups) -> Entry | None:
        i = index.floor_time_at(timestamp)
        if i < 0:
            return None
        entry = index.entry(i)
        if not time_holds(seg.mm, seg.capacity, seg.base, index.entry(i - 1) if i else None, entry):
            return _UNTRUSTED
        return entry

    pos, offset = _lookup(part, seg, search)
    walker = BatchWalker(seg.mm, seg.capacity, pos, offset)
    for info in walker:
        if info.max_timestamp >= timestamp:
            for i, ts in enumerate(record_timestamps(info.data, BATCH_HEADER_SIZE, info.count)):
                if ts >= timestamp:
                    return walker.offset + i
    return None


def _indexed_past(seg: Segment, index: OffsetIndex, pos: int, offset: int) -> bool:
    """Does ``index`` point at a valid batch of the active segment ``seg``
    past the zero or invalid length word at ``pos`` (the batch of
    ``offset``)? Then that word is damage — a page lost in a power cut, a
    stray write — not the end of the log or a torn tail: a writer publishes
    its batches in order and indexes one only after publishing it, so the
    batch at ``pos`` was published before the one indexed. The word is read
    again last, since a writer may have published there meanwhile."""
    for i in range(index.count - 1, -1, -1):
        entry = index.entry(i)
        if entry[1] <= pos:
            return False
        if points_at_batch(seg.mm, seg.capacity, seg.base, entry):
            return read_batch(seg.mm, pos, seg.capacity, offset).status in (Status.EMPTY, Status.INVALID)
    return False


def _sealed_gap(seg: Segment, pos: int) -> bool:
    """A zero length word at ``pos`` of a sealed segment: damage, since a
    segment is sealed only after every batch in it and its end marker were
    written. The word is read again after the seal flag, because a reader
    can see the zero just before a writer wrote the end marker there and
    sealed the header."""
    return seg.sealed and U32.unpack_from(seg.mm, pos)[0] == 0


class PartitionReader:
    """A consumer's cursor over one partition. Takes no lock: it only reads
    published batches, and maps segments itself so it never depends on a
    mapping another thread may close."""

    __slots__ = ("_behind_check_at", "_damage_check_at", "_data", "_data_p", "_index", "_remaining",
                 "batch_offset", "behind", "offset", "part", "pos", "seg")

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
        self._damage_check_at = 0.0
        self._index: OffsetIndex | None = None  # the active segment's, once a read stopped in it

    def _hidden_damage(self, seg: Segment) -> bool:
        """Is the word the read stopped at in the active segment damage that
        only its index reveals (``_indexed_past``)? Looks at most every
        BEHIND_CHECK_SECONDS, with the index mapped once per segment, since
        a reader at the end of the log stops there on every wake-up. Damage
        with no index entry after it cannot be told from a torn tail; the
        writer's recovery cuts it (docs/format.md)."""
        now = time.monotonic()
        if seg.sealed or now < self._damage_check_at:
            return False
        self._damage_check_at = now + BEHIND_CHECK_SECONDS
        index = self._index
        if index is not None and index.base == seg.base:
            index.refresh()
        else:
            if index is not None:
                index.close()
            index = self._index = OffsetIndex.open(self.part.dir, seg.base)
            if index is None:
                return False
        return _indexed_past(seg, index, self.pos, self.batch_offset)

    def _deleted_ahead(self) -> bool:
        """The segment at ``batch_offset`` is missing while a later one
        exists: retention deleted it (True: the position is behind), or it
        is a hole in the middle of the log (CorruptLogError). A writer
        between an end marker and the next file leaves no later segment.
        Lists the directory at most every BEHIND_CHECK_SECONDS: an idle
        reader of an empty partition gets here on every wake-up."""
        now = time.monotonic()
        if now < self._behind_check_at:
            return False
        self._behind_check_at = now + BEHIND_CHECK_SECONDS
        for look in range(2):
            try:
                bases = self.part.bases()
            except ClosedError:
                return False
            if not bases or bases[-1] <= self.batch_offset:
                return False  # no later segment (or it appeared since the open failed)
            if bases[0] > self.batch_offset:
                return True
            if self.batch_offset in bases:
                return False  # created since the open failed: read it next time
            if look == 0:
                # Retention deletes oldest first, so a listing taken while it
                # ran can show a hole that is gone a moment later: look again.
                time.sleep(0.001)
        if self.part.replaced():
            return False  # a new topic of the same name: the consumer resets (topic id)
        missing = os.path.join(self.part.dir, segment_name(self.batch_offset))
        raise CorruptLogError(
            f"{self.part.topic}/{self.part.number}: segment {missing} (offset {self.batch_offset}) "
            f"is missing between segments that exist"
        )

    def _open_next(self, have_records: bool) -> Segment | None:
        """Map the segment at ``batch_offset``; None if it is not there
        (yet). Damage raises CorruptLogError — but only when no records are
        in hand (``have_records``): those are returned first, and the
        position stays before the damage, so a repaired file resumes there."""
        try:
            return Segment.open(self.part.dir, self.batch_offset)
        except FileNotFoundError:
            self.behind = not have_records and self._deleted_ahead()
            return None
        except UnfinishedSegmentError as e:
            # Normal only as the newest segment (a roll cut short by a power
            # loss, which the next writer redoes); with later ones, damage.
            if have_records or not any(b > self.batch_offset for b in self.part.bases()):
                return None
            raise CorruptLogError(f"{e}; later segments exist") from e
        except CorruptLogError:
            if have_records:
                return None
            raise

    def _drop(self) -> None:
        if self.seg is not None:
            self.seg.close()
            self.seg = None
        if self._index is not None:
            self._index.close()
            self._index = None
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
        pos, boff = locate(self.part, seg, offset)
        walker = BatchWalker(seg.mm, seg.capacity, pos, boff)
        for info in walker:
            if walker.offset + info.count > offset:
                skip = offset - walker.offset
                self._data = info.data
                self._data_p = skip_records(info.data, BATCH_HEADER_SIZE, skip)
                self._remaining = info.count - skip
                break
        else:
            pos, boff = walker.pos, walker.offset
            if walker.status is Status.END and offset > boff:
                return None  # the next segment appeared after we listed: retry
            if offset > boff:
                if walker.status is Status.INVALID:
                    # in the active segment, a torn tail unless valid batches follow
                    damaged = seg.sealed or valid_batch_after(seg.mm, seg.capacity, pos)
                else:
                    damaged = walker.status is Status.EMPTY and _sealed_gap(seg, pos)
                if not damaged and not seg.sealed:
                    index = OffsetIndex.open(self.part.dir, seg.base)
                    if index is not None:
                        try:
                            damaged = _indexed_past(seg, index, pos, boff)
                        finally:
                            index.close()
                seg.close()
                if damaged:
                    raise CorruptLogError(
                        f"{self.part.topic}/{self.part.number}: batch at offset {boff} "
                        f"(byte {pos} of {seg.path}) is damaged; offset {offset} is behind it"
                    )
                return False
            # at the end of the log, or at an end marker
        self.seg, self.pos, self.batch_offset, self.offset = seg, walker.pos, walker.offset, offset
        return True

    def read(self, max_records: int, key_deserializer: Callable[[bytes], Any] | None = None,
             value_deserializer: Callable[[bytes], Any] | None = None) -> list[Record]:
        """Up to ``max_records`` records from the position on; [] if none yet.
        The deserializers are applied to non-None keys and values."""
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
                    self.behind = not out and self._deleted_ahead()  # raise only before records
                    break  # no segment yet: nothing written (or deleted: behind)
                seg = self._open_next(bool(out))
                if seg is None:
                    break
                self.seg, self.pos = seg, SEGMENT_HEADER_SIZE
            info = read_batch(seg.mm, self.pos, seg.capacity, self.batch_offset)
            status = info.status
            if status is Status.BATCH:
                self._data, self._data_p, self._remaining = info.data, BATCH_HEADER_SIZE, info.count
            elif status is Status.END:
                nxt = self._open_next(bool(out))
                if nxt is None:
                    break  # the writer is between marker and new file (or deleted: behind)
                seg.close()
                self.seg, self.pos = nxt, SEGMENT_HEADER_SIZE
            else:
                if status is Status.EMPTY:
                    damaged = _sealed_gap(seg, self.pos)  # else nothing published here yet
                else:  # in the active segment, a torn tail (the next writer cuts it) unless...
                    damaged = seg.sealed or valid_batch_after(seg.mm, seg.capacity, self.pos)
                if not damaged and not self._hidden_damage(seg):
                    break
                if out:
                    break  # return the whole records first; raise on the next call
                raise CorruptLogError(
                    f"{part.topic}/{part.number}: batch at offset {self.batch_offset} "
                    f"(byte {self.pos} of {seg.path}) is damaged"
                    + (" (zeroed)" if status is Status.EMPTY else "")
                )
        return out

    def close(self) -> None:
        self._drop()
