"""Unit tests of ``minikafka.segment`` (segment files, batch validation,
sealing) and ``minikafka.index`` (the sparse offset + time index), and of
index rebuilding by a partition."""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path

import pytest

import minikafka
from minikafka import Broker, Producer
from minikafka.batch import BatchBuilder, Status, batch_checksum, read_batch
from minikafka.format import (
    BATCH_HEADER,
    BATCH_HEADER_SIZE,
    CHECKSUM,
    CHECKSUM_AT,
    END_OF_SEGMENT,
    INDEX_ENTRY,
    INDEX_ENTRY_SIZE,
    INDEX_HEADER,
    INDEX_HEADER_SIZE,
    INDEX_MAGIC,
    INT64_MIN,
    SEGMENT_HEADER,
    SEGMENT_HEADER_SIZE,
    SEGMENT_MAGIC,
    U32,
    index_name,
    segment_name,
)
from minikafka.index import OffsetIndex
from minikafka.reader import locate
from minikafka.segment import Segment, read_seal

CAP = 4096


def make_batch(base: int, values: list[bytes], ts: int = 1000) -> bytearray:
    b = BatchBuilder(ts)
    for i, v in enumerate(values):
        b.append(ts + i, None, v)
    return b.finish(base)


def put(mm: mmap.mmap, pos: int, buf: bytes) -> int:
    mm[pos : pos + len(buf)] = buf
    return pos + len(buf)


@pytest.fixture
def seg(tmp_path: Path):
    Segment.create(str(tmp_path), 100, CAP)
    s = Segment.open(str(tmp_path), 100, writable=True)
    yield s
    s.close()


# -- segment files ----------------------------------------------------------------


def test_create_makes_a_full_size_zeroed_file_with_a_header(tmp_path: Path) -> None:
    Segment.create(str(tmp_path), 7, CAP)
    path = tmp_path / segment_name(7)
    raw = path.read_bytes()
    assert len(raw) == CAP
    magic, version, flags, base, capacity, created, max_ts, end = SEGMENT_HEADER.unpack_from(raw, 0)
    assert (magic, version, flags, base, capacity, max_ts, end) == (SEGMENT_MAGIC, 1, 0, 7, CAP, 0, 0)
    assert created > 0
    assert raw[SEGMENT_HEADER_SIZE:] == bytes(CAP - SEGMENT_HEADER_SIZE)
    assert [p.name for p in tmp_path.iterdir()] == [segment_name(7)]  # no temporary left


def test_open_missing_segment_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Segment.open(str(tmp_path), 0)


@pytest.mark.parametrize(
    ("where", "data", "match"),
    [
        (0, b"XXXX", "not a minikafka segment"),
        (8, struct.pack("<q", 99), "not a minikafka segment"),  # base offset not the name's
        (4, struct.pack("<H", 2), "newer"),
    ],
)
def test_open_rejects_a_bad_header(tmp_path: Path, where: int, data: bytes, match: str) -> None:
    Segment.create(str(tmp_path), 0, CAP)
    with open(tmp_path / segment_name(0), "r+b") as f:
        f.seek(where)
        f.write(data)
    for writable in (False, True):
        with pytest.raises(minikafka.CorruptLogError, match=match):
            Segment.open(str(tmp_path), 0, writable=writable)


def test_open_rejects_a_tiny_file(tmp_path: Path) -> None:
    (tmp_path / segment_name(0)).write_bytes(b"MKSG")
    with pytest.raises(minikafka.CorruptLogError, match="only 4 bytes"):
        Segment.open(str(tmp_path), 0)


def test_short_file_reads_to_its_end_and_a_writer_regrows_it(tmp_path: Path) -> None:
    Segment.create(str(tmp_path), 0, CAP)
    path = tmp_path / segment_name(0)
    os.truncate(path, 1000)
    s = Segment.open(str(tmp_path), 0)
    assert s.capacity == 1000 and s.fd == -1  # read-only: no descriptor kept
    s.close()
    assert path.stat().st_size == 1000  # a reader never changes the file
    s = Segment.open(str(tmp_path), 0, writable=True)
    assert s.capacity == CAP
    s.close()
    assert path.stat().st_size == CAP


