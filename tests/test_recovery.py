"""Crash recovery of the log: torn tails, garbage, flipped bytes, lost or
garbled indexes, half-done rolls, kill -9 of a producing process, and
damage in sealed segments.

Every case starts from a log template written once per module and copied
(``shutil.copytree``) per case, is damaged with the broker closed, and is
then checked by reopening: every whole batch before the damage reads back
intact, nothing damaged is returned, ``end_offsets`` is right, and new
appends get the next dense offsets.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import minikafka
from minikafka import Broker, Consumer, Producer, TopicPartition
from minikafka.format import (
    BATCH_HEADER,
    END_OF_SEGMENT,
    INDEX_ENTRY,
    INDEX_ENTRY_SIZE,
    INDEX_HEADER,
    INDEX_HEADER_SIZE,
    INDEX_MAGIC,
    SEG_FLAGS_AT,
    SEGMENT_HEADER,
    SEGMENT_HEADER_SIZE,
    SEGMENT_MAGIC,
    TRAILER_SIZE,
    U32,
)
from minikafka.locking import FileLock

SEG = 4096
T0 = 1_700_000_000_000
TP = TopicPartition("t", 0)

Rec = tuple  # (topic, partition, offset, timestamp, key, value, headers)


# -- helpers ------------------------------------------------------------------


def pdir(data: Path) -> Path:
    return data / "topics" / "t" / "0"


def seg_path(data: Path, base: int) -> Path:
    return pdir(data) / f"{base:020d}.log"


def idx_path(data: Path, base: int) -> Path:
    return pdir(data) / f"{base:020d}.index"


def seg_bases(data: Path) -> list[int]:
    return sorted(int(p.name[:20]) for p in pdir(data).glob("*.log"))


def spans(path: Path) -> list[tuple[int, int, int, int]]:
    """(position, length, base offset, count) of each published batch."""
    data = path.read_bytes()
    out = []
    pos = SEGMENT_HEADER_SIZE
    while pos + BATCH_HEADER.size <= len(data):
        (length,) = U32.unpack_from(data, pos)
        if length in (0, END_OF_SEGMENT):
            break
        fields = BATCH_HEADER.unpack_from(data, pos)
        out.append((pos, length, fields[5], fields[6]))
        pos += length
    return out


def tail_pos(path: Path) -> int:
    """Position right after the last published batch of a segment."""
    s = spans(path)
    return s[-1][0] + s[-1][1] if s else SEGMENT_HEADER_SIZE


def patch(path: Path, pos: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(pos)
        f.write(data)


def read_all(broker: Broker, start: int = 0) -> list[Rec] | None:
    """Every record from ``start`` on, through the lock-free reader."""
    reader = broker.topic("t").partition(0).reader()
    try:
        if not reader.seek(start):
            return None
        out: list[Rec] = []
        while True:
            got = reader.read(10_000)
            if not got:
                return out
            out += [tuple(r) for r in got]
    finally:
        reader.close()


def consume_all(broker: Broker) -> list[Rec]:
    """Every record, through a Consumer (the public path)."""
    end = broker.topic("t").end_offsets()[0]
    out: list[Rec] = []
    with Consumer(broker, auto_offset_reset="earliest") as c:
        c.assign([TP])
        deadline = time.monotonic() + 5
        while c.position(TP) < end and time.monotonic() < deadline:
            out += [tuple(r) for r in c.poll(timeout=0.05)]
    return out


def write_batches(broker: Broker, batches: list[list[tuple]]) -> list[Rec]:
    """Write each inner list as one batch; return the records as read back."""
    expected: list[Rec] = []
    with Producer(broker, linger_ms=60_000, batch_size=1 << 20) as p:
        for batch in batches:
            futures = [
                p.send("t", value, key=key, headers=headers, timestamp_ms=ts)
                for key, value, headers, ts in batch
            ]
            p.flush()
            for f, (key, value, headers, ts) in zip(futures, batch, strict=True):
                md = f.result()
                hdrs = tuple((n, v) for n, v in (headers or ()))
                expected.append(("t", 0, md.offset, ts, key, value, hdrs))
    return expected


def append_more(broker: Broker, start: int, n: int = 2) -> list[Rec]:
    """Append one batch of ``n`` records; check and return them."""
    values = [b"after-recovery-%d-%d" % (start, i) for i in range(n)]
    keys = [b"ak%d" % i for i in range(n)]
    with Producer(broker, linger_ms=0) as p:
        result = p.send_many("t", values, keys=keys, timestamp_ms=T0 + 999_999)
    assert [md.offset for md in result.metadata()] == list(range(start, start + n))
    return [("t", 0, start + i, T0 + 999_999, keys[i], values[i], ()) for i in range(n)]


def check_recovered(data: Path, expected: list[Rec], end: int, *, full: bool = False) -> None:
    """Reopen ``data``: the first ``end`` records survive intact and nothing
    else is returned; the log takes new records at ``end``."""
    with Broker(data) as broker:
        # Readers before any writer has recovered the tail.
        assert read_all(broker) == expected[:end]
        assert broker.topic("t").end_offsets() == {0: end}
        assert read_all(broker) == expected[:end]
        more = append_more(broker, end)
        assert read_all(broker) == expected[:end] + more
        if full:
            assert consume_all(broker) == expected[:end] + more
    if full:  # and the repaired log reopens as it was left
        with Broker(data) as broker:
            assert broker.topic("t").end_offsets() == {0: end + len(more)}
            assert read_all(broker) == expected[:end] + more


def payload(i: int, size: int) -> bytes:
    head = b"%05d|" % i
    return head + bytes(65 + (i + j) % 26 for j in range(max(0, size - len(head))))


# -- templates ----------------------------------------------------------------


class Template:
    def __init__(self, path: Path, expected: list[Rec]) -> None:
        self.path = path
        self.expected = expected

    def copy(self, dest: Path) -> Path:
        shutil.copytree(self.path, dest)
        return dest


def _single_segment_batches() -> list[list[tuple]]:
    return [
        [(b"k%d" % i, payload(i, 30), None, T0 + i) for i in range(5)],
        [(None, b"", [("dup", b"1"), ("dup", b"2")], T0 + 10)],
        [(b"", None, None, T0 + 12), (b"x", b"y", [("h", b"")], T0 + 11)],
        [(b"k3", payload(3, 100), [("n", None)], T0 + 20)],
        # The last batch: what the tail tests damage. Its last byte is not 0.
        [
            (b"last%d" % i, payload(i, 25), [("a", b"1"), ("a", b"22"), ("zz", b"end")], T0 + 30 + i)
            for i in range(3)
        ],
    ]


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """One segment of five batches, every batch indexed."""
    path = tmp_path_factory.mktemp("single") / "data"
    with Broker(path, segment_bytes=SEG, index_interval_bytes=1) as broker:
        broker.create_topic("t")
        expected = write_batches(broker, _single_segment_batches())
    assert seg_bases(path) == [0]
    assert len(spans(seg_path(path, 0))) == 5
    return Template(path, expected)


@pytest.fixture(scope="module")
def sparse(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """The same batches with the default index interval: only the first
    batch is indexed."""
    path = tmp_path_factory.mktemp("sparse") / "data"
    with Broker(path, segment_bytes=SEG) as broker:
        broker.create_topic("t")
        expected = write_batches(broker, _single_segment_batches())
    return Template(path, expected)


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """Several segments of 3-record batches with increasing timestamps; the
    last segment holds one batch."""
    path = tmp_path_factory.mktemp("multi") / "data"
    with Broker(path, segment_bytes=SEG, index_interval_bytes=700) as broker:
        broker.create_topic("t")
        batches = [
            [(b"m%d" % (3 * b + i), payload(3 * b + i, 150), [("b", b"%d" % b)], T0 + 100 * b + 10 * i)
             for i in range(3)]
            for b in range(30)
        ]
        expected: list[Rec] = []
        for batch in batches:
            expected += write_batches(broker, [batch])
            bases = seg_bases(path)
            if len(bases) >= 4 and len(spans(seg_path(path, bases[-1]))) == 1:
                break
    bases = seg_bases(path)
    assert len(bases) >= 4 and len(spans(seg_path(path, bases[-1]))) == 1
    return Template(path, expected)


def last_batch(data: Path) -> tuple[Path, int, int, int]:
    """(segment, position, length, base offset) of the log's last batch."""
    path = seg_path(data, seg_bases(data)[-1])
    pos, length, base, _ = spans(path)[-1]
    return path, pos, length, base


