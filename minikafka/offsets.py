"""A consumer group's committed offsets: one small sidecar file per group,
and the group lock that serializes commits and membership changes.

``<data>/groups/<encoded id>/offsets`` holds two slots, each big enough for
one *offsets record* (the group's whole committed state, with a sequence
number and a checksum). A commit writes the new record into the slot that
does not hold the newest one, in place (one ``pwrite``, plus ``fdatasync``
with the ``fsync`` option); a reader takes the valid slot with the higher
sequence. A crash at any instant tears at most the slot being written, so a
reader finds the old or the new offsets, never garbage. Only creating the
file, or growing it when the offsets outgrow a slot, writes a temporary
file and renames it. (Version 1 files, one record and nothing else, were
replaced whole on every commit; the ext4 rename cost ~130 us of a ~250 us
commit. They are still read, and rewritten as slotted files on the next
commit.) Commits from several members are read-modify-write under ``lock``
(flock), so each member's partitions survive the others' commits.

File (little-endian)::

    offset   size field
    0        4    magic b"MKGS"
    4        2    file format version (2)
    6        2    reserved, zero
    8        4    slot size S (u32)
    12       4    reserved, zero
    16       S    slot 0: record length L (u32; 0 = empty), record, zeros
    16 + S   S    slot 1: the same

Offsets record (also the whole of a version 1 file)::

    offset size field
    0      4    magic b"MKGO"
    4      2    format version (1)
    6      2    reserved, zero
    8      8    sequence (u64): number of commits so far
    16     4    entry count (u32)
    20     ...  entries: topic length (u16), topic (UTF-8), partition
                (u32), committed offset (i64) = next offset to read
    end-8  8    checksum (u64): xxh3-64 of every byte before it

Why one module of ~510 lines: the file format, its crash-safe write
protocol and the group lock are one unit: every write of the file happens
under that lock, and the lock's life (bounded waits, closing under a
waiting commit) is part of the protocol.
"""

from __future__ import annotations

import errno
import logging
import os
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import NamedTuple

from xxhash import xxh3_64_intdigest

from .errors import CorruptLogError, InvalidArgumentError, TimeoutError
from .format import OFFSETS_RECORD_VERSION
from .locking import FileLock
from .records import TopicPartition

log = logging.getLogger("minikafka")

MAGIC = b"MKGO"
HEADER = struct.Struct("<4sHHQI")
FILE_MAGIC = b"MKGS"
FILE_VERSION = 2
FILE_HEADER = struct.Struct("<4sHHII")
SLOT_LEN = struct.Struct("<I")
MIN_SLOT = 4096
TOPIC_LEN = struct.Struct("<H")
ENTRY_TAIL = struct.Struct("<Iq")  # record version 1
ENTRY_TAIL_V2 = struct.Struct("<IqQ")  # version 2: + the topic's id
CHECKSUM = struct.Struct("<Q")
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def check_group_id(group_id: object) -> str:
    """``group_id`` if it is one on every backend: a str, not empty, valid
    Unicode (TypeError or InvalidArgumentError naming what is wrong).
    kafka:// checks it first too: confluent-kafka's words for these were
    ``'group_id' cannot be empty`` and, for a lone surrogate, ``Group name
    is mandatory for list consumer offset operation``."""
    if not isinstance(group_id, str):
        raise TypeError(f"group_id must be a str, not {type(group_id).__name__}")
    if not group_id:
        raise InvalidArgumentError("group_id must not be empty")
    try:
        group_id.encode()
    except UnicodeEncodeError as e:
        raise InvalidArgumentError(f"group_id {group_id!r} is not valid Unicode ({e.reason})") from None
    return group_id


