"""Issue 9, damage injection (defects 8-11): every file kind is damaged the
way a bad disk, a stray write or a bad copy would, then the directory is
reopened. Each outcome must be one of

- ``cut``: the torn tail of the *active* segment is cut on open; every record
  before it is intact and producing continues at the next dense offset;
- ``corrupt``: ``CorruptLogError`` naming the file (and position), after
  only correct records;
- ``rebuilt``: the derived file (index, doorbell) is rebuilt or ignored and
  every record reads back right;

never wrong data and never a stall (bounded waits only). Offsets of
batches are found with the documented layout (docs/format.md).
"""

from __future__ import annotations

import json
import os
import struct
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from faults_helpers import call_bounded

import minikafka
from minikafka import Broker, Consumer, Producer, TopicPartition
from minikafka.check import check
from minikafka.testing import read_topic

TP = TopicPartition("t", 0)
SEGMENT_HEADER = 64
END_MARKER = 0xFFFFFFFF
U32 = struct.Struct("<I")
COUNT = 60  # ~4 segments of 4 KiB


def value(i: int) -> bytes:
    return b"%04d" % i + bytes([i % 251]) * 200


def ts(i: int) -> int:
    return 1_700_000_000_000 + 10 * i


def batches(path: Path) -> list[tuple[int, int]]:
    """(position, length) of every batch of a segment file; a trailing
    (position, END_MARKER) for a sealed segment's end marker."""
    data = path.read_bytes()
    out, pos = [], SEGMENT_HEADER
    while pos + 4 <= len(data):
        (length,) = U32.unpack_from(data, pos)
        if length == 0:
            break
        out.append((pos, length))
        if length == END_MARKER:
            break
        pos += length
    return out


def base_at(path: Path, pos: int) -> int:
    """Base offset of the batch at ``pos`` (batch header byte 16, i64)."""
    with open(path, "rb") as f:
        f.seek(pos + 16)
        return int(struct.unpack("<q", f.read(8))[0])


def first_offset(path: Path) -> int:
    return int(path.name[:20])


