"""Unit tests of ``minikafka.batch`` (builder, validation, the walker,
decoding with deserializers), ``minikafka.files`` and the in-memory index."""

from __future__ import annotations

import mmap
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minikafka.batch import (
    BatchBuilder,
    BatchWalker,
    Status,
    batch_checksum,
    build_uniform,
    decode_records,
    read_batch,
    record_size,
)
from minikafka.files import create_preallocated, fsync_directory, unlink_quietly
from minikafka.format import (
    BATCH_HEADER,
    BATCH_HEADER_SIZE,
    BATCH_VERSION,
    END_OF_SEGMENT,
    INT64_MIN,
    SEGMENT_HEADER_SIZE,
    U32,
    encode_headers,
)
from minikafka.index import MemoryIndex, build_entries, index_due

CAP = 8192

records_st = st.lists(
    st.tuples(st.integers(0, 2**40), st.none() | st.binary(max_size=20), st.none() | st.binary(max_size=40)),
    min_size=1, max_size=12,
)


def segment_of(batches: list[bytearray]) -> bytearray:
    mm = bytearray(CAP)
    pos = SEGMENT_HEADER_SIZE
    for b in batches:
        mm[pos : pos + len(b)] = b
        pos += len(b)
    return mm


@given(records_st, st.integers(0, 2**40))
@settings(max_examples=60, deadline=None)
def test_builder_round_trips_through_validation_and_decoding(records, base) -> None:
    b = BatchBuilder(records[0][0])
    for i, (ts, key, value) in enumerate(records):
        assert b.append(ts, key, value) == i
    buf = b.finish(base)
    length, _, version, _, _, hbase, count, _, first_ts, max_ts = BATCH_HEADER.unpack_from(buf, 0)
    assert (length, version, hbase, count) == (len(buf), BATCH_VERSION, base, len(records))
    assert first_ts == records[0][0] and max_ts == max(r[0] for r in records)
    assert len(buf) == BATCH_HEADER_SIZE + sum(record_size(k, v) for _, k, v in records)
    mm = segment_of([buf])
    info = read_batch(mm, SEGMENT_HEADER_SIZE, CAP, base)  # type: ignore[arg-type]
    assert info.status is Status.BATCH and info.count == len(records)
    got, end = decode_records(info.data, BATCH_HEADER_SIZE, info.count, "t", 2, base)
    assert end == len(buf)
    assert [(r.offset, r.timestamp, r.key, r.value) for r in got] == [
        (base + i, ts, k, v) for i, (ts, k, v) in enumerate(records)
    ]


@given(records_st)
@settings(max_examples=40, deadline=None)
def test_deserializers_inside_the_loop_equal_a_second_pass(records) -> None:
    b = BatchBuilder(0)
    for ts, key, value in records:
        b.append(ts, key, value, encode_headers([("h", b"1")]))
    data = bytes(b.finish(0))
    plain, _ = decode_records(data, BATCH_HEADER_SIZE, len(records), "t", 0, 0)
    for kd, vd in ((bytes.hex, None), (None, len), (bytes.hex, len)):
        got, _ = decode_records(data, BATCH_HEADER_SIZE, len(records), "t", 0, 0, kd, vd)
        assert got == [
            r._replace(key=r.key if kd is None or r.key is None else kd(r.key),
                       value=r.value if vd is None or r.value is None else vd(r.value))
            for r in plain
        ]


def test_read_batch_without_verify_checks_the_header_only() -> None:
    b = BatchBuilder(5)
    b.append(5, b"k", b"v")
    buf = b.finish(7)
    buf[-1] ^= 0xFF  # a body byte: the checksum fails
    mm = segment_of([buf])
    assert read_batch(mm, SEGMENT_HEADER_SIZE, CAP, 7).status is Status.INVALID  # type: ignore[arg-type]
    quick = read_batch(mm, SEGMENT_HEADER_SIZE, CAP, 7, verify=False)  # type: ignore[arg-type]
    assert quick.status is Status.BATCH and quick.count == 1 and quick.data == b""
    # The header is still checked: a wrong base offset is not a batch.
    assert read_batch(mm, SEGMENT_HEADER_SIZE, CAP, 8, verify=False).status is Status.INVALID  # type: ignore[arg-type]