def encode_group_id(group_id: object) -> str:
    """A file name for any group id: ``[A-Za-z0-9_-]`` kept, every other
    byte of the UTF-8 form written ``%XX`` (so no id can reach outside
    ``groups/``, and ``.``/``..`` are impossible)."""
    group_id = check_group_id(group_id)
    out = []
    for ch in group_id:
        if ch in _SAFE:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode())
    name = "".join(out)
    if len(name) > 240:
        raise InvalidArgumentError(
            f"group_id {group_id[:40]!r}... is too long: {len(name)} characters as a directory name, "
            f"at most 240 (characters other than [A-Za-z0-9_-] take 3 per UTF-8 byte)")
    return name


def decode_group_id(name: str) -> str:
    """The group id whose file name is ``name``; ValueError unless ``name``
    is exactly what :func:`encode_group_id` makes of some id (a directory
    made by hand, ``%41`` or ``a.b``, would otherwise name a group whose
    files are elsewhere, and a stray ``%`` crashed)."""
    raw = bytearray()
    i = 0
    while i < len(name):
        if name[i] == "%":
            digits = name[i + 1 : i + 3]
            if len(digits) != 2 or not all(c in "0123456789ABCDEF" for c in digits):
                raise ValueError(f"{name!r}: '%' must be followed by two upper-case hex digits")
            raw.append(int(digits, 16))
            i += 3
        else:
            raw += name[i].encode()
            i += 1
    try:
        group_id = raw.decode()
    except UnicodeDecodeError:
        raise ValueError(f"{name!r}: the %-escapes are not UTF-8") from None
    try:
        canonical = encode_group_id(group_id)
    except InvalidArgumentError as e:  # empty, too long, a lone surrogate
        raise ValueError(f"{name!r}: {e}") from None
    if canonical != name:
        raise ValueError(f"{name!r} is not an encoded group id (that id is encoded {canonical!r})")
    return group_id


def is_group_dir_name(name: str) -> bool:
    """Whether ``name`` is the file name of some group id."""
    try:
        decode_group_id(name)
    except ValueError:
        return False
    return True


def encode_offsets(sequence: int, offsets: Mapping[TopicPartition, int],
                   ids: Mapping[str, int] | None = None) -> bytes:
    """A record of ``offsets``; ``ids``: each topic's id (topic.json), 0 if unknown."""
    ids = ids or {}
    parts = [HEADER.pack(MAGIC, OFFSETS_RECORD_VERSION, 0, sequence, len(offsets))]
    for (topic, partition), offset in sorted(offsets.items()):
        raw = topic.encode()
        parts.append(TOPIC_LEN.pack(len(raw)) + raw
                     + ENTRY_TAIL_V2.pack(partition, offset, ids.get(topic, 0)))
    body = b"".join(parts)
    return body + CHECKSUM.pack(xxh3_64_intdigest(body))


def decode_offsets(data: bytes, path: str) -> tuple[int, dict[TopicPartition, int], dict[str, int]]:
    """(sequence, offsets, topic ids) from a record's bytes; CorruptLogError
    if damaged. A version 1 record has no ids: every topic's is 0."""
    if len(data) < HEADER.size + CHECKSUM.size:
        raise CorruptLogError(f"{path}: group offsets file is truncated ({len(data)} bytes)")
    body, (checksum,) = data[:-8], CHECKSUM.unpack(data[-8:])
    magic, version, _, sequence, count = HEADER.unpack_from(body, 0)
    if magic != MAGIC or xxh3_64_intdigest(body) != checksum:
        raise CorruptLogError(f"{path}: group offsets file fails its checksum")
    if version > OFFSETS_RECORD_VERSION:
        raise CorruptLogError(f"{path}: group offsets format {version} is newer than this minikafka")
    offsets = {}
    ids: dict[str, int] = {}
    tail = ENTRY_TAIL if version == 1 else ENTRY_TAIL_V2
    p = HEADER.size
    try:
        for _ in range(count):
            (n,) = TOPIC_LEN.unpack_from(body, p)
            if p + 2 + n > len(body):
                raise ValueError("topic name runs past the end")
            topic = body[p + 2 : p + 2 + n].decode()
            p += 2 + n
            partition, offset, *topic_id = tail.unpack_from(body, p)
            p += tail.size
            offsets[TopicPartition(topic, partition)] = offset
            ids[topic] = topic_id[0] if topic_id else 0
    except (struct.error, ValueError) as e:  # UnicodeDecodeError is a ValueError
        raise CorruptLogError(f"{path}: group offsets file is malformed ({e})") from None
    if p != len(body):
        raise CorruptLogError(f"{path}: group offsets file has {len(body) - p} bytes after its entries")
    return sequence, offsets, ids


