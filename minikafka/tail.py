"""The writer's end of a partition's log: finding it (recovery), following
what other writers appended since, and moving into the next segment.

Everything here runs with the partition's writer lock held (the flock of
``writer.lock`` and this process's thread lock; ``partition.py``).

Recovery rule: with the lock held, a non-zero length word at the tail that
does not introduce a valid batch (short, bad length, wrong base offset, bad
checksum) can only be the torn write of a writer that died, or garbage left
by a crash; the writer zeroes that word, cutting the tail there. Without
the lock (readers) such bytes just mean "nothing here yet".

Retention rule: a next segment that is missing while later ones exist was
deleted by retention after another writer moved on; the tail is stale
(``StaleTail``) and is found again from the listing, never recreated (that
would reuse the deleted segment's offsets).
"""

from __future__ import annotations

import logging
import os

from .batch import BatchWalker, Status, valid_batch_after
from .errors import CorruptLogError
from .files import NEVER, TMP_SUFFIX, fsync_directory, unlink_quietly
from .format import INT64_MIN, SEGMENT_HEADER_SIZE, U32, index_name, is_segment_name
from .index import NOT_INDEXED, OffsetIndex, index_due, points_at_batch, time_holds
from .options import TopicConfig
from .segment import SPARE_MIN_BYTES, Segment, UnfinishedSegmentError, remove_stale_spares

log = logging.getLogger("minikafka")


def segment_bases(directory: str) -> list[int]:
    """Base offsets of the segment files in ``directory``, oldest first."""
    return sorted(int(n[:20]) for n in os.listdir(directory) if is_segment_name(n))


class StaleTail(Exception):
    """The tail is in segments retention has deleted since it last looked
    (another writer appended, rolled and applied retention)."""