def test_a_batch_with_attributes_set_is_not_read_as_plain_records() -> None:
    """Attributes (compression, say) are a layout this release cannot
    decode: a batch that has them, checksum right, is not a batch here."""
    b = BatchBuilder(5)
    b.append(5, b"k", b"v")
    buf = b.finish(7)
    buf[13] = 1  # attributes
    buf[4:12] = batch_checksum(buf, len(buf)).to_bytes(8, "little")
    mm = segment_of([buf])
    for verify in (True, False):
        assert read_batch(mm, SEGMENT_HEADER_SIZE, CAP, 7, verify).status is Status.INVALID  # type: ignore[arg-type]
    buf[13] = 0
    buf[4:12] = batch_checksum(buf, len(buf)).to_bytes(8, "little")
    assert read_batch(segment_of([buf]), SEGMENT_HEADER_SIZE, CAP, 7).status is Status.BATCH  # type: ignore[arg-type]


def test_walker_steps_batches_and_says_why_it_stopped() -> None:
    batches = []
    offset = 100
    for n in (1, 3, 2):
        b = BatchBuilder(1000 + offset)
        for i in range(n):
            b.append(1000 + offset + i, None, b"x" * 10)
        batches.append(b.finish(offset))
        offset += n
    mm = segment_of(batches)
    w = BatchWalker(mm, CAP, SEGMENT_HEADER_SIZE, 100, max_ts=INT64_MIN)  # type: ignore[arg-type]
    seen = [(w.offset, info.count) for info in w]
    assert seen == [(100, 1), (101, 3), (104, 2)]
    assert w.status is Status.EMPTY and w.offset == 106 and w.max_ts == 1000 + 104 + 1
    end = SEGMENT_HEADER_SIZE + sum(map(len, batches))
    assert w.pos == end
    U32.pack_into(mm, end, END_OF_SEGMENT)
    w = BatchWalker(mm, CAP, SEGMENT_HEADER_SIZE, 100)  # type: ignore[arg-type]
    for _info in w:
        if w.offset == 101:
            break  # a break leaves the walker on the batch
    assert (w.offset, w.pos) == (101, SEGMENT_HEADER_SIZE + len(batches[0]))
    assert list(w) and w.status is Status.END


def test_memory_index_equals_what_the_writer_rule_gives() -> None:
    batches = [BatchBuilder(i) for i in range(20)]
    for i, b in enumerate(batches):
        b.append(i, None, b"v" * 50)
        b.finish(i)
    mm = segment_of([b.buf for b in batches])
    size = len(batches[0].buf)
    for interval in (1, size, 3 * size + 1):
        entries = build_entries(mm, CAP, 0, interval)  # type: ignore[arg-type]
        last, want = -(1 << 62), []
        for i in range(20):
            pos = SEGMENT_HEADER_SIZE + i * size
            if index_due(pos, last, interval):
                want.append((i, pos, i - 1 if i else INT64_MIN))
                last = pos
        assert entries == want
        index = MemoryIndex(entries)
        assert index.floor_offset(7) == max((e for e in want if e[0] <= 7), key=lambda e: e[0])
        assert index.floor_time(INT64_MIN) is None


def test_build_uniform_matches_the_builder() -> None:
    keys, values = [b"k%d" % i for i in range(5)], [b"v%d" % i for i in range(5)]
    fast = build_uniform(keys, values, 2, 2, 9, 2)
    assert [b.count for b in fast] == [2, 2, 1]
    slow = BatchBuilder(9)
    for k, v in zip(keys[:2], values[:2], strict=True):
        slow.append(9, k, v)
    assert bytes(fast[0].finish(0)) == bytes(slow.finish(0))


def test_create_preallocated_is_whole_or_absent(tmp_path: Path) -> None:
    path = str(tmp_path / "f")
    create_preallocated(path, 4096, b"HEAD")
    with open(path, "rb") as f:
        data = f.read()
    assert len(data) == 4096 and data[:4] == b"HEAD" and data[4:] == bytes(4092)
    assert not os.path.exists(path + ".tmp")
    with pytest.raises(OSError):
        create_preallocated(str(tmp_path / "missing" / "f"), 4096, b"")
    fsync_directory(str(tmp_path))
    unlink_quietly(path)
    unlink_quietly(path)  # already gone is fine
    assert not os.path.exists(path)


def test_mmap_and_bytes_read_alike(tmp_path: Path) -> None:
    b = BatchBuilder(1)
    b.append(1, b"a", b"b")
    buf = segment_of([b.finish(0)])
    path = tmp_path / "seg"
    path.write_bytes(buf)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        assert read_batch(mm, SEGMENT_HEADER_SIZE, CAP, 0) == read_batch(buf, SEGMENT_HEADER_SIZE, CAP, 0)  # type: ignore[arg-type]
