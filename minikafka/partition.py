"""One partition's writer: the append path, following other writers,
recovery, rolling, retention and rebuilding index files. Reading (the
consumer's cursor and the lookups) is in ``reader.py``.

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

import logging
import mmap
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from . import reader as _reader
from . import retention
from .batch import BatchBuilder, BatchWalker, Status
from .errors import ClosedError, RecordTooLargeError, TimeoutError, TopicNotFoundError
from .files import NEVER, TMP_SUFFIX, fsync_directory, unlink_quietly
from .format import (
    INT64_MIN,
    SEGMENT_HEADER_SIZE,
    TRAILER_SIZE,
    U32,
    index_name,
    is_segment_name,
)
from .index import (
    NOT_INDEXED,
    MemoryIndex,
    OffsetIndex,
    index_due,
    points_at_batch,
    rebuild_file,
    time_holds,
)
from .locking import FileLock, Waker
from .options import TopicConfig
from .reader import PartitionReader
from .segment import (
    SPARE_MIN_BYTES,
    Segment,
    UnfinishedSegmentError,
    has_spare,
    prepare_spare,
    read_seal,
    remove_stale_spares,
)

log = logging.getLogger("minikafka")

_ZERO_WORD = bytes(TRAILER_SIZE)
_PAGE = mmap.PAGESIZE


def _spare_at(seg: Segment) -> int:
    """Past this position, make sure a spare segment is being prepared."""
    return seg.capacity // 2 if seg.capacity >= SPARE_MIN_BYTES else NEVER


class _Tail:
    """Where the next batch goes: the writer's view of the active segment."""

    __slots__ = ("index", "last_indexed_pos", "max_ts", "next_offset", "pos", "seg", "spare_at")

    def __init__(self, seg: Segment, index: OffsetIndex) -> None:
        self.seg = seg
        self.index = index
        self.pos = SEGMENT_HEADER_SIZE
        self.next_offset = seg.base
        self.max_ts = INT64_MIN
        self.last_indexed_pos = NOT_INDEXED
        self.spare_at = _spare_at(seg)

    def close(self) -> None:
        self.seg.close()
        self.index.close()