# -- (a) garbage after the last batch ------------------------------------------


def _garbage_cases(template: Template) -> dict[str, Callable[[bytes, int], bytes]]:
    tail = tail_pos(seg_path(template.path, 0))
    end = len(template.expected)
    rng = random.Random(7)

    def batch_like() -> bytes:
        length = 200
        header = BATCH_HEADER.pack(length, 0x1234, 1, 0, 0, end, 2, 0, T0, T0)
        return header + bytes(rng.randrange(256) for _ in range(length - len(header)))

    first = seg_path(template.path, 0).read_bytes()[SEGMENT_HEADER_SIZE:]
    first_len = U32.unpack_from(first, 0)[0]
    return {
        "random": lambda _d, _t: bytes(rng.randrange(1, 256) for _ in range(300)),
        "short-length": lambda _d, _t: U32.pack(20) + b"\x01" * 40,
        "length-past-capacity": lambda _d, _t: U32.pack(SEG) + b"\x01" * 60,
        "huge-length": lambda _d, _t: U32.pack(0xFFFFFFFE) + b"\x02" * 60,
        "batch-header-bad-checksum": lambda _d, _t: batch_like(),
        # A whole valid batch, but at the wrong offset (a stale copy).
        "copy-of-first-batch": lambda _d, _t: first[:first_len],
        "ones": lambda _d, _t: b"\x01" * (SEG - tail - 100),
        "end-word-zero-then-garbage": lambda _d, _t: bytes(4) + b"\x99" * 100,
    }