def poke(path: Path, pos: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(pos)
        f.write(data)


def flip(path: Path, pos: int, bit: int = 0) -> None:
    with open(path, "r+b") as f:
        f.seek(pos)
        b = f.read(1)[0]
        f.seek(pos)
        f.write(bytes([b ^ (1 << bit)]))


class Log:
    """The damaged directory: its segments and what was sent."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir / "topics" / "t" / "0"
        self.segments = sorted(self.dir.glob("*.log"))
        self.indexes = sorted(self.dir.glob("*.index"))
        assert len(self.segments) >= 4, self.segments
        self.sealed = self.segments[0]
        self.middle = self.segments[1]
        self.active = self.segments[-1]


@pytest.fixture
def log(data_dir: Path) -> Log:
    with Broker(data_dir, segment_bytes=4096, index_interval_bytes=256) as b:
        b.create_topic("t")
        with Producer(b, linger_ms=0) as p:
            for i in range(COUNT):
                p.send("t", value(i), key=b"k%d" % i, headers=[("h", b"%d" % i)],
                       timestamp_ms=ts(i)).result(5)
    return Log(data_dir)


def scan(broker: Broker, deadline: float = 1.5) -> tuple[list[minikafka.Record], BaseException | None]:
    """Read from the beginning until every sent record came, an error, or
    the deadline (a stall)."""
    out: list[minikafka.Record] = []
    with Consumer(broker, auto_offset_reset="earliest") as c:
        c.assign([TP])
        end = time.monotonic() + deadline
        try:
            while len(out) < COUNT and time.monotonic() < end:
                out.extend(c.poll(timeout=0.05))
        except minikafka.CorruptLogError as e:
            return out, e
    return out, None


def assert_correct(records: list[minikafka.Record], start: int = 0) -> None:
    for n, r in enumerate(records):
        i = start + n
        assert r.offset == i, f"record {n} has offset {r.offset}, expected {i}"
        assert (r.value, r.key, r.headers, r.timestamp) == (value(i), b"k%d" % i, (("h", b"%d" % i),),
                                                              ts(i)), f"wrong data at offset {i}"


# -- the damage table --------------------------------------------------------
# Each damage returns (the damaged file, how many records must still read
# back: every offset before the damage).
Damage = tuple[Path, int]


def zero_length_word(log: Log) -> Damage:
    pos, _ = batches(log.sealed)[2]
    keep = base_at(log.sealed, pos)
    poke(log.sealed, pos, b"\0\0\0\0")
    return log.sealed, keep


def zero_page_from_batch(log: Log) -> Damage:
    pos, _ = batches(log.sealed)[2]
    keep = base_at(log.sealed, pos)
    poke(log.sealed, pos, bytes(log.sealed.stat().st_size - pos))
    return log.sealed, keep


def zero_end_marker(log: Log) -> Damage:
    pos, length = batches(log.sealed)[-1]
    assert length == END_MARKER
    poke(log.sealed, pos, b"\0\0\0\0")
    return log.sealed, first_offset(log.middle)


def delete_middle_segment(log: Log) -> Damage:
    log.middle.unlink()
    log.middle.with_suffix(".index").unlink()
    return log.middle, first_offset(log.middle)


def flip_sealed_record_byte(log: Log) -> Damage:
    pos, length = batches(log.sealed)[2]
    keep = base_at(log.sealed, pos)
    flip(log.sealed, pos + length - 10)
    return log.sealed, keep


def flip_sealed_length(log: Log) -> Damage:
    pos, _ = batches(log.sealed)[2]
    keep = base_at(log.sealed, pos)
    flip(log.sealed, pos, 3)
    return log.sealed, keep


def damage_segment_header(log: Log) -> Damage:
    poke(log.middle, 0, b"XXXX")
    return log.middle, first_offset(log.middle)


def unfinished_middle_segment(log: Log) -> Damage:
    """A header never written and nothing published — what a roll cut short
    by a power loss leaves, normal only as the newest segment."""
    poke(log.middle, 0, bytes(SEGMENT_HEADER + 4))
    return log.middle, first_offset(log.middle)


def end_marker_first_in_sealed_segment(log: Log) -> Damage:
    """An end marker where the first batch's length word was: followed as
    one, it named the same segment again (reads and end_offsets looped)."""
    poke(log.middle, SEGMENT_HEADER, U32.pack(END_MARKER))
    return log.middle, first_offset(log.middle)


def garbage_after_active_tail(log: Log) -> Damage:
    pos, length = batches(log.active)[-1]
    poke(log.active, pos + length, U32.pack(300) + os.urandom(296))
    return log.active, COUNT


def torn_last_active_batch(log: Log) -> Damage:
    pos, length = batches(log.active)[-1]
    keep = base_at(log.active, pos)
    poke(log.active, pos + length // 2, bytes(length - length // 2))
    return log.active, keep


def garbage_index(log: Log) -> Damage:
    for index in log.indexes:
        poke(index, 32, os.urandom(64))
    return log.indexes[0], COUNT


def zero_index_header(log: Log) -> Damage:
    for index in log.indexes:
        poke(index, 0, bytes(32))
    return log.indexes[0], COUNT


def flip_index_offset(log: Log) -> Damage:
    for index in log.indexes:
        flip(index, 32 + 16 * 2, 1)  # relative offset of entry 2
    return log.indexes[0], COUNT


def delete_indexes(log: Log) -> Damage:
    for index in log.indexes:
        index.unlink()
    return log.dir, COUNT


CASES: list[tuple[Callable[[Log], Damage], str]] = [
    (zero_length_word, "corrupt"),
    (zero_page_from_batch, "corrupt"),
    (zero_end_marker, "corrupt"),
    (delete_middle_segment, "corrupt"),
    (flip_sealed_record_byte, "corrupt"),
    (flip_sealed_length, "corrupt"),
    (damage_segment_header, "corrupt"),
    (unfinished_middle_segment, "corrupt"),
    (end_marker_first_in_sealed_segment, "corrupt"),
    (garbage_after_active_tail, "cut"),
    (torn_last_active_batch, "cut"),
    (garbage_index, "rebuilt"),
    (zero_index_header, "rebuilt"),
    (flip_index_offset, "rebuilt"),
    (delete_indexes, "rebuilt"),
]


@pytest.mark.parametrize(("damage", "expected"), [pytest.param(d, e, id=d.__name__) for d, e in CASES])
def test_damaged_log(log: Log, data_dir: Path, damage: Callable[[Log], Damage], expected: str) -> None:
    damaged, keep = damage(log)
    ok, result = call_bounded(lambda: _outcome(data_dir), timeout=10)
    assert ok, "reopening and reading the damaged directory hung"
    if isinstance(result, BaseException) and not isinstance(result, minikafka.CorruptLogError):
        raise result
    if isinstance(result, minikafka.CorruptLogError):
        raise AssertionError(f"reopening the directory failed ({result!r}): damage to one segment "
                             f"must not make the records before it unreadable")
    records, error, produced = result
    assert_correct(records)
    assert len(records) >= keep, f"only {len(records)} records came back; the {keep} before the " \
                                 f"damage must"
    if expected == "corrupt":
        assert error is not None, (f"no CorruptLogError: {len(records)} of {COUNT} records, then a "
                                   f"stall (damage in sealed data must raise)")
        assert damaged.name in str(error), f"the error does not name {damaged.name}: {error}"
        assert any(ch.isdigit() for ch in str(error).replace(damaged.name, "")), \
            f"the error names no position: {error}"
        # `minikafka check` finds it too: a finding on the damaged file, or
        # (a deleted segment) the gap it left in the next one.
        report = check(data_dir)
        assert any(damaged.name in f.path or "gap" in f.problem for f in report.findings), \
            f"check found nothing: {report.findings}"
    elif expected == "cut":
        assert error is None, error
        assert len(records) == keep, f"{len(records)} records after the cut, expected {keep}"
        assert produced == len(records), f"the next record got offset {produced}, not {len(records)}"
    else:
        assert error is None, error
        assert len(records) == COUNT, f"only {len(records)} of {COUNT} records"
        _assert_seeks_and_times(data_dir)


@pytest.mark.parametrize("word", [0, 0xFFFFFF00, END_MARKER], ids=["zeroed", "garbage", "end-marker"])
def test_damaged_first_batch_of_the_active_segment_is_not_appended_past(
        log: Log, data_dir: Path, word: int) -> None:
    """The first length word of the active segment damaged, valid batches
    (and index entries) after it: tail recovery resumed from the index past
    the damage and appended there, while readers stopped at it for ever, so
    every record after it — new acknowledged ones too — was never
    delivered; an end marker there looped (reads, end_offsets and appends,
    writer lock held, no timeout). Now readers return the records before it
    within their timeout and the writer raises CorruptLogError naming the
    file and byte, changing nothing."""
    keep = first_offset(log.active)
    poke(log.active, SEGMENT_HEADER, U32.pack(word))
    before = log.active.read_bytes()

    def run() -> tuple[list[minikafka.Record], BaseException | None]:
        with Broker(data_dir) as b:
            records, _ = scan(b, deadline=0.5)
            try:
                with Producer(b) as p:
                    p.send("t", b"after").result(5)
            except minikafka.CorruptLogError as e:
                return records, e
            return records, None

    ok, result = call_bounded(run, timeout=20)
    assert ok, "reading or appending hung"
    if isinstance(result, BaseException):
        raise result
    records, error = result
    assert_correct(records)
    assert len(records) == keep
    assert error is not None, "the append went past the damage"
    assert log.active.name in str(error) and f"byte {SEGMENT_HEADER}" in str(error)
    assert log.active.read_bytes() == before


@pytest.mark.parametrize("word", [0, 5, 0x00FFFF00], ids=["zeroed", "too-short", "too-long"])
def test_a_damaged_length_word_inside_the_active_segment_stops_readers_with_an_error(
        data_dir: Path, word: int) -> None:
    """A damaged length word in the middle of the active segment, with
    indexed valid batches after it, while a writer that recovered before
    the damage keeps appending: readers took it for the end of the log (a
    zero word) or a torn tail (a length leading nowhere) and stopped there
    silently for ever, every record after it undelivered, and a seek past
    it was "out of range" (reset to the end). Now a reader returns the
    records before it and then raises CorruptLogError naming the file and
    byte, and so does a seek behind it that no index entry leads past."""
    count = 20
    with Broker(data_dir, index_interval_bytes=1024) as b:  # an entry every ~4 batches
        b.create_topic("t")
        with Producer(b, linger_ms=0) as p:
            for i in range(count):
                p.send("t", value(i), key=b"k%d" % i, headers=[("h", b"%d" % i)],
                       timestamp_ms=ts(i)).result(5)
            (segment,) = sorted((data_dir / "topics" / "t" / "0").glob("*.log"))
            pos, _ = batches(segment)[1]
            poke(segment, pos, U32.pack(word))

            def read_from(offset: int, reset: str) -> tuple[list[minikafka.Record], BaseException | None]:
                got: list[minikafka.Record] = []
                with Consumer(b, auto_offset_reset=reset) as c:
                    c.assign([TP])
                    c.seek(TP, offset)
                    deadline = time.monotonic() + 1.5
                    try:
                        while time.monotonic() < deadline:
                            got.extend(c.poll(timeout=0.05))
                    except minikafka.CorruptLogError as e:
                        return got, e
                return got, None

            for offset, keep in ((0, 1), (2, 0)):
                ok, result = call_bounded(lambda o=offset: read_from(o, "latest"), timeout=20)
                assert ok, "reading hung"
                records, error = result
                assert_correct(records, start=offset)
                assert len(records) == keep, (offset, records)
                assert isinstance(error, minikafka.CorruptLogError), f"from offset {offset}: no error"
                assert segment.name in str(error) and f"byte {pos}" in str(error)
            # The index leads past the damage to the true end, so iteration
            # that stops at the end (stop_at_end, read_topic) meets it too.
            with pytest.raises(minikafka.CorruptLogError, match=f"byte {pos}"):
                read_topic(b, "t", timeout=5)


def test_restored_segment_header_resumes_where_the_error_was(log: Log, data_dir: Path) -> None:
    """The records before a damaged header are returned, then the error; the
    position stays before the damage, so restoring the file resumes there."""
    original = log.middle.read_bytes()[:4]
    damaged, keep = damage_segment_header(log)
    with Broker(data_dir) as b, Consumer(b, auto_offset_reset="earliest") as c:
        c.assign([TP])
        got: list[minikafka.Record] = []
        with pytest.raises(minikafka.CorruptLogError, match=damaged.name):
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                got.extend(c.poll(timeout=0.05))
        assert len(got) == keep
        assert c.position(TP) == keep
        poke(damaged, 0, original)
        deadline = time.monotonic() + 5
        while len(got) < COUNT and time.monotonic() < deadline:
            got.extend(c.poll(timeout=0.05))
    assert_correct(got)
    assert len(got) == COUNT


def _outcome(data_dir: Path) -> tuple[list[minikafka.Record], BaseException | None, int | None]:
    with Broker(data_dir) as b:
        records, error = scan(b)
        produced = None
        if error is None:
            with Producer(b) as p:
                produced = p.send("t", b"after").result(5).offset
        return records, error, produced


def _assert_seeks_and_times(data_dir: Path) -> None:
    with Broker(data_dir) as b, Consumer(b) as c:
        c.assign([TP])
        for i in (0, 7, 23, 31, 45, COUNT - 1):
            c.seek(TP, i)
            got = c.poll(timeout=1, max_records=1)
            assert got and got[0].offset == i and got[0].value == value(i)
        found = c.offsets_for_times({TP: ts(0) - 1000})
        assert found[TP] == 0
        for i in (1, 13, 29, 44, COUNT - 1):
            assert c.offsets_for_times({TP: ts(i)})[TP] == i
            assert c.offsets_for_times({TP: ts(i) - 5})[TP] == i


@pytest.mark.parametrize("bit", [0, 7, 20, 40, 62])
def test_flipped_index_timestamp_gives_no_wrong_lookup(log: Log, data_dir: Path, bit: int) -> None:
    for index in log.indexes:
        entries = (index.stat().st_size - 32) // 16
        assert entries > 2
        flip(index, 32 + 16 * 2 + 8 + bit // 8, bit % 8)  # timestamp column of entry 2
    with Broker(data_dir) as b, Consumer(b) as c:
        c.assign([TP])
        wrong = [i for i in range(COUNT) if c.offsets_for_times({TP: ts(i)})[TP] != i]
    assert not wrong, f"{len(wrong)} of {COUNT} lookups wrong, e.g. at offsets {wrong[:5]}"


# -- group files ---------------------------------------------------------------

def _commit_twice(data_dir: Path) -> Path:
    with Broker(data_dir) as b, Consumer(b, group_id="g") as c:
        b.create_topic("t")
        c.assign([TP])
        c.commit({TP: 5})
        c.commit({TP: 9})
    return data_dir / "groups" / "g" / "offsets"


def test_damaged_newest_offsets_slot_gives_the_previous_value(data_dir: Path) -> None:
    path = _commit_twice(data_dir)
    data = path.read_bytes()
    (slot_size,) = U32.unpack_from(data, 8)
    # The newest slot (sequence 2) is the one written last: damage its
    # checksum; the reader must fall back to the older slot.
    seqs = []
    for s in range(2):
        at = 16 + s * slot_size
        (length,) = U32.unpack_from(data, at)
        seqs.append(struct.unpack_from("<Q", data, at + 4 + 8)[0] if length else -1)
    newest = seqs.index(max(seqs))
    at = 16 + newest * slot_size
    (length,) = U32.unpack_from(data, at)
    flip(path, at + 4 + length - 1)
    with Broker(data_dir) as b:
        assert b.committed_offsets("g") == {TP: 5}


@pytest.mark.parametrize("damage", ["header", "both-slots", "empty"])
def test_damaged_offsets_file_raises_naming_it(data_dir: Path, damage: str) -> None:
    path = _commit_twice(data_dir)
    if damage == "header":
        poke(path, 0, b"XXXX")
    elif damage == "both-slots":
        data = path.read_bytes()
        (slot_size,) = U32.unpack_from(data, 8)
        for s in range(2):
            poke(path, 16 + s * slot_size + 4, b"XXXXXXXX")
    else:
        path.write_bytes(b"")
    with Broker(data_dir) as b, pytest.raises(minikafka.CorruptLogError) as info:
        b.committed_offsets("g")
    assert str(path) in str(info.value) or "offsets" in str(info.value)


def _with_group_state(data_dir: Path) -> Path:
    with Broker(data_dir) as b:
        b.create_topic("t")
        with Consumer(b, "t", group_id="g") as c:
            c.poll(timeout=0.2)
    path = data_dir / "groups" / "g" / "state.json"
    assert path.exists()
    return path


@pytest.mark.parametrize("content", [b"{not json", b"[]", b'{"members": 3}'])
def test_damaged_group_state_raises_naming_it(data_dir: Path, content: bytes) -> None:
    path = _with_group_state(data_dir)
    path.write_bytes(content)
    with Broker(data_dir) as b:
        ok, result = call_bounded(lambda: b.describe_group("g"), timeout=5)
        assert ok, "describe_group hung"
        assert isinstance(result, minikafka.CorruptLogError), repr(result)
        assert "state.json" in str(result)


def test_group_state_of_a_newer_format_is_refused_not_misread(data_dir: Path) -> None:
    path = _with_group_state(data_dir)
    path.write_text('{"format": 2, "generation": 1, "members": {}, "assignment": {}}')
    with Broker(data_dir) as b, pytest.raises(minikafka.CorruptLogError,
                                              match=r"state\.json: group state format 2 is newer"):
        b.describe_group("g")


# -- metadata ------------------------------------------------------------------

@pytest.mark.parametrize("content", [b"[]", b'{"partitions": "two"}', b'"x"', b"{bad json"])
def test_damaged_topic_json_names_the_file_and_spares_other_topics(data_dir: Path, content: bytes) -> None:
    with Broker(data_dir, retention_bytes=1 << 20) as b:
        b.create_topic("t")
        b.create_topic("good")
        with Producer(b) as p:
            p.send("good", b"kept").result(5)
    meta = data_dir / "topics" / "t" / "topic.json"
    meta.write_bytes(content)
    with Broker(data_dir) as b:
        with pytest.raises(minikafka.CorruptLogError) as info:
            b.topic("t")
        assert "topic.json" in str(info.value)
        assert [r.value for r in _read(b, "good")] == [b"kept"]


@pytest.mark.parametrize("content", [b"[]", b'"x"', b'{"format": "one"}'])
def test_damaged_directory_marker_names_the_file(data_dir: Path, content: bytes) -> None:
    Broker(data_dir).close()
    (data_dir / "minikafka.json").write_bytes(content)
    with pytest.raises(minikafka.CorruptLogError) as info:
        Broker(data_dir)
    assert "minikafka.json" in str(info.value)


def test_invalid_json_marker_names_the_file(data_dir: Path) -> None:
    Broker(data_dir).close()
    (data_dir / "minikafka.json").write_bytes(b"{nope")
    with pytest.raises(minikafka.CorruptLogError) as info:
        Broker(data_dir)
    assert "minikafka.json" in str(info.value)


@pytest.mark.parametrize("damage", ["garbage", "empty", "deleted"])
def test_damaged_doorbell_is_rebuilt_or_ignored(data_dir: Path, damage: str) -> None:
    with Broker(data_dir) as b:
        b.create_topic("t")
    bell = data_dir / "doorbell"
    if damage == "garbage":
        bell.write_bytes(os.urandom(4096))
    elif damage == "empty":
        bell.write_bytes(b"")
    else:
        bell.unlink()
    with Broker(data_dir) as b, Consumer(b, "t", auto_offset_reset="earliest") as c:
        c.poll(timeout=0.1)
        with Producer(b) as p:
            p.send("t", b"rang").result(5)
        got = []
        deadline = time.monotonic() + 3
        while not got and time.monotonic() < deadline:
            got = c.poll(timeout=0.5)
        assert [r.value for r in got] == [b"rang"]


def _read(b: Broker, topic: str) -> list[minikafka.Record]:
    tp = TopicPartition(topic, 0)
    with Consumer(b, auto_offset_reset="earliest") as c:
        c.assign([tp])
        out: list[minikafka.Record] = []
        deadline = time.monotonic() + 2
        while len(out) < 1 and time.monotonic() < deadline:
            out.extend(c.poll(timeout=0.1))
        return out


def test_json_helper_shapes_are_json() -> None:
    # Guard the table above: the "wrong shape" payloads are valid JSON.
    for content in (b"[]", b'{"partitions": "two"}', b'"x"', b'{"format": "one"}', b'{"members": 3}'):
        json.loads(content)


def test_recreated_topic_is_not_read_as_a_missing_segment(data_dir: Path) -> None:
    """The hole rule (a missing segment between existing ones is damage)
    must not fire when the directory was deleted and made again: a new
    topic's segment bases differ from the old ones."""
    with Broker(data_dir, segment_bytes=4096) as old, Broker(data_dir, segment_bytes=4096) as other:
        old.create_topic("t")
        with Producer(old) as p:
            p.send_many("t", [b"o" * 300] * 30)
        part = old.topic("t").partition(0)
        reader = part.reader()
        boundary = part.bases()[1]  # an old segment base
        assert reader.seek(boundary)
        reader._drop()  # as a reader between segments: nothing mapped
        other.delete_topic("t")
        other.create_topic("t")
        with Producer(other) as p:
            p.send_many("t", [b"n" * 190] * 60)
        new_bases = sorted(int(n.name[:20]) for n in (data_dir / "topics" / "t" / "0").glob("*.log"))
        assert boundary not in new_bases and new_bases[0] < boundary < new_bases[-1]
        assert reader.read(10) == []  # not CorruptLogError: the consumer resets by topic id
        reader.close()



def test_damage_inside_the_active_segment_with_valid_batches_after_it_is_not_cut(data_dir: Path) -> None:
    """One flipped byte in an active-segment batch that has valid batches
    after it (and no index entry past it): tail recovery took it for a torn
    write and cut the log there, the next append overwrote the nine batches
    after it, and readers stalled at it as at "not written yet". Now the
    writer refuses, the file keeps every byte, and a reader raises after
    the records before the damage."""
    with Broker(data_dir) as b:
        b.create_topic("t")
        with Producer(b, linger_ms=0) as p:
            for i in range(10):
                p.send("t", value(i), key=b"k%d" % i, headers=[("h", b"%d" % i)],
                       timestamp_ms=ts(i)).result(5)
    (segment,) = sorted((data_dir / "topics" / "t" / "0").glob("*.log"))
    found = batches(segment)
    assert len(found) == 10
    pos, length = found[1]
    flip(segment, pos + length - 2)  # inside the body: only the checksum catches it
    before = segment.read_bytes()
    with Broker(data_dir) as b:
        with Producer(b, linger_ms=0) as p, \
                pytest.raises(minikafka.CorruptLogError, match="valid batches follow it"):
            p.send("t", b"new").result(5)
        records, error = scan(b)
    assert segment.read_bytes() == before
    assert_correct(records)
    assert len(records) == 1 and isinstance(error, minikafka.CorruptLogError)
    report = check(data_dir)
    assert any("valid batches follow" in f.problem and f.repair is None for f in report.findings)