class _Slots(NamedTuple):
    """What an offsets file holds: the newest valid record, which slot it is
    in (None: a version 1 file, or no file) and the slot size."""

    sequence: int
    offsets: dict[TopicPartition, int]
    ids: dict[str, int]
    slot: int | None
    slot_size: int


def decode_file(data: bytes, path: str) -> _Slots:
    """The newest valid record of an offsets file; CorruptLogError if none."""
    if data[:4] == MAGIC:  # version 1: one record
        return _Slots(*decode_offsets(data, path), None, 0)
    if len(data) < FILE_HEADER.size or data[:4] != FILE_MAGIC:
        raise CorruptLogError(f"{path}: not a group offsets file, or its header is damaged")
    _, version, _, slot_size, _ = FILE_HEADER.unpack_from(data, 0)
    if version > FILE_VERSION:
        raise CorruptLogError(f"{path}: group offsets file format {version} is newer than this minikafka")
    best: _Slots | None = None
    for slot in (0, 1):
        start = FILE_HEADER.size + slot * slot_size
        if slot_size < SLOT_LEN.size or start + SLOT_LEN.size > len(data):
            continue
        (length,) = SLOT_LEN.unpack_from(data, start)
        end = start + SLOT_LEN.size + length
        if not length or length > slot_size - SLOT_LEN.size or end > len(data):
            continue
        try:
            sequence, offsets, ids = decode_offsets(data[start + SLOT_LEN.size : end], path)
        except CorruptLogError:
            continue  # torn by a crash mid-commit: the other slot holds the state before
        if best is None or sequence > best.sequence:
            best = _Slots(sequence, offsets, ids, slot, slot_size)
    if best is None:
        raise CorruptLogError(
            f"{path}: group offsets file has no valid record (both slots fail their checksum)"
        )
    return best


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    """Write all of ``data`` at ``offset``. A write can come back short (a
    full disk); the retry of the rest then raises the error (ENOSPC)."""
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        if n <= 0:
            raise OSError(errno.ENOSPC, f"short write ({len(view)} bytes not written)")
        view = view[n:]
        offset += n


def _read_all(fd: int) -> bytes:
    return os.pread(fd, os.fstat(fd).st_size, 0)