@pytest.mark.parametrize(
    "case",
    ["random", "short-length", "length-past-capacity", "huge-length", "batch-header-bad-checksum",
     "copy-of-first-batch", "ones", "end-word-zero-then-garbage"],
)
def test_garbage_after_last_batch(single: Template, tmp_path: Path, case: str) -> None:
    data = single.copy(tmp_path / "data")
    seg = seg_path(data, 0)
    tail = tail_pos(seg)
    garbage = _garbage_cases(single)[case](seg.read_bytes(), tail)
    assert tail + len(garbage) <= SEG
    patch(seg, tail, garbage)
    check_recovered(data, single.expected, len(single.expected), full=True)
    # The new batch replaced the garbage's first word; what is left of the
    # garbage after it is never read.
    with Broker(data) as broker:
        assert broker.topic("t").end_offsets() == {0: len(single.expected) + 2}


def test_garbage_that_looks_like_an_end_marker_only_rolls(single: Template, tmp_path: Path) -> None:
    """0xFFFFFFFF after the last batch reads as an end-of-segment marker:
    recovery finishes that "roll" — no record is lost or invented."""
    data = single.copy(tmp_path / "data")
    seg = seg_path(data, 0)
    patch(seg, tail_pos(seg), U32.pack(END_OF_SEGMENT) + b"\x42" * 50)
    n = len(single.expected)
    check_recovered(data, single.expected, n, full=True)
    assert seg_bases(data) == [0, n]


# -- (b) a torn last batch at every byte ---------------------------------------