class _StaleTail(Exception):
    """The writer's tail is in segments retention has deleted since it last
    looked (another writer appended, rolled and applied retention)."""


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
        # This process's writer threads. Re-entrant because acquire and the
        # ``try`` that releases it are two steps (see _acquire): a Ctrl-C
        # landing between them leaks one hold, and the same thread — which
        # then writes what is left at interpreter exit — must not wait for
        # itself (request_timeout) to get it back.
        self._lock = threading.RLock()
        self._flock = FileLock(os.path.join(directory, "writer.lock"))  # all processes' writers
        self._tail: _Tail | None = None
        self._seals: dict[int, tuple[int, int]] = {}
        # Filled by readers: sealed segments whose index file was missing or
        # wrong, and the in-memory index they use meanwhile. The writer
        # rebuilds those files on its next append (recover()).
        self.damaged_indexes: set[int] = set()
        self.memory_indexes: dict[int, MemoryIndex] = {}
        self._closed = False
        self._deleted = False  # closed because the topic was deleted
        self._on_deleted = on_deleted
        self._bases: list[int] | None = None  # the last listing of segments
        try:  # changes if the topic is deleted and recreated
            self._dir_ino = os.stat(directory).st_ino
        except FileNotFoundError:
            self._dir_ino = -1  # deleted already: every use fails
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
        bases = self._bases = sorted(int(n[:20]) for n in names if is_segment_name(n))
        return bases

    def replaced(self) -> bool:
        """Whether the directory was deleted (and maybe made again) since
        this object was made: a recreated topic, not damage."""
        try:
            return os.stat(self.dir).st_ino != self._dir_ino
        except FileNotFoundError:
            return True

    def seal(self, base: int) -> tuple[int, int] | None:
        """(max timestamp, end offset) of a closed segment, cached."""
        info = self._seals.get(base)
        if info is None:
            info = read_seal(self.dir, base)
            if info is not None:
                self._seals[base] = info
        return info

    def _create_index(self, base: int, capacity: int) -> None:
        OffsetIndex.create(self.dir, base, OffsetIndex.size_for(capacity, self.config.index_interval_bytes))

    def _create_segment(self, base: int) -> None:
        self._create_index(base, self.config.segment_bytes)
        Segment.create(self.dir, base, self.config.segment_bytes)
        if self.fsync:
            fsync_directory(self.dir)

    def _open_writable(self, base: int) -> Segment:
        """Open a segment for writing (flock held); a segment left with a
        torn header and nothing in it is created again."""
        try:
            return Segment.open(self.dir, base, writable=True)
        except UnfinishedSegmentError:
            unlink_quietly(os.path.join(self.dir, index_name(base)))
            self._create_segment(base)  # renamed over the torn file
            return Segment.open(self.dir, base, writable=True)

    def _open_index(self, base: int, capacity: int) -> OffsetIndex:
        """Open (or, missing or unreadable, recreate empty) a writable index."""
        index = OffsetIndex.open(self.dir, base, writable=True)
        if index is None:
            self._create_index(base, capacity)
            index = OffsetIndex.open(self.dir, base, writable=True)
            assert index is not None
        return index

    # -- the write side (callers hold self._lock and the flock) --------------

    def _open_tail(self) -> _Tail:
        """Find the end of the log and recover it. Runs once per process."""
        for name in os.listdir(self.dir):
            if name.endswith(TMP_SUFFIX):  # a creation that died before its rename
                os.unlink(os.path.join(self.dir, name))
        remove_stale_spares(self.dir)
        bases = self.bases()
        if not bases:
            self._create_segment(0)
            bases = [0]
        base = bases[-1]
        seg = self._open_writable(base)
        index = self._open_index(base, seg.capacity)
        tail = _Tail(seg, index)
        # Resume from the last index entry that points at a valid batch and
        # whose timestamp agrees with the log (it seeds the max timestamp of
        # the entries written next); entries after it are damaged and go.
        for i in range(index.count - 1, -1, -1):
            entry = index.entry(i)
            if points_at_batch(seg.mm, seg.capacity, base, entry) and time_holds(
                    seg.mm, seg.capacity, base, index.entry(i - 1) if i else None, entry):
                index.truncate_entries(i + 1)
                rel, pos, max_before = entry
                tail.pos, tail.next_offset, tail.last_indexed_pos = pos, base + rel, pos
                tail.max_ts = max_before
                break
        else:
            index.truncate_entries(0)
        self._follow(tail, recover=True)
        self._tail = tail
        # Sealed segments whose index file is missing or unreadable.
        self.damaged_indexes.update(
            b for b in bases[:-1] if not OffsetIndex.exists_valid(self.dir, b)
        )
        return tail

    def _follow(self, t: _Tail, recover: bool = False) -> None:
        """Advance ``t`` over batches appended since it last looked (flock
        held): cut a torn tail, finish a roll a dead writer left half done.

        Batches other writers published are followed by header and length
        (the length word is written after the body). ``recover`` (once per
        process): verify checksums too, and add the index entries those
        batches lack; otherwise re-read the index other writers extended.
        """
        if not U32.unpack_from(t.seg.mm, t.pos)[0]:
            return  # nothing appended since we looked: the common case
        interval = self.config.index_interval_bytes
        moved = False
        while True:
            w = BatchWalker(t.seg.mm, t.seg.capacity, t.pos, t.next_offset, verify=recover,
                            max_ts=t.max_ts)
            while (info := w.peek()).status is Status.BATCH:
                if recover and index_due(w.pos, t.last_indexed_pos, interval):
                    t.index.append(w.offset - t.seg.base, w.pos, w.max_ts)
                    t.last_indexed_pos = w.pos
                w.advance(info)
                moved = True
            t.pos, t.next_offset, t.max_ts = w.pos, w.offset, w.max_ts
            if w.status is not Status.END:
                if w.status is Status.INVALID:
                    word = U32.unpack_from(t.seg.mm, t.pos)[0]
                    log.warning("%s: cut the tail at byte %d: its length word (%d bytes) does not "
                                "start a valid batch (a write torn by a crash, or damage); the log "
                                "now ends at offset %d", t.seg.path, t.pos, word, t.next_offset)
                    U32.pack_into(t.seg.mm, t.pos, 0)
                break
            self._next_segment(t)
            moved = True
        if moved and not recover:
            t.index.refresh()
            if t.index.count:
                t.last_indexed_pos = t.index.entry(t.index.count - 1)[1]

    def _next_segment(self, t: _Tail) -> None:
        """Move ``t`` into the segment after an end marker. A writer that
        died after writing the marker may have left the seal or the next
        file undone: finish its work."""
        base = t.next_offset
        if not t.seg.sealed:
            t.seg.seal(t.pos, t.max_ts, base)
        try:
            seg = self._open_writable(base)
        except FileNotFoundError:
            # Missing with later segments on disk: retention deleted it
            # after another writer moved on; this tail is stale and must be
            # found again (recreating the file would reuse its offsets).
            if any(b > base for b in self.bases()):
                raise _StaleTail from None
            self._create_segment(base)
            seg = Segment.open(self.dir, base, writable=True)
        index = self._open_index(base, seg.capacity)
        t.close()
        t.seg, t.index = seg, index
        t.pos, t.max_ts, t.last_indexed_pos = SEGMENT_HEADER_SIZE, INT64_MIN, NOT_INDEXED
        t.spare_at = _spare_at(seg)

    def _rebuild_indexes(self) -> None:
        """Rewrite the index files readers found missing or wrong (sealed
        segments only: the active one is recovered with the tail)."""
        interval = self.config.index_interval_bytes
        for base in sorted(self.damaged_indexes):
            try:
                seg = Segment.open(self.dir, base)
            except (FileNotFoundError, UnfinishedSegmentError):
                continue
            try:
                if seg.sealed:
                    rebuild_file(self.dir, base, seg.mm, seg.capacity, interval)
            finally:
                seg.close()
        self.damaged_indexes.clear()
        self.memory_indexes.clear()

    def _check_not_deleted(self) -> None:
        """With the writer lock held: fail if the topic was deleted. A
        deleter holds every writer lock while it removes the topic, so a
        writer that gets the lock afterwards finds its lock file unlinked."""
        if os.fstat(self._flock.fileno()).st_nlink == 0:
            self._closed = self._deleted = True
            if self._on_deleted is not None:
                self._on_deleted()
            raise self._deleted_error()

    def _deleted_error(self) -> TopicNotFoundError:
        return TopicNotFoundError(
            f"topic {self.topic!r} was deleted; partition {self.number} takes no more records")

    def _start_spare(self) -> None:
        """Have a zero-filled spare ready before the next roll."""
        if not has_spare(self.dir):
            spare = threading.Thread(
                target=prepare_spare, args=(self.dir, self.config.segment_bytes, self._spare_stop),
                name="minikafka-spare", daemon=True,
            )
            try:
                spare.start()
            except RuntimeError:  # at interpreter exit (3.12+ refuses new threads): a spare is optional
                return
            self._spare = spare

    def _roll(self, t: _Tail) -> None:
        """Seal the active segment and start the next one. The end marker
        goes first: a crash before the new file exists is repaired by the
        next writer (see _next_segment)."""
        old = t.seg
        old.seal(t.pos, t.max_ts, t.next_offset)
        if self.fsync:
            old.mm.flush()
        self._seals[old.base] = (t.max_ts, t.next_offset)
        self._next_segment(t)
        self._apply_retention()

    def _writable(self) -> None:
        """Fail (thread lock held) if this partition takes no more writes."""
        if self._closed:
            # Another writer of this process (or delete_topic here) may
            # have found the topic deleted and closed us first.
            if self._deleted or not os.path.exists(self._flock.path):
                raise self._deleted_error()
            raise ClosedError(f"partition {self.topic}/{self.number} is closed")

    def _sync(self) -> _Tail:
        """The tail, moved (flock held) to the partition's real end: whatever
        other writers appended, rolled or deleted since this one looked."""
        t = self._tail
        if t is None:
            return self._open_tail()
        try:
            self._follow(t)
        except _StaleTail:
            t.close()
            self._tail = None
            return self._open_tail()
        return t

    def _acquire(self, timeout: float | None) -> None:
        """Take the thread lock and the writer flock, waiting at most
        ``timeout`` seconds in all (None: as long as it takes); then raise
        :class:`~minikafka.TimeoutError` naming the lock (and its holder)."""
        if timeout is None:
            self._lock.acquire()
        else:
            deadline = time.monotonic() + timeout
            if not self._lock.acquire(timeout=max(0.0, timeout)):
                raise TimeoutError(f"timed out after {timeout:g} s waiting for partition "
                                   f"{self.topic}/{self.number} (another thread of this process "
                                   f"is writing to it)")
        try:
            self._writable()
            if timeout is None:
                self._flock.acquire()
            else:
                self._flock.acquire(timeout=max(0.0, deadline - time.monotonic()))
        except BaseException:
            self._lock.release()
            raise

    def _release(self) -> None:
        self._flock.release()
        self._lock.release()

    def recover(self, timeout: float | None = None) -> None:
        """Take the writer lock, recover the tail (once per process) and
        rebuild the index files readers found damaged. Every append does
        this first; call it to repair without writing."""
        self._acquire(timeout)
        try:
            self._check_not_deleted()
            self._sync()
            self._rebuild_indexes()
        finally:
            self._release()

    @contextmanager
    def writer_locked(self, timeout: float | None = None) -> Iterator[None]:
        """Hold the writer locks (this process's and every process's), for
        tools that change files writers own (``check.repair``)."""
        self._acquire(timeout)
        try:
            yield
        finally:
            self._release()

    def rebuild_indexes(self, timeout: float | None = None) -> None:
        """Rewrite the index files of sealed segments listed in
        ``damaged_indexes``, without tail recovery (``check.repair`` when
        the tail holds damage that cutting would lose)."""
        with self.writer_locked(timeout):
            self._rebuild_indexes()

    def append(self, batch: BatchBuilder, timeout: float | None = None) -> int:
        """Write one batch and return its base offset (the builder's header
        and checksum are filled in here, under the writer lock). Waits at
        most ``timeout`` seconds for the lock (see ``_acquire``)."""
        n = len(batch.buf)
        cfg = self.config
        if n > cfg.max_batch_bytes:
            raise RecordTooLargeError(
                f"{self.topic}/{self.number}: batch of {n} bytes does not fit in a "
                f"segment of {cfg.segment_bytes} bytes"
            )
        self._acquire(timeout)
        try:
            self._check_not_deleted()
            t = self._sync()
            if self.damaged_indexes:
                self._rebuild_indexes()
            pos = t.pos
            if pos + n + TRAILER_SIZE > t.seg.capacity or (
                cfg.segment_ms is not None
                and pos > SEGMENT_HEADER_SIZE
                and time.time() * 1000 - t.seg.created_ms >= cfg.segment_ms
            ):
                self._roll(t)
                pos = t.pos
            base = t.next_offset
            buf = batch.finish(base)
            end = pos + n
            # Everything but the length word, and a zero next word (stale
            # bytes of a writer that died there must never read as the
            # next batch) in one pwrite; then the length publishes it.
            with memoryview(buf) as mv:
                written = os.pwritev(t.seg.fd, (mv[4:], _ZERO_WORD), pos + 4)
            if written != n:  # n - 4 body bytes + the 4-byte zero word
                raise OSError(f"{t.seg.path}: short write at byte {pos + 4} ({written} of {n} bytes)")
            mm = t.seg.mm
            U32.pack_into(mm, pos, n)
            if index_due(pos, t.last_indexed_pos, cfg.index_interval_bytes):
                t.index.append(base - t.seg.base, pos, t.max_ts)
                t.last_indexed_pos = pos
            if batch.max_ts > t.max_ts:
                t.max_ts = batch.max_ts
            t.pos = end
            t.next_offset = base + batch.count
            if end > t.spare_at:
                t.spare_at = NEVER
                self._start_spare()
            if self.fsync:
                start = pos - pos % _PAGE
                mm.flush(start, end + TRAILER_SIZE - start)
        finally:
            self._release()
        self.waker.notify()
        return base

    # -- offsets ------------------------------------------------------------

    def end_offset(self) -> int:
        """The offset the next record will get. Read-only: takes no writer
        lock and recovers nothing (a torn tail counts as not written)."""
        if self._closed:
            raise ClosedError(f"partition {self.topic}/{self.number} is closed")
        return _reader.end_of_log(self)

    def beginning_offset(self) -> int:
        bases = self.bases()
        return bases[0] if bases else 0

    def apply_retention(self, timeout: float | None = None) -> None:
        """Delete closed segments past ``retention_ms`` / ``retention_bytes``,
        waiting at most ``timeout`` seconds for the writer lock."""
        cfg = self.config
        if cfg.retention_ms is None and cfg.retention_bytes is None:
            return
        self._acquire(timeout)
        try:
            self._apply_retention()
        finally:
            self._release()

    def _apply_retention(self) -> None:
        for base in list(retention.expired(self.dir, self.bases(), self.config, self.seal)):
            retention.remove_segment(self.dir, base)
            self._seals.pop(base, None)

    # -- reading (reader.py) ----------------------------------------------------

    def offset_for_time(self, timestamp: int) -> int | None:
        """The earliest offset whose timestamp is >= ``timestamp``."""
        return _reader.offset_for_time(self, timestamp)

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