class Tail:
    """Where the next batch goes: the writer's view of the active segment,
    and the files it writes (segment, index) in ``directory``."""

    __slots__ = ("config", "dir", "fsync", "index", "last_indexed_pos", "max_ts", "next_offset", "pos",
                 "seg", "spare_at")

    def __init__(self, directory: str, config: TopicConfig, fsync: bool, seg: Segment,
                 index: OffsetIndex) -> None:
        self.dir, self.config, self.fsync = directory, config, fsync
        self.seg = seg
        self.index = index
        self.pos = SEGMENT_HEADER_SIZE
        self.next_offset = seg.base
        self.max_ts = INT64_MIN
        self.last_indexed_pos = NOT_INDEXED
        self.spare_at = _spare_at(seg)

    # -- files ------------------------------------------------------------------

    @staticmethod
    def create_segment(directory: str, config: TopicConfig, fsync: bool, base: int) -> None:
        """A new segment and its empty index (index first: a segment never
        exists without one being creatable)."""
        _create_index(directory, config, base, config.segment_bytes)
        Segment.create(directory, base, config.segment_bytes)
        if fsync:
            fsync_directory(directory)

    @classmethod
    def _open_writable(cls, directory: str, config: TopicConfig, fsync: bool, base: int) -> Segment:
        """Open a segment for writing; a segment left with a torn header and
        nothing in it is created again."""
        try:
            return Segment.open(directory, base, writable=True)
        except UnfinishedSegmentError:
            unlink_quietly(os.path.join(directory, index_name(base)))
            cls.create_segment(directory, config, fsync, base)  # renamed over the torn file
            return Segment.open(directory, base, writable=True)

    # -- finding the end --------------------------------------------------------

    @classmethod
    def open(cls, directory: str, config: TopicConfig, fsync: bool) -> tuple[Tail, list[int]]:
        """Find the end of the log and recover it (once per process); also
        returns the segment listing it started from."""
        for name in os.listdir(directory):
            if name.endswith(TMP_SUFFIX):  # a creation that died before its rename
                os.unlink(os.path.join(directory, name))
        remove_stale_spares(directory)
        bases = segment_bases(directory)
        if not bases:
            cls.create_segment(directory, config, fsync, 0)
            bases = [0]
        base = bases[-1]
        seg = cls._open_writable(directory, config, fsync, base)
        index = _open_index(directory, config, base, seg.capacity)
        tail = cls(directory, config, fsync, seg, index)
        try:
            tail._resume_from_index()
            tail.follow(recover=True)
        except BaseException:
            tail.close()
            raise
        return tail, bases

    def _resume_from_index(self) -> None:
        """Start recovery at the last index entry that points at a valid
        batch and whose timestamp agrees with the log (it seeds the max
        timestamp of the entries written next); entries after it are
        damaged and go. The batches before it must lead to it: a chain that
        breaks earlier is damage with valid batches after it, which neither
        readers (they stop there) nor an append past it may skip."""
        seg, index, base = self.seg, self.index, self.seg.base
        for i in range(index.count - 1, -1, -1):
            entry = index.entry(i)
            if not (points_at_batch(seg.mm, seg.capacity, base, entry) and time_holds(
                    seg.mm, seg.capacity, base, index.entry(i - 1) if i else None, entry)):
                continue
            rel, pos, max_before = entry
            walker = BatchWalker(seg.mm, seg.capacity, SEGMENT_HEADER_SIZE, base, verify=False)
            for _ in walker:
                if walker.pos >= pos:
                    break
            if walker.pos < pos:  # the chain stopped before the entry's batch
                raise CorruptLogError(
                    f"{seg.path}: the batch at byte {walker.pos} (offset {walker.offset}) is damaged "
                    f"and valid batches follow it (the index points at byte {pos}), so it is not a "
                    f"write torn by a crash: not appending past it (readers cannot); copy the file "
                    f"aside, see 'minikafka check'")
            if walker.pos != pos or walker.offset != base + rel:
                continue  # the entry is not on the chain of batches: the index is wrong
            index.truncate_entries(i + 1)
            self.pos, self.next_offset, self.last_indexed_pos = pos, base + rel, pos
            self.max_ts = max_before
            return
        index.truncate_entries(0)

    def follow(self, recover: bool = False) -> None:
        """Advance over batches appended since this tail last looked: cut a
        torn tail, finish a roll a dead writer left half done.

        Batches other writers published are followed by header and length
        (the length word is written after the body). ``recover`` (once per
        process): verify checksums too, and add the index entries those
        batches lack; otherwise re-read the index other writers extended.
        Raises StaleTail (see the module docstring).
        """
        if not U32.unpack_from(self.seg.mm, self.pos)[0]:
            return  # nothing appended since we looked: the common case
        interval = self.config.index_interval_bytes
        moved = False
        while True:
            w = BatchWalker(self.seg.mm, self.seg.capacity, self.pos, self.next_offset, verify=recover,
                            max_ts=self.max_ts)
            while (info := w.peek()).status is Status.BATCH:
                if recover and index_due(w.pos, self.last_indexed_pos, interval):
                    self.index.append(w.offset - self.seg.base, w.pos, w.max_ts)
                    self.last_indexed_pos = w.pos
                w.advance(info)
                moved = True
            self.pos, self.next_offset, self.max_ts = w.pos, w.offset, w.max_ts
            if w.status is not Status.END:
                if w.status is Status.INVALID:
                    word = U32.unpack_from(self.seg.mm, self.pos)[0]
                    if valid_batch_after(self.seg.mm, self.seg.capacity, self.pos):
                        # Damage inside the log, not a torn tail: cutting here
                        # would discard the valid batches after it, and the
                        # next append would overwrite them.
                        raise CorruptLogError(
                            f"{self.seg.path}: the batch at byte {self.pos} (offset {self.next_offset}) "
                            f"is damaged and valid batches follow it, so it is not a write torn by "
                            f"a crash: not cutting the log there (it would discard them); copy the "
                            f"file aside, see 'minikafka check'")
                    log.warning("%s: cut the tail at byte %d: its length word (%d bytes) does not "
                                "start a valid batch (a write torn by a crash, or damage); the log "
                                "now ends at offset %d", self.seg.path, self.pos, word, self.next_offset)
                    U32.pack_into(self.seg.mm, self.pos, 0)
                break
            self.next_segment()
            moved = True
        if moved and not recover:
            self.index.refresh()
            if self.index.count:
                self.last_indexed_pos = self.index.entry(self.index.count - 1)[1]

    def next_segment(self) -> None:
        """Move into the segment after an end marker. A writer that died
        after writing the marker may have left the seal or the next file
        undone: finish its work."""
        base = self.next_offset
        if not self.seg.sealed:
            self.seg.seal(self.pos, self.max_ts, base)
        try:
            seg = self._open_writable(self.dir, self.config, self.fsync, base)
        except FileNotFoundError:
            if any(b > base for b in segment_bases(self.dir)):
                raise StaleTail from None
            self.create_segment(self.dir, self.config, self.fsync, base)
            seg = Segment.open(self.dir, base, writable=True)
        index = _open_index(self.dir, self.config, base, seg.capacity)
        self.close()
        self.seg, self.index = seg, index
        self.pos, self.max_ts, self.last_indexed_pos = SEGMENT_HEADER_SIZE, INT64_MIN, NOT_INDEXED
        self.spare_at = _spare_at(seg)

    def close(self) -> None:
        self.seg.close()
        self.index.close()


def _spare_at(seg: Segment) -> int:
    """Past this position, make sure a spare segment is being prepared."""
    return seg.capacity // 2 if seg.capacity >= SPARE_MIN_BYTES else NEVER


def _create_index(directory: str, config: TopicConfig, base: int, capacity: int) -> None:
    OffsetIndex.create(directory, base, OffsetIndex.size_for(capacity, config.index_interval_bytes))


def _open_index(directory: str, config: TopicConfig, base: int, capacity: int) -> OffsetIndex:
    """Open (or, missing or unreadable, recreate empty) a writable index."""
    index = OffsetIndex.open(directory, base, writable=True)
    if index is None:
        _create_index(directory, config, base, capacity)
        index = OffsetIndex.open(directory, base, writable=True)
        assert index is not None
    return index