class OffsetStore:
    """The committed offsets of one group in one data directory, and the
    group's directory and lock."""

    def __init__(self, groups_dir: str, group_id: str, fsync: bool = False,
                 request_timeout: float | None = None,
                 topic_id: Callable[[str], int | None] | None = None) -> None:
        self.group_id = group_id
        #: A topic's current id (None: no such topic). Offsets committed for
        #: another id are of a deleted topic of the same name: not ours.
        self.topic_id = topic_id
        #: Longest wait for the group lock (None: forever); past it
        #: :meth:`locked` raises TimeoutError naming the lock.
        self.request_timeout = request_timeout
        self.dir = os.path.join(groups_dir, encode_group_id(group_id))
        self.path = os.path.join(self.dir, "offsets")
        self.fsync = fsync
        # Re-entrant for the reason Partition._lock is: a Ctrl-C between
        # acquire and ``try`` in locked() must not make the same thread's
        # commit-on-exit wait request_timeout for a hold it leaked itself.
        self._thread_lock = threading.RLock()
        self._depth = 0  # this thread's nesting of locked() (guarded by _thread_lock)
        self._flock: FileLock | None = None
        self._within = threading.local()  # .until: this thread's deadline (within())

    def _lock(self) -> FileLock:
        if self._flock is None:
            os.makedirs(self.dir, exist_ok=True)
            self._flock = FileLock(os.path.join(self.dir, "lock"))
        return self._flock

    @contextmanager
    def within(self, timeout: float | None = None) -> Iterator[None]:
        """One deadline, ``timeout`` seconds from now (None:
        ``request_timeout``), for every default-timeout wait of
        :meth:`locked` this thread makes inside: a call that takes the group
        lock several times (``close``: the final commit, the revoke's
        commit, leaving) waits that long in all, not that long each.
        Nested, the earlier deadline holds."""
        if timeout is None:
            timeout = self.request_timeout
        before = getattr(self._within, "until", None)
        until = None if timeout is None else time.monotonic() + timeout
        if before is not None and (until is None or before < until):
            until = before
        self._within.until = until
        try:
            yield
        finally:
            self._within.until = before

    def default_timeout(self) -> float | None:
        """How long a wait of this thread may take now (None: no limit):
        ``request_timeout``, or what is left of a :meth:`within` deadline."""
        timeout = self.request_timeout
        until = getattr(self._within, "until", None)
        if until is not None:
            left = max(0.0, until - time.monotonic())
            timeout = left if timeout is None else min(timeout, left)
        return timeout

    @contextmanager
    def locked(self, timeout: float | None = None) -> Iterator[None]:
        """Hold the group lock: commits and membership changes serialize.
        Waits at most ``timeout`` (default ``request_timeout``, or what is
        left of a :meth:`within` deadline), then raises
        :class:`~minikafka.TimeoutError` naming the lock (and its holder)."""
        if timeout is None:
            timeout = self.default_timeout()
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._thread_lock.acquire(timeout=-1 if timeout is None else timeout):
            raise TimeoutError(
                f"timed out after {timeout:g} s waiting for lock {os.path.join(self.dir, 'lock')} "
                f"(held by another thread of this process)"
            )
        try:
            flock = self._lock()  # under the thread lock: _acquire_current may replace it
            # Nested in one thread (a consumer the garbage collector closes
            # inside a locked block): only the outermost level takes and
            # releases the flock, or the inner exit would unlock the outer.
            if self._depth == 0:
                flock = self._acquire_current(flock, deadline)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    flock.release()
        finally:
            self._thread_lock.release()

    def _acquire_current(self, flock: FileLock, deadline: float | None) -> FileLock:
        """Take the flock of the lock file that is at ``lock`` *now*.

        ``delete_group`` (any process) renames the group's directory away
        while holding the lock; a descriptor opened before that locks the
        old file, which no longer excludes anyone who opens the path anew
        (two processes would both "hold" the group lock and overwrite each
        other's state and commits). So after locking, check the path still
        names our file, and otherwise start over on the new one."""
        while True:
            flock.acquire(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
            try:
                here = os.stat(flock.path)
                mine = os.fstat(flock.fileno())
                if (here.st_dev, here.st_ino) == (mine.st_dev, mine.st_ino):
                    return flock
            except FileNotFoundError:
                pass
            flock.close()  # the deleted group's lock: drop it, lock the current one
            self._flock = None
            flock = self._lock()

    def _read(self, fd: int | None = None) -> _Slots:
        """The newest committed state; reads ``fd`` if given, else the file."""
        if fd is None:
            try:
                with open(self.path, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                return _Slots(0, {}, {}, None, 0)
        else:
            data = _read_all(fd)
        return decode_file(data, self.path)

    def load(self) -> dict[TopicPartition, int]:
        """Every committed offset of the group (of the topics as they are now)."""
        return self._current(self._read())[0]

    def _current(self, state: _Slots, now: dict[str, int | None] | None = None
                 ) -> tuple[dict[TopicPartition, int], dict[str, int]]:
        """``state``'s offsets and ids without those of topics since deleted
        and created again (a delete killed before it dropped its offsets).
        ``now``, if given, gets the ids looked up (topic -> id now)."""
        if self.topic_id is None:
            return dict(state.offsets), dict(state.ids)
        if now is None:
            now = {}
        for t in state.ids:
            now[t] = self.topic_id(t)
        stale = {t for t, i in now.items() if i is not None and i != state.ids[t]}
        if not stale:
            return dict(state.offsets), dict(state.ids)
        return ({tp: o for tp, o in state.offsets.items() if tp.topic not in stale},
                {t: i for t, i in state.ids.items() if t not in stale})

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Merge ``offsets`` into the group's committed offsets, atomically."""
        with self.locked():
            self.update(lambda current: {**current, **offsets})

    def forget_topic(self, topic: str) -> None:
        """Drop the offsets of a deleted topic."""
        with self.locked():
            self.update(lambda current: {tp: o for tp, o in current.items() if tp.topic != topic})

    def update(self, change: Callable[[dict[TopicPartition, int]], dict[TopicPartition, int]]) -> None:
        """Read the newest state, apply ``change``, store it. The caller
        holds :meth:`locked` (so it can check the group in the same hold).

        The file is replaced by rename only under the group lock, so ``fd``
        stays the current file for the whole update."""
        try:
            fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:
            fd = None
        try:
            state = self._read(fd) if fd is not None else _Slots(0, {}, {}, None, 0)
            looked_up: dict[str, int | None] = {}
            current, known = self._current(state, looked_up)
            offsets = change(current)
            ids = {}
            for topic in {tp.topic for tp in offsets}:
                if topic in looked_up:
                    now = looked_up[topic]
                else:
                    now = self.topic_id(topic) if self.topic_id is not None else None
                ids[topic] = now if now is not None else known.get(topic, 0)
            if offsets == state.offsets and ids == state.ids:
                return  # nothing changes (nor is a file created for nothing: forget_topic)
            record = encode_offsets(state.sequence + 1, offsets, ids)
            if fd is None or state.slot is None or SLOT_LEN.size + len(record) > state.slot_size:
                self._rewrite(record)
                return
            target = 1 - state.slot  # never the slot that holds the newest record
            _pwrite_all(fd, SLOT_LEN.pack(len(record)) + record,
                        FILE_HEADER.size + target * state.slot_size)
            if self.fsync:
                os.fdatasync(fd)
        finally:
            if fd is not None:
                os.close(fd)

    def _rewrite(self, record: bytes) -> None:
        """Create (or grow) the file: temporary file, (fsync), rename."""
        slot_size = MIN_SLOT
        while slot_size < 2 * (SLOT_LEN.size + len(record)):  # room to grow in place
            slot_size *= 2
        data = bytearray(FILE_HEADER.size + 2 * slot_size)
        FILE_HEADER.pack_into(data, 0, FILE_MAGIC, FILE_VERSION, 0, slot_size, 0)
        SLOT_LEN.pack_into(data, FILE_HEADER.size, len(record))
        data[FILE_HEADER.size + SLOT_LEN.size : FILE_HEADER.size + SLOT_LEN.size + len(record)] = record
        tmp = f"{self.path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            try:
                _pwrite_all(fd, bytes(data), 0)
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException:
            # A file written short (a full disk) must never replace the
            # previous offsets: drop it, the old file stays current.
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        os.rename(tmp, self.path)
        if self.fsync:
            dfd = os.open(self.dir, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def close(self, timeout: float | None = None) -> None:
        """Close the group lock's descriptor once no thread holds, or waits
        for, the lock (at most ``timeout``, default ``request_timeout``):
        closed under a waiter, its next try took a flock on whatever file
        reused the descriptor number, and it wrote the offsets without the
        group lock. One still busy after that keeps the descriptor (closed
        with the process)."""
        if timeout is None:
            timeout = self.request_timeout
        if not self._thread_lock.acquire(timeout=-1 if timeout is None else timeout):
            log.warning("group %r: lock %s still in use by another thread; left open",
                        self.group_id, os.path.join(self.dir, "lock"))
            self._flock = None
            return
        try:
            if self._flock is not None:
                self._flock.close()
                self._flock = None
        finally:
            self._thread_lock.release()