def test_create_uses_a_spare_of_the_right_size(tmp_path: Path) -> None:
    spare = tmp_path / "spare-abc.seg"
    spare.write_bytes(bytes(CAP))
    wrong = tmp_path / "spare-old.seg"
    wrong.write_bytes(bytes(100))
    Segment.create(str(tmp_path), 5, CAP)
    assert not spare.exists()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert segment_name(5) in names
    raw = (tmp_path / segment_name(5)).read_bytes()
    assert SEGMENT_HEADER.unpack_from(raw, 0)[3] == 5 and len(raw) == CAP


# -- read_batch statuses --------------------------------------------------------------


def test_read_batch_statuses(seg: Segment) -> None:
    mm = seg.mm
    pos = SEGMENT_HEADER_SIZE
    assert read_batch(mm, pos, CAP, 100).status is Status.EMPTY
    b1 = make_batch(100, [b"a", b"bb"])
    end1 = put(mm, pos, b1)
    info = read_batch(mm, pos, CAP, 100)
    assert info.status is Status.BATCH
    assert (info.length, info.base_offset, info.count, info.max_timestamp) == (len(b1), 100, 2, 1001)
    assert info.data == bytes(b1)
    assert read_batch(mm, end1, CAP, 102).status is Status.EMPTY
    U32.pack_into(mm, end1, END_OF_SEGMENT)
    assert read_batch(mm, end1, CAP, 102).status is Status.END
    # The same valid batch, asked for at another offset, is not the batch there.
    assert read_batch(mm, pos, CAP, 101).status is Status.INVALID
    # Too close to the end to hold a length word: nothing there.
    assert read_batch(mm, CAP - 3, CAP, 0).status is Status.EMPTY


@pytest.mark.parametrize(
    "damage",
    ["short-length", "length-48", "past-capacity", "no-room-for-trailer", "count-0", "version-2",
     "checksum", "body-byte", "attributes", "reserved"],
)
def test_read_batch_invalid(seg: Segment, damage: str) -> None:
    mm = seg.mm
    pos = SEGMENT_HEADER_SIZE
    buf = make_batch(100, [b"hello"])
    n = len(buf)
    if damage == "short-length":
        U32.pack_into(buf, 0, 10)
    elif damage == "length-48":
        U32.pack_into(buf, 0, BATCH_HEADER_SIZE)
    elif damage == "past-capacity":
        U32.pack_into(buf, 0, CAP)
    elif damage in ("count-0", "version-2"):
        fields = list(BATCH_HEADER.unpack_from(buf, 0))
        fields[6 if damage == "count-0" else 2] = 0 if damage == "count-0" else 2
        BATCH_HEADER.pack_into(buf, 0, *fields)
        CHECKSUM.pack_into(buf, CHECKSUM_AT, batch_checksum(buf, n))  # checksum still fine
    elif damage == "checksum":
        buf[5] ^= 1
    elif damage == "body-byte":
        buf[-1] ^= 1
    elif damage == "attributes":
        buf[13] = 1
    elif damage == "reserved":
        buf[30] = 1
    if damage == "no-room-for-trailer":
        pos = CAP - n - 3  # a whole batch, but no room for the next length word
    put(mm, pos, buf)
    assert read_batch(mm, pos, CAP, 100).status is Status.INVALID


def test_seal(seg: Segment, tmp_path: Path) -> None:
    assert not seg.sealed and seg.seal_info() is None
    assert read_seal(str(tmp_path), 100) is None
    end = put(seg.mm, SEGMENT_HEADER_SIZE, make_batch(100, [b"x"] * 3, ts=5000))
    seg.seal(end, 5002, 103)
    assert seg.sealed
    assert seg.seal_info() == (5002, 103)
    assert read_batch(seg.mm, end, CAP, 103).status is Status.END
    seg.mm.flush()
    assert read_seal(str(tmp_path), 100) == (5002, 103)
    raw = (tmp_path / segment_name(100)).read_bytes()
    assert struct.unpack_from("<H", raw, 6)[0] & 1
    assert read_seal(str(tmp_path), 999) is None  # missing file


def test_read_seal_of_damaged_header_is_none(tmp_path: Path) -> None:
    Segment.create(str(tmp_path), 0, CAP)
    (tmp_path / segment_name(0)).write_bytes(b"MKSG\x01\x00\x01\x00")  # short
    assert read_seal(str(tmp_path), 0) is None


# -- the index file -----------------------------------------------------------------


