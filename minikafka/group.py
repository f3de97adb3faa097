"""Consumer-group committed offsets: one small sidecar file per group.

``<data>/groups/<encoded id>/offsets`` is replaced whole on every commit
(write a temporary file, optionally fsync it, rename it over the old one),
so after a crash at any instant a reader finds the old or the new offsets.
A checksum catches the one case rename cannot: a power loss without
``fsync`` that left a file whose data never reached the disk. Commits from
several members are read-modify-write under ``lock`` (flock), so each
member's partitions survive the others' commits.

File format (little-endian)::

    offset size field
    0      4    magic b"MKGO"
    4      2    format version (1)
    6      2    reserved, zero
    8      8    sequence (u64): number of commits so far
    16     4    entry count (u32)
    20     ...  entries: topic length (u16), topic (UTF-8), partition
                (u32), committed offset (i64) = next offset to read
    end-8  8    checksum (u64): xxh3-64 of every byte before it
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from xxhash import xxh3_64_intdigest

from .errors import CorruptLogError, InvalidArgumentError
from .format import FORMAT_VERSION
from .locking import FileLock
from .records import TopicPartition

MAGIC = b"MKGO"
HEADER = struct.Struct("<4sHHQI")
TOPIC_LEN = struct.Struct("<H")
ENTRY_TAIL = struct.Struct("<Iq")
CHECKSUM = struct.Struct("<Q")
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def encode_group_id(group_id: object) -> str:
    """A file name for any group id: ``[A-Za-z0-9_-]`` kept, every other
    byte of the UTF-8 form written ``%XX`` (so no id can reach outside
    ``groups/``, and ``.``/``..`` are impossible)."""
    if not isinstance(group_id, str):
        raise TypeError(f"group_id must be a str, not {type(group_id).__name__}")
    if not group_id:
        raise InvalidArgumentError("group_id must not be empty")
    out = []
    for ch in group_id:
        if ch in _SAFE:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode())
    name = "".join(out)
    if len(name) > 240:
        raise InvalidArgumentError(f"group_id {group_id[:40]!r}... is too long")
    return name


def decode_group_id(name: str) -> str:
    raw = bytearray()
    i = 0
    while i < len(name):
        if name[i] == "%":
            raw.append(int(name[i + 1 : i + 3], 16))
            i += 3
        else:
            raw += name[i].encode()
            i += 1
    return raw.decode()


def encode_offsets(sequence: int, offsets: Mapping[TopicPartition, int]) -> bytes:
    parts = [HEADER.pack(MAGIC, FORMAT_VERSION, 0, sequence, len(offsets))]
    for (topic, partition), offset in sorted(offsets.items()):
        raw = topic.encode()
        parts.append(TOPIC_LEN.pack(len(raw)) + raw + ENTRY_TAIL.pack(partition, offset))
    body = b"".join(parts)
    return body + CHECKSUM.pack(xxh3_64_intdigest(body))


def decode_offsets(data: bytes, path: str) -> tuple[int, dict[TopicPartition, int]]:
    """(sequence, offsets) from a file's bytes; CorruptLogError if damaged."""
    if len(data) < HEADER.size + CHECKSUM.size:
        raise CorruptLogError(f"{path}: group offsets file is truncated ({len(data)} bytes)")
    body, (checksum,) = data[:-8], CHECKSUM.unpack(data[-8:])
    magic, version, _, sequence, count = HEADER.unpack_from(body, 0)
    if magic != MAGIC or xxh3_64_intdigest(body) != checksum:
        raise CorruptLogError(f"{path}: group offsets file fails its checksum")
    if version > FORMAT_VERSION:
        raise CorruptLogError(f"{path}: group offsets format {version} is newer than this minikafka")
    offsets = {}
    p = HEADER.size
    try:
        for _ in range(count):
            (n,) = TOPIC_LEN.unpack_from(body, p)
            if p + 2 + n > len(body):
                raise ValueError("topic name runs past the end")
            topic = body[p + 2 : p + 2 + n].decode()
            p += 2 + n
            partition, offset = ENTRY_TAIL.unpack_from(body, p)
            p += ENTRY_TAIL.size
            offsets[TopicPartition(topic, partition)] = offset
    except (struct.error, ValueError) as e:  # UnicodeDecodeError is a ValueError
        raise CorruptLogError(f"{path}: group offsets file is malformed ({e})") from None
    if p != len(body):
        raise CorruptLogError(f"{path}: group offsets file has {len(body) - p} bytes after its entries")
    return sequence, offsets


class GroupStore:
    """The committed offsets of one group in one data directory."""

    def __init__(self, groups_dir: str, group_id: str, fsync: bool = False) -> None:
        self.group_id = group_id
        self.dir = os.path.join(groups_dir, encode_group_id(group_id))
        self.path = os.path.join(self.dir, "offsets")
        self.fsync = fsync
        self._thread_lock = threading.Lock()
        self._flock: FileLock | None = None

    def _lock(self) -> FileLock:
        if self._flock is None:
            os.makedirs(self.dir, exist_ok=True)
            self._flock = FileLock(os.path.join(self.dir, "lock"))
        return self._flock

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the group lock: commits and membership changes serialize."""
        with self._thread_lock, self._lock():
            yield

    def _read(self) -> tuple[int, dict[TopicPartition, int]]:
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return 0, {}
        return decode_offsets(data, self.path)

    def load(self) -> dict[TopicPartition, int]:
        """Every committed offset of the group."""
        return self._read()[1]

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Merge ``offsets`` into the group's committed offsets, atomically."""
        with self.locked():
            sequence, current = self._read()
            current.update(offsets)
            self._write(sequence + 1, current)

    def forget_topic(self, topic: str) -> None:
        """Drop the offsets of a deleted topic."""
        with self.locked():
            sequence, current = self._read()
            kept = {tp: o for tp, o in current.items() if tp.topic != topic}
            if len(kept) != len(current):
                self._write(sequence + 1, kept)

    def _write(self, sequence: int, offsets: Mapping[TopicPartition, int]) -> None:
        """Replace the file whole: temporary file, (fsync), rename."""
        tmp = f"{self.path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, encode_offsets(sequence, offsets))
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, self.path)
        if self.fsync:
            dfd = os.open(self.dir, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def close(self) -> None:
        if self._flock is not None:
            self._flock.close()
            self._flock = None