@pytest.mark.parametrize("template_name", ["single", "sparse"])
def test_last_batch_zeroed_from_every_byte(
    template_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    template: Template = request.getfixturevalue(template_name)
    seg, pos, length, base = last_batch(template.path)
    raw = seg.read_bytes()
    assert raw[pos + length - 1] != 0  # zeroing any suffix changes the batch
    for p in range(length):
        data = template.copy(tmp_path / f"z{p}")
        patch(seg_path(data, 0), pos + p, bytes(length - p))
        check_recovered(data, template.expected, base, full=p in (0, 4, length - 1))
        shutil.rmtree(data)


def test_last_batch_file_truncated_at_every_byte(single: Template, tmp_path: Path) -> None:
    """The file itself cut short inside (or just after) the last batch. A
    reader maps only what is there; the first writer regrows the file with
    zeros and cuts the torn batch, or keeps it if it was whole."""
    _seg, pos, length, base = last_batch(single.path)
    prev_base = spans(seg_path(single.path, 0))[-2][2]
    n = len(single.expected)
    for p in range(length + TRAILER_SIZE + 1):
        data = single.copy(tmp_path / f"t{p}")
        path = seg_path(data, 0)
        os.truncate(path, pos + p)
        with Broker(data) as broker:
            # A read-only mapping of the short file: a batch counts only
            # with room for the next length word after it.
            visible = read_all(broker)
            if p >= length + TRAILER_SIZE:
                assert visible == single.expected
            elif p >= TRAILER_SIZE:
                assert visible == single.expected[:base]
            else:
                assert visible == single.expected[:prev_base]
            end = n if p >= length else base
            assert broker.topic("t").end_offsets() == {0: end}  # read-only
            assert path.stat().st_size == pos + p
            broker.topic("t").partition(0).recover()
            assert path.stat().st_size == SEG  # regrown by the writer, never left short
            assert read_all(broker) == single.expected[:end]
            more = append_more(broker, end)
            assert read_all(broker) == single.expected[:end] + more
        shutil.rmtree(data)


def test_truncated_file_reopens_after_recovery(single: Template, tmp_path: Path) -> None:
    _seg, pos, _, base = last_batch(single.path)
    data = single.copy(tmp_path / "data")
    os.truncate(seg_path(data, 0), pos + 7)
    check_recovered(data, single.expected, base, full=True)


# -- (c) a flipped byte: checksum failure --------------------------------------


@pytest.mark.parametrize("template_name", ["single", "sparse"])
def test_last_batch_byte_flipped_at_every_position(
    template_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    template: Template = request.getfixturevalue(template_name)
    seg, pos, length, base = last_batch(template.path)
    raw = seg.read_bytes()
    for p in range(length):
        data = template.copy(tmp_path / f"f{p}")
        patch(seg_path(data, 0), pos + p, bytes([raw[pos + p] ^ 0x5A]))
        check_recovered(data, template.expected, base, full=p in (0, 12, length - 1))
        shutil.rmtree(data)


def test_torn_tail_in_multi_segment_log(multi: Template, tmp_path: Path) -> None:
    """The last segment's only batch torn: the log ends at that segment's base."""
    _seg, pos, length, base = last_batch(multi.path)
    assert base == seg_bases(multi.path)[-1]
    data = multi.copy(tmp_path / "data")
    patch(seg_path(data, base), pos + length // 2, b"\x00\xff\x00")
    check_recovered(data, multi.expected, base, full=True)


# -- (d) lost or garbled indexes ------------------------------------------------


def _check_lookups(broker: Broker, expected: list[Rec]) -> None:
    n = len(expected)
    for offset in range(n):
        got = read_all(broker, offset)
        assert got is not None and got[:1] == [expected[offset]], offset
    assert read_all(broker, n) == []
    assert read_all(broker, n + 1) is None
    part = broker.topic("t").partition(0)
    stamps = sorted({r[3] for r in expected})
    for ts in [*stamps, stamps[0] - 1, *(s + 1 for s in stamps)]:
        want = next((r[2] for r in expected if r[3] >= ts), None)
        assert part.offset_for_time(ts) == want, ts
    assert part.offset_for_time(stamps[-1] + 1) is None


def _index_damages() -> dict[str, Callable[[Path], None]]:
    rng = random.Random(11)

    def garbage(path: Path) -> None:
        path.write_bytes(bytes(rng.randrange(256) for _ in range(path.stat().st_size)))

    def garbage_entries(path: Path) -> None:
        size = path.stat().st_size
        raw = path.read_bytes()[:INDEX_HEADER_SIZE]
        path.write_bytes(raw + bytes(rng.randrange(256) for _ in range(size - INDEX_HEADER_SIZE)))

    def wrong_entries(path: Path) -> None:
        # Plausible entries that point at no batch (positions shifted).
        raw = bytearray(path.read_bytes())
        for i in range((len(raw) - INDEX_HEADER_SIZE) // INDEX_ENTRY_SIZE):
            at = INDEX_HEADER_SIZE + i * INDEX_ENTRY_SIZE
            rel, position, max_before = INDEX_ENTRY.unpack_from(raw, at)
            if position == 0:
                break
            INDEX_ENTRY.pack_into(raw, at, rel + 1, position + 8, max_before)
        path.write_bytes(bytes(raw))

    def stale_entries(path: Path) -> None:
        # Entries past the end of the log (an index longer than its log).
        raw = bytearray(path.read_bytes())
        count = 0
        while INDEX_ENTRY.unpack_from(raw, INDEX_HEADER_SIZE + count * INDEX_ENTRY_SIZE)[1]:
            count += 1
        for k in range(3):
            INDEX_ENTRY.pack_into(raw, INDEX_HEADER_SIZE + (count + k) * INDEX_ENTRY_SIZE,
                                  500 + k, 3000 + 8 * k, T0 + 10**6)
        path.write_bytes(bytes(raw))

    return {
        "deleted": lambda p: p.unlink(),
        "empty-file": lambda p: p.write_bytes(b""),
        "short-file": lambda p: p.write_bytes(p.read_bytes()[:40]),
        "garbage": garbage,
        "garbage-entries": garbage_entries,
        "wrong-entries": wrong_entries,
        "stale-entries": stale_entries,
        "wrong-base": lambda p: patch(p, 8, struct.pack("<q", 12345)),
        "newer-version": lambda p: patch(p, 4, struct.pack("<H", 99)),
    }


INDEX_DAMAGES = list(_index_damages())


@pytest.mark.parametrize("damage", INDEX_DAMAGES)
def test_index_damage_multi_segment(multi: Template, tmp_path: Path, damage: str) -> None:
    data = multi.copy(tmp_path / "data")
    originals = {b: idx_path(data, b).read_bytes() for b in seg_bases(data)}
    for base in seg_bases(data):
        _index_damages()[damage](idx_path(data, base))
    n = len(multi.expected)
    with Broker(data) as broker:
        # Lookups first, before any writer recovered anything.
        _check_lookups(broker, multi.expected)
        assert broker.topic("t").end_offsets() == {0: n}
        _check_lookups(broker, multi.expected)
        more = append_more(broker, n)
        assert read_all(broker) == multi.expected + more
        assert consume_all(broker) == multi.expected + more
    if damage not in ("garbage-entries", "stale-entries"):
        # An index that could not be used is whole again, and says what the
        # original said. (Garbage or stale entries that lookups never pick
        # may stay: every entry used is checked against the log first.)
        for base in seg_bases(data)[:-1]:
            assert idx_path(data, base).read_bytes() == originals[base], base
    last = seg_bases(data)[-1]
    header = INDEX_HEADER.unpack_from(idx_path(data, last).read_bytes(), 0)
    assert header[0] == INDEX_MAGIC and header[3] == last


@pytest.mark.parametrize("damage", ["deleted", "garbage", "wrong-entries", "stale-entries"])
def test_index_damage_single_segment(single: Template, tmp_path: Path, damage: str) -> None:
    data = single.copy(tmp_path / "data")
    original = idx_path(data, 0).read_bytes()
    _index_damages()[damage](idx_path(data, 0))
    n = len(single.expected)
    with Broker(data) as broker:
        _check_lookups(broker, single.expected)
        assert broker.topic("t").end_offsets() == {0: n}
        broker.topic("t").partition(0).recover()  # the writer rebuilds the index
        assert idx_path(data, 0).read_bytes() == original
        _check_lookups(broker, single.expected)
    check_recovered(data, single.expected, n)


def test_index_and_tail_damaged_together(single: Template, tmp_path: Path) -> None:
    data = single.copy(tmp_path / "data")
    seg, pos, length, base = last_batch(data)
    patch(seg, pos + length - 3, b"\x00\x00\x00")
    idx_path(data, 0).unlink()
    check_recovered(data, single.expected, base, full=True)
    with Broker(data) as broker:
        _check_lookups(broker, read_all(broker) or [])


# -- (e) rolls cut short ----------------------------------------------------------


def _last_two(data: Path) -> tuple[int, int]:
    bases = seg_bases(data)
    return bases[-2], bases[-1]


def _unroll(data: Path) -> int:
    """Drop the last segment (it holds one batch): the log as it was right
    after the roll's end marker, before the new file. Returns its base."""
    _prev, last = _last_two(data)
    seg_path(data, last).unlink()
    idx_path(data, last).unlink()
    return last


def test_empty_segment_after_roll(multi: Template, tmp_path: Path) -> None:
    """A roll finished but nothing written into the new segment yet."""
    data = multi.copy(tmp_path / "data")
    seg, pos, length, base = last_batch(data)
    patch(seg, pos, bytes(length))  # the new segment is empty
    check_recovered(data, multi.expected, base, full=True)
    assert seg_bases(data)[-1] == base


def test_roll_died_before_new_segment(multi: Template, tmp_path: Path) -> None:
    data = multi.copy(tmp_path / "data")
    base = _unroll(data)
    check_recovered(data, multi.expected, base, full=True)
    assert seg_bases(data)[-1] == base


def test_roll_died_before_seal_flags(multi: Template, tmp_path: Path) -> None:
    """Only the end marker reached the file: the next writer seals the
    segment and creates the next one."""
    data = multi.copy(tmp_path / "data")
    base = _unroll(data)
    prev = seg_bases(data)[-1]
    patch(seg_path(data, prev), SEG_FLAGS_AT, bytes(2))  # not sealed
    patch(seg_path(data, prev), 32, bytes(16))  # no max timestamp, no end offset
    check_recovered(data, multi.expected, base, full=True)
    header = SEGMENT_HEADER.unpack_from(seg_path(data, prev).read_bytes(), 0)
    assert header[2] & 1 and header[7] == base  # sealed, end offset recorded
    assert header[6] == max(r[3] for r in multi.expected[prev:base])


def test_segment_create_died_before_rename(multi: Template, tmp_path: Path) -> None:
    """A ``.tmp`` half-written segment and index are left over: removed, and
    the segment is created again."""
    data = multi.copy(tmp_path / "data")
    base = _unroll(data)
    header = SEGMENT_HEADER.pack(SEGMENT_MAGIC, 1, 0, base, SEG, T0, 0, 0)
    tmp_log = pdir(data) / f"{base:020d}.log.tmp"
    tmp_log.write_bytes(header[:10])
    tmp_idx = pdir(data) / f"{base:020d}.index.tmp"
    tmp_idx.write_bytes(b"MKIX")
    check_recovered(data, multi.expected, base, full=True)
    assert not tmp_log.exists() and not tmp_idx.exists()


@pytest.mark.parametrize("keep", [0, 4, 10, 40])
def test_new_segment_with_torn_header(multi: Template, tmp_path: Path, keep: int) -> None:
    """Power loss after a roll: the new segment's name reached the disk but
    its header only in part (the rest reads as zeros). Nothing was published
    in it, so it is recreated rather than failing every later append."""
    data = multi.copy(tmp_path / "data")
    seg, _pos, _length, base = last_batch(data)
    raw = bytearray(seg.read_bytes())
    raw[keep:] = bytes(len(raw) - keep)
    seg.write_bytes(bytes(raw))
    check_recovered(data, multi.expected, base, full=True)


@pytest.mark.parametrize("size,header", [(0, False), (40, False), (100, False),
                                         (SEGMENT_HEADER_SIZE, True), (100, True)])
def test_new_segment_left_short_by_a_power_loss(multi: Template, tmp_path: Path, size: int,
                                                header: bool) -> None:
    """Power loss after a roll: the new segment's name reached the disk but
    not its size (or its bytes past the header). Nothing can have been
    published in a file too short for a batch, so readers see the log end
    before it and the next writer creates it again; it used to raise
    'segment file is only N bytes' on every read and every append."""
    data = multi.copy(tmp_path / "data")
    seg, _pos, _length, base = last_batch(data)
    raw = seg.read_bytes()[:SEGMENT_HEADER_SIZE] if header else b""
    seg.write_bytes(raw + bytes(size - len(raw)))
    check_recovered(data, multi.expected, base, full=True)
    assert seg.stat().st_size == SEG


def test_tiny_segment_with_data_in_it_stays_an_error(multi: Template, tmp_path: Path) -> None:
    """A short file whose bytes are not zeros is damage, never recreated."""
    data = multi.copy(tmp_path / "data")
    seg = last_batch(data)[0]
    raw = seg.read_bytes()[:100]
    seg.write_bytes(raw)
    with Broker(data) as broker, pytest.raises(minikafka.CorruptLogError, match="only 100 bytes"):
        broker.topic("t").partition(0).recover()
    assert seg.read_bytes() == raw


def test_leftover_spares_are_handled(multi: Template, tmp_path: Path) -> None:
    data = multi.copy(tmp_path / "data")
    old_prep = pdir(data) / "spare-dead.prep"
    old_prep.write_bytes(b"\x00" * 100)
    os.utime(old_prep, (time.time() - 3600, time.time() - 3600))
    young_prep = pdir(data) / "spare-alive.prep"
    young_prep.write_bytes(b"\x00" * 100)
    wrong_size = pdir(data) / "spare-small.seg"
    wrong_size.write_bytes(b"\x00" * 100)
    n = len(multi.expected)
    check_recovered(data, multi.expected, n)
    assert not old_prep.exists()  # a dead process's half-made spare
    assert young_prep.exists()  # may still be in the making
    with Broker(data) as broker:
        with Producer(broker, linger_ms=0) as p:
            for i in range(40):  # enough to roll at least once
                assert p.send("t", payload(i, 200)).result().offset == n + 2 + i
        assert not wrong_size.exists()  # a spare of another size is dropped at the roll
        assert read_all(broker)[: n] == multi.expected


# -- damage in a sealed segment ---------------------------------------------------


def _damage_sealed(data: Path) -> tuple[int, int]:
    """Flip a byte in the middle batch of the first (sealed) segment.
    Returns (base offset of the damaged batch, base of the next one)."""
    first = seg_path(data, 0)
    batches = spans(first)
    assert len(batches) >= 3
    pos, length, base, count = batches[len(batches) // 2]
    raw = first.read_bytes()
    patch(first, pos + length - 5, bytes([raw[pos + length - 5] ^ 1]))
    return base, base + count


def test_corrupt_sealed_segment_raises_on_read(multi: Template, tmp_path: Path) -> None:
    data = multi.copy(tmp_path / "data")
    bad, _after = _damage_sealed(data)
    n = len(multi.expected)
    with Broker(data) as broker:
        assert broker.topic("t").end_offsets() == {0: n}  # only the tail is recovered
        reader = broker.topic("t").partition(0).reader()
        assert reader.seek(0)
        got = []
        with pytest.raises(minikafka.CorruptLogError, match=r"damaged"):
            for _ in range(n):
                got += [tuple(r) for r in reader.read(1)]
        reader.close()
        assert got == multi.expected[:bad]
        # Appends still work; records after the damaged segment still read.
        more = append_more(broker, n)
        assert read_all(broker, seg_bases(data)[1]) == multi.expected[seg_bases(data)[1]:] + more


@pytest.mark.parametrize("max_poll_records", [1, 500])
def test_consumer_gets_every_record_before_sealed_damage_then_error(
    multi: Template, tmp_path: Path, max_poll_records: int
) -> None:
    data = multi.copy(tmp_path / "data")
    bad, _ = _damage_sealed(data)
    with Broker(data) as broker, Consumer(
        broker, auto_offset_reset="earliest", max_poll_records=max_poll_records
    ) as c:
        c.assign([TP])
        got: list[Rec] = []
        with pytest.raises(minikafka.CorruptLogError):
            for _ in range(200):
                got += [tuple(r) for r in c.poll(timeout=0.01)]
        assert got == multi.expected[:bad]
        assert c.position(TP) == bad
        with pytest.raises(minikafka.CorruptLogError):  # and again: never skipped silently
            c.poll(timeout=0.01)


@pytest.mark.parametrize("reset", ["earliest", "latest", "none"])
def test_seek_past_sealed_damage_is_an_error_not_a_reset(
    multi: Template, tmp_path: Path, reset: str
) -> None:
    """A position behind a damaged batch of a sealed segment, where the
    index cannot help: the consumer must say so, not silently jump."""
    data = multi.copy(tmp_path / "data")
    _bad, after = _damage_sealed(data)
    idx_path(data, 0).unlink()
    with Broker(data) as broker, Consumer(broker, auto_offset_reset=reset) as c:
        c.assign([TP])
        c.seek(TP, after)
        with pytest.raises(minikafka.CorruptLogError):
            for _ in range(20):
                records = c.poll(timeout=0.01)
                assert all(r.offset >= after for r in records)
                assert [tuple(r) for r in records] == multi.expected[after : after + len(records)]


def test_truncated_sealed_segment_raises(multi: Template, tmp_path: Path) -> None:
    data = multi.copy(tmp_path / "data")
    first = seg_path(data, 0)
    pos, length, base, _ = spans(first)[2]
    os.truncate(first, pos + length // 2)
    with Broker(data) as broker:
        assert broker.topic("t").end_offsets() == {0: len(multi.expected)}
        reader = broker.topic("t").partition(0).reader()
        assert reader.seek(0)
        got: list[Rec] = []
        with pytest.raises(minikafka.CorruptLogError):
            for _ in range(100):
                got += [tuple(r) for r in reader.read(1)]
        reader.close()
        assert got == multi.expected[:base]


# -- kill -9 of a producing process ------------------------------------------------

CHILD = r"""
import sys
import minikafka

path, segment_bytes = sys.argv[1], int(sys.argv[2])

def payload(i):
    head = b"%08d|" % i
    return head + bytes(65 + (i * 7 + j) % 26 for j in range(i % 300))

broker = minikafka.Broker(path, segment_bytes=segment_bytes, index_interval_bytes=512)
if "t" not in broker.list_topics():
    broker.create_topic("t")
i = broker.topic("t").end_offsets()[0]
producer = minikafka.Producer(broker, linger_ms=1000)
while True:
    for _ in range(1 + i % 17):
        producer.send("t", payload(i), key=b"k%d" % i, headers=[("i", b"%d" % i)],
                      timestamp_ms=1_700_000_000_000 + i)
        i += 1
    producer.flush()
    sys.stdout.write("%d\n" % i)
    sys.stdout.flush()
"""


def _child_payload(i: int) -> bytes:
    head = b"%08d|" % i
    return head + bytes(65 + (i * 7 + j) % 26 for j in range(i % 300))


def _run_and_kill(path: Path, segment_bytes: int, at_least: int) -> int:
    """Start a producing child, SIGKILL it once it reported ``at_least``
    flushed records; return the highest count it reported."""
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CHILD), str(path), str(segment_bytes)],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    reported = 0
    deadline = time.monotonic() + 30
    try:
        while reported < at_least and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            reported = int(line)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        rest = proc.stdout.read()
        proc.wait()
        proc.stdout.close()
    for line in rest.split(b"\n")[:-1]:  # whole lines only: the last may be cut
        reported = max(reported, int(line))
    assert proc.returncode == -signal.SIGKILL
    assert reported >= at_least, "the child did not get far enough (see its stderr)"
    return reported


def _verify_child_log(path: Path, flushed: int) -> int:
    with Broker(path) as broker:
        end = broker.topic("t").end_offsets()[0]
        assert end >= flushed  # every record the child saw flushed is there
        records = read_all(broker)
        assert records is not None and len(records) == end
        for offset, r in enumerate(records):
            assert r == (
                "t", 0, offset, T0 + offset, b"k%d" % offset, _child_payload(offset),
                (("i", b"%d" % offset),),
            ), offset
    return end


@pytest.mark.parametrize("segment_bytes", [16 * 1024, 1 << 20])
def test_kill_9_while_producing(tmp_path: Path, segment_bytes: int) -> None:
    path = tmp_path / "data"
    rng = random.Random(segment_bytes)
    end = 0
    for _ in range(3):  # kill, recover, produce on, kill again
        flushed = _run_and_kill(path, segment_bytes, end + rng.randrange(500, 3000))
        end = _verify_child_log(path, flushed)
    with Broker(path) as broker:
        more = append_more(broker, end)
        assert (read_all(broker) or [])[end:] == more
        assert len(seg_bases(path)) > 1 or segment_bytes > 1 << 16


def test_a_reader_never_takes_the_writer_lock_nor_writes_an_index(
    multi: Template, tmp_path: Path
) -> None:
    """A lookup in a sealed segment whose index is missing neither waits for
    a writer holding the lock (in this process or another) nor writes the
    file: it uses an index built in memory. The writer rebuilds the file."""
    data = multi.copy(tmp_path / "data")
    idx_path(data, 0).unlink()
    with Broker(data) as broker:
        part = broker.topic("t").partition(0)
        holding, probe, done = threading.Event(), threading.Event(), threading.Event()
        still_held: list[bool] = []
        sought: list[bool] = []

        def writer() -> None:  # what append() holds while it writes
            with part._lock:
                part._flock.acquire()
                holding.set()
                probe.wait(5)
                other = FileLock(part._flock.path)  # another process's view
                still_held.append(not other.acquire(blocking=False))
                other.close()
                part._flock.release()
            done.set()

        def reader() -> None:
            r = part.reader()
            try:
                sought.append(r.seek(5))
                sought.append([rec.offset for rec in r.read(1)] == [5])
            finally:
                r.close()

        w = threading.Thread(target=writer)
        w.start()
        assert holding.wait(5)
        rd = threading.Thread(target=reader)
        rd.start()
        rd.join(5)  # finishes while the writer still holds both locks
        assert sought == [True, True]
        assert not idx_path(data, 0).exists()
        probe.set()
        assert done.wait(5)
        w.join(5)
        assert still_held == [True]
        part.recover()
        assert idx_path(data, 0).exists()