@pytest.fixture
def index(tmp_path: Path):
    OffsetIndex.create(str(tmp_path), 100, OffsetIndex.size_for(CAP, 512))
    ix = OffsetIndex.open(str(tmp_path), 100, writable=True)
    assert ix is not None
    yield ix
    ix.close()


def test_index_create_layout(tmp_path: Path, index: OffsetIndex) -> None:
    raw = (tmp_path / index_name(100)).read_bytes()
    assert len(raw) == INDEX_HEADER_SIZE + (CAP // 512 + 2) * INDEX_ENTRY_SIZE
    assert INDEX_HEADER.unpack_from(raw, 0) == (INDEX_MAGIC, 1, 0, 100)
    assert raw[16:32] == bytes(16)
    assert index.count == 0 and index.slots == CAP // 512 + 2


def test_index_append_and_floor_lookups(tmp_path: Path, index: OffsetIndex) -> None:
    entries = [(0, 64, INT64_MIN), (5, 700, 50), (9, 1300, 50), (20, 2000, 90)]
    for e in entries:
        index.append(*e)
    assert index.count == 4
    assert [index.entry(i) for i in range(4)] == entries
    assert index.floor_offset(0) == entries[0]
    assert index.floor_offset(4) == entries[0]
    assert index.floor_offset(5) == entries[1]
    assert index.floor_offset(19) == entries[2]
    assert index.floor_offset(10**6) == entries[3]
    # floor_time: the last entry before which every record is older than ts.
    assert index.floor_time(INT64_MIN) is None
    assert index.floor_time(50) == entries[0]
    assert index.floor_time(51) == entries[2]
    assert index.floor_time(90) == entries[2]
    assert index.floor_time(91) == entries[3]
    # The bytes on disk are the documented entries.
    raw = (tmp_path / index_name(100)).read_bytes()
    assert INDEX_ENTRY.unpack_from(raw, INDEX_HEADER_SIZE + INDEX_ENTRY_SIZE) == (5, 700, 50)
    # Another mapping counts the entries by finding the first position 0.
    other = OffsetIndex.open(str(tmp_path), 100)
    assert other is not None and other.count == 4
    index.append(30, 2500, 95)
    other.refresh()
    assert other.count == 5
    other.close()


def test_index_floor_offset_of_empty_index(index: OffsetIndex) -> None:
    assert index.floor_offset(10) is None
    assert index.floor_time(10) is None


def test_index_truncate_and_full(tmp_path: Path, index: OffsetIndex) -> None:
    for i in range(index.slots + 3):  # appends past the last slot are dropped
        index.append(i, 64 + i * 100, i)
    assert index.count == index.slots
    index.truncate_entries(2)
    assert index.count == 2
    again = OffsetIndex.open(str(tmp_path), 100)
    assert again is not None and again.count == 2
    raw = (tmp_path / index_name(100)).read_bytes()
    assert raw[INDEX_HEADER_SIZE + 2 * INDEX_ENTRY_SIZE :] == bytes(len(raw) - INDEX_HEADER_SIZE - 32)
    again.close()


@pytest.mark.parametrize(
    "damage", ["missing", "empty", "short", "magic", "base", "newer-version"]
)
def test_index_open_returns_none_when_unusable(tmp_path: Path, damage: str) -> None:
    OffsetIndex.create(str(tmp_path), 100, OffsetIndex.size_for(CAP, 512))
    path = tmp_path / index_name(100)
    raw = bytearray(path.read_bytes())
    if damage == "missing":
        path.unlink()
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "short":
        path.write_bytes(raw[: INDEX_HEADER_SIZE + INDEX_ENTRY_SIZE - 1])
    else:
        at, value = {"magic": (0, b"MKIY"), "base": (8, struct.pack("<q", 1)),
                     "newer-version": (4, struct.pack("<H", 2))}[damage]
        raw[at : at + len(value)] = value
        path.write_bytes(bytes(raw))
    assert OffsetIndex.open(str(tmp_path), 100) is None
    assert OffsetIndex.open(str(tmp_path), 100, writable=True) is None


# -- index rebuild by a partition ----------------------------------------------------


def _build(path: Path, interval: int) -> list[int]:
    with Broker(path, segment_bytes=CAP, index_interval_bytes=interval) as broker:
        broker.create_topic("t")
        with Producer(broker, linger_ms=0) as p:
            for i in range(60):
                p.send("t", b"%03d" % i + b"v" * 100, timestamp_ms=10_000 + 10 * i).result()
    pdir = path / "topics" / "t" / "0"
    return sorted(int(p.name[:20]) for p in pdir.glob("*.log"))


@pytest.mark.parametrize("interval", [1, 300, 4096])
def test_rebuilt_index_equals_the_written_one(tmp_path: Path, interval: int) -> None:
    path = tmp_path / "data"
    bases = _build(path, interval)
    assert len(bases) >= 2
    pdir = path / "topics" / "t" / "0"
    originals = {b: (pdir / index_name(b)).read_bytes() for b in bases}
    for b in bases:
        (pdir / index_name(b)).unlink()
    with Broker(path) as broker:
        part = broker.topic("t").partition(0)
        # A lookup in a sealed segment without its index uses an index built
        # in memory, finds the right batch and writes nothing.
        for b in bases[:-1]:
            seg = Segment.open(str(pdir), b)
            try:
                pos, boff = locate(part, seg, b + 3)
                assert boff <= b + 3 and read_batch(seg.mm, pos, seg.capacity, boff).status is Status.BATCH
            finally:
                seg.close()
            assert not (pdir / index_name(b)).exists()
        assert broker.topic("t").end_offsets() == {0: 60}
        assert not any(pdir.glob("*.index"))  # end_offset is read-only too
        # The writer rebuilds every index file: sealed ones as readers
        # reported them, the active one with the tail.
        part.recover()
        for b in bases:
            assert (pdir / index_name(b)).read_bytes() == originals[b]
        assert part.offset_for_time(10_000 + 10 * 37) == 37
        assert part.offset_for_time(10_000 + 10 * 37 - 5) == 37
        assert part.offset_for_time(10_000 + 10 * 60) is None


def test_locate_uses_the_index_and_checks_it(tmp_path: Path) -> None:
    path = tmp_path / "data"
    bases = _build(path, 1)
    pdir = path / "topics" / "t" / "0"
    with Broker(path) as broker:
        part = broker.topic("t").partition(0)
        seg = Segment.open(str(pdir), bases[0])
        try:
            pos, boff = locate(part, seg, 5)
            assert boff == 5 and pos > SEGMENT_HEADER_SIZE  # one batch per record, every one indexed
            info = read_batch(seg.mm, pos, seg.capacity, 5)
            assert info.status is Status.BATCH
            # An entry that points at the wrong place is caught: the reader
            # uses an index built in memory, and the writer rebuilds the file.
            with open(pdir / index_name(bases[0]), "r+b") as f:
                f.seek(INDEX_HEADER_SIZE + 5 * INDEX_ENTRY_SIZE + 4)
                f.write(struct.pack("<I", pos + 1))
            damaged = (pdir / index_name(bases[0])).read_bytes()
            assert locate(part, seg, 5) == (pos, 5)
            assert (pdir / index_name(bases[0])).read_bytes() == damaged
            part.recover()
            assert (pdir / index_name(bases[0])).read_bytes() != damaged
            assert locate(part, seg, 5) == (pos, 5)
        finally:
            seg.close()


def test_an_index_interval_below_the_smallest_batch_sizes_the_index_by_batches(tmp_path: Path) -> None:
    # index_interval_bytes=1 used to preallocate 16 bytes per segment byte
    # (a 256 MiB index for a 16 MiB segment); one entry per batch is the most
    # a segment can get, and every batch still gets its entry.
    seg_bytes = 64 * 1024
    with Broker(tmp_path / "data", segment_bytes=seg_bytes, index_interval_bytes=1) as broker:
        broker.create_topic("t")
        with Producer(broker, linger_ms=0) as p:
            for _ in range(2000):  # smallest batches: one record, no key or value
                p.send("t", None).result()
    pdir = tmp_path / "data" / "topics" / "t" / "0"
    bases = sorted(int(f.name[:20]) for f in pdir.glob("*.log"))
    assert len(bases) >= 2
    size = (pdir / index_name(bases[0])).stat().st_size
    assert size <= seg_bytes // 4
    index = OffsetIndex.open(str(pdir), bases[0])
    assert index is not None
    try:
        assert index.count == bases[1] - bases[0]  # one entry per batch (one record each), none skipped
    finally:
        index.close()
