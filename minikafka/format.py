"""The on-disk byte layout of segments, batches, records and indexes.

Layouts only: the code that builds, checks and decodes batches is in
``batch.py``, segment files in ``segment.py``, index files in ``index.py``.

All integers are little-endian. ``docs/format.md`` repeats these tables
with the recovery rules; keep both in step.

Segment file ``<base offset, 20 digits>.log`` — preallocated to its full
capacity and never shrunk, so a reader's mapping can never run past the end
of the file (SIGBUS)::

    offset size field
    0      4    magic b"MKSG"
    4      2    format version (1)
    6      2    flags: bit 0 = sealed (the segment has rolled; the two
                fields below are final)
    8      8    base offset (i64): offset of the first record
    16     8    capacity (u64): file size in bytes
    24     8    created (i64 ms): when the segment was created (age roll)
    32     8    max timestamp (i64 ms), valid when sealed
    40     8    end offset (i64): next offset after the last record, valid
                when sealed
    48     16   reserved, zero
    64     ...  batches, back to back, then zeros

Batch — one header and one checksum for many records::

    offset size field
    0      4    length (u32): bytes of the whole batch, this field included.
                0 = nothing written here yet; 0xFFFFFFFF = end of segment
                (continue in the segment named by the next offset).
                Written last: it publishes the batch.
    4      8    checksum (u64): xxh3-64 of bytes 12..length, seeded with
                length, so a wrong length fails too
    12     1    batch format version (1)
    13     1    attributes (0; reserved for compression)
    14     2    reserved, zero
    16     8    base offset (i64): offset of the first record
    24     4    record count (u32), at least 1
    28     4    reserved, zero
    32     8    first timestamp (i64 ms): timestamp of the first record
    40     8    max timestamp (i64 ms): largest record timestamp
    48     ...  records; record i has offset base offset + i

Record::

    offset size field
    0      8    timestamp (i64 ms)
    8      4    key length (i32); -1 = null key (distinct from empty)
    12     4    value length (i32); -1 = null value
    16     4    headers length (u32): bytes of the header block; 0 = none
    20     ...  key bytes, value bytes, header block

Header block: count (u16), then per header: name length (u16), name
(UTF-8), value length (i32, -1 = null), value bytes.

Index file ``<base offset>.index`` — a sparse offset index and a time
index as two columns of one preallocated file; no checksum, because it is
rebuilt from the log whenever it disagrees with it::

    offset size field
    0      4    magic b"MKIX"
    4      2    format version (1)
    6      2    reserved, zero
    8      8    base offset (i64), same as the segment's
    16     16   reserved, zero
    32     ...  entries of 16 bytes; the first entry with position 0 ends
                the list (no batch can start at 0)

    entry: relative offset (u32) of a batch, its file position (u32), and
    the max timestamp (i64) of every record before that batch in the
    segment (INT64_MIN for the first), so time lookups skip what cannot
    match.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import InvalidArgumentError

# One version per file format; a reader accepts every version up to its own.
SEGMENT_VERSION = 1  # <base>.log header
BATCH_VERSION = 1  # batch header byte 12
INDEX_VERSION = 1  # <base>.index header
TOPIC_META_VERSION = 1  # topics/<name>/topic.json "format"
DATA_DIR_VERSION = 1  # <data>/minikafka.json "format"
OFFSETS_RECORD_VERSION = 2  # one record of groups/<id>/offsets (its file header: offsets.FILE_VERSION)
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1

SEGMENT_MAGIC = b"MKSG"
SEGMENT_HEADER = struct.Struct("<4sHHqQqqq16x")
SEGMENT_HEADER_SIZE = SEGMENT_HEADER.size  # 64
SEALED = 1
SEG_FLAGS = struct.Struct("<H")
SEG_FLAGS_AT = 6
SEG_SEAL = struct.Struct("<qq")  # max timestamp, end offset
SEG_SEAL_AT = 32

BATCH_HEADER = struct.Struct("<IQBBHqIIqq")
BATCH_HEADER_SIZE = BATCH_HEADER.size  # 48
CHECKSUMMED_FROM = 12
CHECKSUM = struct.Struct("<Q")
CHECKSUM_AT = 4
U32 = struct.Struct("<I")
END_OF_SEGMENT = 0xFFFFFFFF
# Every batch leaves room for one more length word after it: the writer
# zeroes it before publishing (stale bytes of a writer that died are never
# read as a batch) and a roll writes the end-of-segment marker there.
TRAILER_SIZE = 4

RECORD_PREFIX = struct.Struct("<qiiI")
RECORD_PREFIX_SIZE = RECORD_PREFIX.size  # 20

HEADER_COUNT = struct.Struct("<H")
HEADER_NAME_LEN = struct.Struct("<H")
HEADER_VALUE_LEN = struct.Struct("<i")

INDEX_MAGIC = b"MKIX"
INDEX_HEADER = struct.Struct("<4sHHq16x")
INDEX_HEADER_SIZE = INDEX_HEADER.size  # 32
INDEX_ENTRY = struct.Struct("<IIq")
INDEX_ENTRY_SIZE = INDEX_ENTRY.size  # 16

Headers = tuple[tuple[str, bytes | None], ...]
NO_HEADERS: Headers = ()


def segment_name(base_offset: int) -> str:
    return f"{base_offset:020d}.log"


def index_name(base_offset: int) -> str:
    return f"{base_offset:020d}.index"


def is_segment_name(name: str) -> bool:
    return len(name) == 24 and name.endswith(".log") and name[:20].isdigit()


def encode_headers(headers: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> bytes:
    """Encode user headers into a header block.

    Names are ``str``; values bytes-like, ``str`` (encoded UTF-8, as
    confluent-kafka does) or None. ``TypeError`` for a wrong type,
    ``InvalidArgumentError`` for a value the block cannot hold (a name
    over 65535 bytes, more than 65535 headers, text that is not UTF-8).
    """
    items = headers.items() if isinstance(headers, Mapping) else headers
    parts = [b""]
    count = 0
    try:
        iterator = iter(items)
    except TypeError:
        raise TypeError(
            f"headers must be a mapping or a sequence of (name, value) pairs, "
            f"not {type(headers).__name__}"
        ) from None
    for item in iterator:
        try:
            name, value = item
        except (TypeError, ValueError):
            raise TypeError(f"headers: each header must be a (name, value) pair, got {item!r}") from None
        if not isinstance(name, str):
            raise TypeError(f"headers: header name must be str, got {type(name).__name__}")
        raw_name = _utf8(name, "header name")
        if len(raw_name) > 0xFFFF:
            raise InvalidArgumentError(f"headers: header name {name[:40]!r}... is longer than 65535 bytes")
        if value is None:
            parts.append(HEADER_NAME_LEN.pack(len(raw_name)) + raw_name + HEADER_VALUE_LEN.pack(-1))
        else:
            if isinstance(value, str):
                value = _utf8(value, f"value of header {name!r}")
            elif not isinstance(value, (bytes, bytearray, memoryview)):
                raise TypeError(
                    f"headers: value of header {name!r} must be bytes, bytearray, memoryview, "
                    f"str or None, not {type(value).__name__}"
                )
            value = bytes(value)
            parts.append(
                HEADER_NAME_LEN.pack(len(raw_name)) + raw_name
                + HEADER_VALUE_LEN.pack(len(value)) + value
            )
        count += 1
    if count == 0:
        return b""
    if count > 0xFFFF:
        raise InvalidArgumentError(f"headers: at most 65535 headers per record, got {count}")
    parts[0] = HEADER_COUNT.pack(count)
    return b"".join(parts)


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError as e:
        raise InvalidArgumentError(f"headers: {what} {text[:40]!r} is not valid UTF-8 text "
                                   f"({e.reason} at position {e.start})") from None


def decode_headers(data: bytes, p: int) -> Headers:
    """Decode the header block that starts at ``data[p]``."""
    (count,) = HEADER_COUNT.unpack_from(data, p)
    p += 2
    out: list[tuple[str, bytes | None]] = []
    for _ in range(count):
        (nlen,) = HEADER_NAME_LEN.unpack_from(data, p)
        p += 2
        name = data[p : p + nlen].decode()
        p += nlen
        (vlen,) = HEADER_VALUE_LEN.unpack_from(data, p)
        p += 4
        if vlen < 0:
            out.append((name, None))
        else:
            out.append((name, data[p : p + vlen]))
            p += vlen
    return tuple(out)
