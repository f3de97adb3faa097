"""The record batch, end to end: build, validate, walk, decode.

The layout is in ``format.py`` (and ``docs/format.md``); this module is the
only code that reads or writes it. ``BatchWalker`` is the one loop over the
batches of a segment: recovery, index rebuild, following other writers, the
reader and time lookups all step through a segment with it.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Iterator
from enum import Enum
from typing import Any, NamedTuple

from xxhash import xxh3_64_intdigest

from .format import (
    BATCH_HEADER,
    BATCH_HEADER_SIZE,
    BATCH_VERSION,
    CHECKSUM,
    CHECKSUM_AT,
    CHECKSUMMED_FROM,
    END_OF_SEGMENT,
    INT64_MIN,
    NO_HEADERS,
    RECORD_PREFIX,
    RECORD_PREFIX_SIZE,
    SEGMENT_HEADER_SIZE,
    TRAILER_SIZE,
    U32,
    decode_headers,
)
from .records import Record

_BATCH_PLACEHOLDER = bytes(BATCH_HEADER_SIZE)
pack_prefix = RECORD_PREFIX.pack
_unpack_prefix = RECORD_PREFIX.unpack_from


def batch_checksum(buf: Any, length: int) -> int:
    """Checksum of a whole batch held in ``buf`` (bytes-like, from byte 0):
    xxh3-64 of bytes 12..length seeded with the length."""
    with memoryview(buf) as mv:
        return xxh3_64_intdigest(mv[CHECKSUMMED_FROM:length], seed=length)


# -- building -------------------------------------------------------------------


class BatchBuilder:
    """One batch being filled: a placeholder header, then encoded records.

    ``buf``, ``count`` and ``max_ts`` are public so that the producer's
    ``send`` fast path can append a record inline (a method call there
    costs every record, see benchmarks/); everything else calls
    :meth:`append`.
    """

    __slots__ = ("buf", "count", "first_ts", "max_ts")

    def __init__(self, first_ts: int) -> None:
        self.buf = bytearray(_BATCH_PLACEHOLDER)
        self.count = 0
        self.first_ts = first_ts
        self.max_ts = first_ts

    def __len__(self) -> int:
        return len(self.buf)

    def append(self, ts: int, key: bytes | None, value: bytes | None, headers: bytes = b"") -> int:
        """Encode one record; returns its index in the batch."""
        buf = self.buf
        buf += pack_prefix(ts, -1 if key is None else len(key), -1 if value is None else len(value),
                           len(headers))
        if key:
            buf += key
        if value:
            buf += value
        if headers:
            buf += headers
        n = self.count
        self.count = n + 1
        if ts > self.max_ts:
            self.max_ts = ts
        return n

    def finish(self, base_offset: int) -> bytearray:
        """Fill in the header (length, base offset, count, timestamps) and
        the checksum; returns the whole batch, ready to write."""
        buf = self.buf
        n = len(buf)
        BATCH_HEADER.pack_into(buf, 0, n, 0, BATCH_VERSION, 0, 0, base_offset, self.count, 0,
                               self.first_ts, self.max_ts)
        CHECKSUM.pack_into(buf, CHECKSUM_AT, batch_checksum(buf, n))
        return buf


def record_size(key: bytes | None, value: bytes | None, headers: bytes = b"") -> int:
    """Bytes one record takes in a batch."""
    return RECORD_PREFIX_SIZE + (len(key) if key else 0) + (len(value) if value else 0) + len(headers)


def build_uniform(keys: list[bytes] | None, values: list[bytes], klen: int, vlen: int, ts: int,
                  per_batch: int) -> list[BatchBuilder]:
    """Batches of records whose keys and values each have one length: every
    record then starts with the same 20-byte prefix, so a batch is the join
    of [prefix, key, value, prefix, ...], built by slice assignment and
    joined in C (benchmarks/: "produce: send_many() bulk")."""
    prefix = pack_prefix(ts, klen, vlen, 0)
    columns = [c for c, n in ((keys, klen), (values, vlen)) if n > 0]
    width = 1 + len(columns)
    out = []
    for start in range(0, len(values), per_batch):
        stop = min(start + per_batch, len(values))
        parts = [prefix] * ((stop - start) * width)
        for i, column in enumerate(columns, 1):
            parts[i::width] = column[start:stop]  # type: ignore[index]
        b = BatchBuilder(ts)
        b.buf += b"".join(parts)
        b.count = stop - start
        out.append(b)
    return out


# -- validating -------------------------------------------------------------------


class Status(Enum):
    BATCH = "batch"  # a whole, valid batch
    EMPTY = "empty"  # nothing written here yet
    END = "end"  # end-of-segment marker: continue in the next segment
    INVALID = "invalid"  # short, garbled or checksum-failing bytes


class BatchInfo(NamedTuple):
    status: Status
    length: int = 0
    base_offset: int = 0
    count: int = 0  # type: ignore[assignment]  # shadows tuple.count, never called on BatchInfo
    max_timestamp: int = 0
    data: bytes = b""


_EMPTY = BatchInfo(Status.EMPTY)
_END = BatchInfo(Status.END)
_INVALID = BatchInfo(Status.INVALID)
_unpack_header = BATCH_HEADER.unpack_from


def read_batch(mm: mmap.mmap, pos: int, capacity: int, expected_offset: int,
               verify: bool = True) -> BatchInfo:
    """Validate the batch at ``pos``; its base offset must be ``expected_offset``.

    ``verify``: copy the bytes out once (``data``, so the caller can decode
    them without holding a view of the mapping) and check the checksum.
    Without it only the length word and header are checked and ``data`` is
    empty: enough to follow batches another writer published (the length
    word is written last, after the whole body), not to trust bytes a crash
    may have left (recovery and readers verify).
    """
    if pos + TRAILER_SIZE > capacity:
        return _EMPTY
    (length,) = U32.unpack_from(mm, pos)
    if length == 0:
        return _EMPTY
    if length == END_OF_SEGMENT:
        # A writer seals only a segment holding a batch: a marker in the
        # first place is damage (followed, it named this segment again).
        return _END if pos > SEGMENT_HEADER_SIZE else _INVALID
    if length <= BATCH_HEADER_SIZE or pos + length + TRAILER_SIZE > capacity:
        return _INVALID
    if not verify:
        (_, _, version, attributes, _, base, count, _, _, max_ts) = _unpack_header(mm, pos)
        if base != expected_offset or count == 0 or version != BATCH_VERSION or attributes:
            return _INVALID
        return BatchInfo(Status.BATCH, length, base, count, max_ts)
    data = mm[pos : pos + length]
    # Non-zero attributes (compression, say) would be a layout these
    # records are not in: such a batch is one this release cannot read.
    (_, checksum, version, attributes, _, base, count, _, _, max_ts) = _unpack_header(data, 0)
    if base != expected_offset or count == 0 or version != BATCH_VERSION or attributes:
        return _INVALID
    with memoryview(data) as mv:
        if xxh3_64_intdigest(mv[CHECKSUMMED_FROM:], seed=length) != checksum:
            return _INVALID
    return BatchInfo(Status.BATCH, length, base, count, max_ts, data)


def valid_batch_after(mm: mmap.mmap, capacity: int, pos: int) -> bool:
    """Does a valid batch follow the invalid one at ``pos``, taking its
    length word and header at face value? Then it is damage, not a torn
    tail: a crash tears only the last batch written."""
    (length,) = U32.unpack_from(mm, pos)
    if length <= BATCH_HEADER_SIZE or pos + length + TRAILER_SIZE > capacity:
        return False
    fields = BATCH_HEADER.unpack_from(mm, pos)
    return read_batch(mm, pos + length, capacity, fields[5] + fields[6]).status is Status.BATCH


class BatchWalker:
    """Steps through the batches of one segment from ``pos``/``offset``.

    ``for info in walker`` yields each valid batch with ``walker.pos`` and
    ``walker.offset`` still at that batch, and advances past it when the
    loop continues; a ``break`` leaves the walker on the batch. When the
    loop ends by itself, ``walker.status`` says why (EMPTY, END, INVALID)
    and ``pos``/``offset`` are where that was found. ``max_ts`` is the
    largest record timestamp stepped over (starting from ``max_ts``).
    """

    __slots__ = ("capacity", "max_ts", "mm", "offset", "pos", "status", "verify")

    def __init__(self, mm: mmap.mmap, capacity: int, pos: int, offset: int, verify: bool = True,
                 max_ts: int = INT64_MIN) -> None:
        self.mm, self.capacity, self.verify = mm, capacity, verify
        self.pos, self.offset, self.max_ts = pos, offset, max_ts
        self.status = Status.BATCH

    def peek(self) -> BatchInfo:
        """The batch (or marker) at the current position; does not move."""
        info = read_batch(self.mm, self.pos, self.capacity, self.offset, self.verify)
        self.status = info.status
        return info

    def advance(self, info: BatchInfo) -> None:
        """Move past ``info``, the batch :meth:`peek` returned."""
        self.pos += info.length
        self.offset += info.count
        if info.max_timestamp > self.max_ts:
            self.max_ts = info.max_timestamp

    def __iter__(self) -> Iterator[BatchInfo]:
        while True:
            info = self.peek()
            if info.status is not Status.BATCH:
                return
            yield info
            self.advance(info)


# -- decoding ---------------------------------------------------------------------


def skip_records(data: bytes, p: int, n: int) -> int:
    """Byte position after skipping ``n`` records that start at ``data[p]``."""
    unpack = _unpack_prefix
    for _ in range(n):
        _, klen, vlen, hlen = unpack(data, p)
        p += RECORD_PREFIX_SIZE + (klen if klen > 0 else 0) + (vlen if vlen > 0 else 0) + hlen
    return p


def record_timestamps(data: bytes, p: int, n: int) -> list[int]:
    """Timestamps of ``n`` records starting at byte ``p`` (for time lookups)."""
    unpack = _unpack_prefix
    out = []
    for _ in range(n):
        ts, klen, vlen, hlen = unpack(data, p)
        out.append(ts)
        p += RECORD_PREFIX_SIZE + (klen if klen > 0 else 0) + (vlen if vlen > 0 else 0) + hlen
    return out


_new_record = tuple.__new__


def decode_records(
    data: bytes,
    p: int,
    n: int,
    topic: str,
    partition: int,
    offset: int,
    key_deserializer: Callable[[bytes], Any] | None = None,
    value_deserializer: Callable[[bytes], Any] | None = None,
) -> tuple[list[Record], int]:
    """Decode ``n`` records starting at byte ``p``; the first has ``offset``.

    Returns the records and the byte position after the last one. This is
    the consumer's hot loop: one ``unpack_from`` and a few slices a record;
    the deserializers run inside it (a null key or value stays None, as
    ``send`` passes None through).
    """
    unpack = _unpack_prefix
    out: list[Record] = []
    append = out.append
    kd, vd = key_deserializer, value_deserializer
    for off in range(offset, offset + n):
        ts, klen, vlen, hlen = unpack(data, p)
        p += RECORD_PREFIX_SIZE
        if klen >= 0:
            key = data[p : p + klen] if kd is None else kd(data[p : p + klen])
            p += klen
        else:
            key = None
        if vlen >= 0:
            value = data[p : p + vlen] if vd is None else vd(data[p : p + vlen])
            p += vlen
        else:
            value = None
        if hlen:
            headers = decode_headers(data, p)
            p += hlen
        else:
            headers = NO_HEADERS
        append(_new_record(Record, (topic, partition, off, ts, key, value, headers)))
    return out, p
