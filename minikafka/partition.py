"""One partition's writer: the append path, its locks, rolling, retention
and rebuilding index files. The end of the log as the writer sees it —
recovery, following other writers, the next segment — is in ``tail.py``;
reading (the consumer's cursor and the lookups) is in ``reader.py``.

Writers in any process serialize on ``writer.lock`` (flock). The log itself
is the only shared state: a writer that takes the lock first *follows* the
published batches from where it last looked to the real end (other
processes may have appended or rolled), then appends. A batch is published
by writing its length word last, so readers — which take no lock — see
either a whole batch or nothing.
"""

from __future__ import annotations

import mmap
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from . import reader as _reader
from . import retention
from .batch import BatchBuilder
from .errors import ClosedError, RecordTooLargeError, TimeoutError, TopicNotFoundError
from .files import NEVER
from .format import SEGMENT_HEADER_SIZE, TRAILER_SIZE, U32
from .index import MemoryIndex, OffsetIndex, index_due, rebuild_file
from .locking import FileLock, Waker
from .options import TopicConfig
from .reader import PartitionReader
from .segment import (
    Segment,
    UnfinishedSegmentError,
    has_spare,
    prepare_spare,
    read_seal,
)
from .tail import StaleTail, Tail, segment_bases

_ZERO_WORD = bytes(TRAILER_SIZE)
_PAGE = mmap.PAGESIZE


class Partition:
    """A partition directory as seen by this process (shared by its threads)."""

    def __init__(
        self, topic: str, number: int, directory: str, config: TopicConfig, waker: Waker,
        fsync: bool, on_deleted: Callable[[], None] | None = None,
        refresh_config: Callable[[], object] | None = None,
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
        self._tail: Tail | None = None
        self._seals: dict[int, tuple[int, int]] = {}
        # Filled by readers: sealed segments whose index file was missing or
        # wrong, and the in-memory index they use meanwhile. The writer
        # rebuilds those files on its next append (recover()).
        self.damaged_indexes: set[int] = set()
        self.memory_indexes: dict[int, MemoryIndex] = {}
        self._closed = False
        self._deleted = False  # closed because the topic was deleted
        self._on_deleted = on_deleted
        # Rereads topic.json if another process altered the retention (sets self.config).
        self._refresh_config = refresh_config
        self._bases: list[int] | None = None  # the last listing of segments
        try:  # changes if the topic is deleted and recreated
            self._dir_ino = os.stat(directory).st_ino
        except FileNotFoundError:
            self._dir_ino = -1  # deleted already: every use fails
        self._spare: threading.Thread | None = None  # prepare_spare running in the background
        self._spare_stop = threading.Event()

    def __repr__(self) -> str:
        return f"<Partition {self.topic}/{self.number}>"

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called (or the topic was found deleted)."""
        return self._closed

    # -- segments on disk ---------------------------------------------------

    def bases(self, cached: bool = False) -> list[int]:
        """Base offsets of the segments on disk, oldest first.

        ``cached``: the last listing, which may miss segments made or deleted
        since; only for callers that detect that and ask again (seek)."""
        if cached and self._bases is not None:
            return self._bases
        try:
            bases = self._bases = segment_bases(self.dir)
        except FileNotFoundError:
            raise ClosedError(f"partition {self.topic}/{self.number}: directory is gone "
                              f"(topic deleted?)") from None
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

    # -- the write side (callers hold self._lock and the flock) --------------

    def _open_tail(self) -> Tail:
        """Find the end of the log and recover it (tail.py). Runs once per process."""
        tail, bases = Tail.open(self.dir, self.config, self.fsync)
        self._tail = tail
        # Sealed segments whose index file is missing or unreadable.
        self.damaged_indexes.update(
            b for b in bases[:-1] if not OffsetIndex.exists_valid(self.dir, b)
        )
        return tail

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

    def _roll(self, t: Tail) -> None:
        """Seal the active segment and start the next one. The end marker
        goes first: a crash before the new file exists is repaired by the
        next writer (see Tail.next_segment)."""
        old = t.seg
        old.seal(t.pos, t.max_ts, t.next_offset)
        if self.fsync:
            old.mm.flush()
        self._seals[old.base] = (t.max_ts, t.next_offset)
        t.next_segment()
        if self._refresh_config is not None:
            self._refresh_config()  # alter_topic in any process: roll with the retention in force
        self._apply_retention()

    def _writable(self) -> None:
        """Fail (thread lock held) if this partition takes no more writes."""
        if self._closed:
            # Another writer of this process (or delete_topic here) may
            # have found the topic deleted and closed us first.
            if self._deleted or not os.path.exists(self._flock.path):
                raise self._deleted_error()
            raise ClosedError(f"partition {self.topic}/{self.number} is closed")

    def _sync(self) -> Tail:
        """The tail, moved (flock held) to the partition's real end: whatever
        other writers appended, rolled or deleted since this one looked."""
        t = self._tail
        if t is None:
            return self._open_tail()
        try:
            t.follow()
        except StaleTail:
            t.close()
            self._tail = None
            return self._open_tail()
        return t

    def _acquire(self, timeout: float | None) -> None:
        """Take the thread lock and the writer flock, waiting at most
        ``timeout`` seconds in all (None: as long as it takes); then raise
        :class:`~minikafka.TimeoutError` naming the lock (and its holder)."""
        lock = self._lock
        if lock.acquire(blocking=False):  # uncontended, the common case: no clock, no waits
            try:
                self._writable()
                if self._flock.acquire(blocking=False):
                    return
            except BaseException:
                lock.release()
                raise
            lock.release()  # another process writes: wait below, within the timeout
        if timeout is not None and timeout >= threading.TIMEOUT_MAX:
            timeout = None  # longer than a lock can wait (OverflowError): no limit
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

    def writer_busy(self) -> bool:
        """Whether a thread or process holds the writer locks right now (one
        try of each, no wait): an AsyncProducer's send writes only when not."""
        if not self._lock.acquire(blocking=False):
            return True
        try:
            if not self._flock.acquire(blocking=False):
                return True
            self._flock.release()
            return False
        finally:
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

    @contextmanager
    def deleting(self, timeout: float | None) -> Iterator[None]:
        """Hold the writer locks while ``delete_topic`` removes the topic;
        if the block ends without an error, the partition is closed as
        deleted before this process's writers get the thread lock back
        (they then fail with TopicNotFoundError). Through this object, not
        a lock file of its own: a writer of this process waiting on the
        flock would hold the thread lock that closing the partition needs."""
        self._acquire(timeout)
        try:
            yield
        except BaseException:
            self._release()
            raise
        try:
            self._deleted = True
            self.close()  # re-entrant: closing the flock's descriptor releases it
        finally:
            self._lock.release()

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
            self._check_not_deleted()  # else the listing is of whatever now has the path
            self._apply_retention()
        finally:
            self._release()

    def _apply_retention(self) -> None:
        bases = self.bases()
        gone = list(retention.expired(self.dir, bases, self.config, self.seal))
        for base in gone:
            retention.remove_segment(self.dir, base)
            self._seals.pop(base, None)
        if bases:
            retention.remove_orphan_indexes(self.dir, bases[len(gone)])

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
