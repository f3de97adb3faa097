"""Group offsets sidecar (``groups/<id>/offsets``): commit and load, and
crash safety — whatever a crash leaves, a reader gets the old offsets or a
clear CorruptLogError, never wrong ones. Plus the group id file-name
encoding."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xxhash import xxh3_64_intdigest

import minikafka
from minikafka import Broker, TopicPartition
from minikafka.check import check
from minikafka.offsets import (
    OffsetStore,
    decode_file,
    decode_group_id,
    decode_offsets,
    encode_group_id,
    encode_offsets,
)

TP = TopicPartition


@pytest.fixture
def groups_dir(tmp_path: Path) -> Path:
    d = tmp_path / "groups"
    d.mkdir()
    return d


@pytest.fixture
def store(groups_dir: Path):
    s = OffsetStore(str(groups_dir), "billing")
    yield s
    s.close()


# -- commit and load ---------------------------------------------------------------


def test_empty_group_has_no_offsets(store: OffsetStore, groups_dir: Path) -> None:
    assert store.load() == {}
    assert not (groups_dir / "billing").exists()  # nothing written by a read


def test_commit_merges_and_persists(store: OffsetStore, groups_dir: Path) -> None:
    store.commit({TP("a", 0): 5, TP("a", 1): 7})
    store.commit({TP("a", 1): 9, TP("b", 3): 0})
    assert store.load() == {TP("a", 0): 5, TP("a", 1): 9, TP("b", 3): 0}
    other = OffsetStore(str(groups_dir), "billing")  # another process's view
    assert other.load() == store.load()
    other.close()
    state = decode_file((groups_dir / "billing" / "offsets").read_bytes(), "x")
    assert state.sequence == 2 and state.offsets == store.load()
    assert state.slot == 1  # the first commit made the file (slot 0), the second went in place
    assert sorted(p.name for p in (groups_dir / "billing").iterdir()) == ["lock", "offsets"]


def test_forget_topic(store: OffsetStore) -> None:
    store.commit({TP("a", 0): 5, TP("b", 0): 6})
    store.forget_topic("a")
    assert store.load() == {TP("b", 0): 6}
    store.forget_topic("zzz")  # nothing to drop: no new file version
    assert store.load() == {TP("b", 0): 6}


def test_groups_are_independent(groups_dir: Path) -> None:
    a, b = OffsetStore(str(groups_dir), "a"), OffsetStore(str(groups_dir), "b")
    a.commit({TP("t", 0): 1})
    b.commit({TP("t", 0): 2})
    assert a.load() == {TP("t", 0): 1} and b.load() == {TP("t", 0): 2}
    a.close()
    b.close()


def test_offsets_file_layout() -> None:
    data = encode_offsets(3, {TP("zz", 1): 10, TP("a", 2): -1}, {"zz": 7})
    magic, version, reserved, seq, count = struct.unpack_from("<4sHHQI", data, 0)
    assert (magic, version, reserved, seq, count) == (b"MKGO", 2, 0, 3, 2)
    p = 20
    entries = []
    for _ in range(count):
        (n,) = struct.unpack_from("<H", data, p)
        topic = data[p + 2 : p + 2 + n].decode()
        partition, offset, topic_id = struct.unpack_from("<IqQ", data, p + 2 + n)
        entries.append((topic, partition, offset, topic_id))
        p += 2 + n + 20
    assert entries == [("a", 2, -1, 0), ("zz", 1, 10, 7)]  # sorted by topic-partition
    assert len(data) == p + 8
    assert struct.unpack_from("<Q", data, p)[0] == xxh3_64_intdigest(data[:p])


@settings(max_examples=100, deadline=None)
@given(
    st.integers(0, 2**64 - 1),
    st.dictionaries(
        st.builds(TP, st.text(min_size=1, max_size=30), st.integers(0, 2**32 - 1)),
        st.integers(-(2**63), 2**63 - 1),
        max_size=8,
    ),
)
def test_offsets_encoding_round_trip(seq: int, offsets: dict) -> None:
    ids = {tp.topic: hash(tp.topic) % 2**64 for tp in offsets}
    assert decode_offsets(encode_offsets(seq, offsets, ids), "p") == (seq, offsets, ids)


def _v1_record(seq: int, offsets: dict) -> bytes:
    """A record version 1 (no topic ids), as minikafka wrote it before ids."""
    parts = [struct.pack("<4sHHQI", b"MKGO", 1, 0, seq, len(offsets))]
    for (topic, partition), offset in sorted(offsets.items()):
        raw = topic.encode()
        parts.append(struct.pack("<H", len(raw)) + raw + struct.pack("<Iq", partition, offset))
    body = b"".join(parts)
    return body + struct.pack("<Q", xxh3_64_intdigest(body))


def test_version_1_records_are_still_read(groups_dir: Path) -> None:
    offsets = {TP("a", 0): 5, TP("b", 3): 9}
    assert decode_offsets(_v1_record(4, offsets), "p") == (4, offsets, {"a": 0, "b": 0})
    (groups_dir / "g").mkdir()
    (groups_dir / "g" / "offsets").write_bytes(_v1_record(4, offsets))
    # Topics from before ids (id 0) keep their offsets.
    store = OffsetStore(str(groups_dir), "g", topic_id=lambda topic: 0)
    assert store.load() == offsets
    store.commit({TP("a", 0): 6})
    assert store.load() == {TP("a", 0): 6, TP("b", 3): 9}
    store.close()


def test_offsets_of_a_recreated_topic_are_dropped(groups_dir: Path) -> None:
    ids = {"t": 11, "u": 12}
    store = OffsetStore(str(groups_dir), "g", topic_id=ids.get)
    store.commit({TP("t", 0): 8, TP("u", 0): 3})
    ids["t"] = 99  # "t" deleted and created again: a new topic
    assert store.load() == {TP("u", 0): 3}
    store.commit({TP("u", 0): 4})
    ids["t"] = 11  # even the old id is gone from the file now
    assert store.load() == {TP("u", 0): 4}
    store.close()


# -- crash safety ---------------------------------------------------------------------


def test_leftover_temp_files_do_not_matter(store: OffsetStore, groups_dir: Path) -> None:
    store.commit({TP("t", 0): 5})
    d = groups_dir / "billing"
    # A committer that died before its rename: garbage, a partial file, a
    # whole newer file — none of it is the committed state.
    (d / "offsets.99999.tmp").write_bytes(b"\xde\xad" * 10)
    (d / "offsets.99998.tmp").write_bytes(encode_offsets(5, {TP("t", 0): 100})[:-3])
    (d / f"offsets.{os.getpid()}.tmp").write_bytes(encode_offsets(9, {TP("t", 0): 77}))
    assert store.load() == {TP("t", 0): 5}
    store.commit({TP("t", 1): 1})
    assert store.load() == {TP("t", 0): 5, TP("t", 1): 1}


def test_creating_the_file_fails_before_rename_keeps_no_offsets(
    store: OffsetStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_rename(src, dst):
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(os, "rename", no_rename)
    with pytest.raises(OSError, match="simulated"):
        store.commit({TP("t", 0): 6})
    monkeypatch.undo()
    assert store.load() == {}
    store.commit({TP("t", 0): 7})
    assert store.load() == {TP("t", 0): 7}


@pytest.mark.parametrize("written", [0, 1, 4, 10, 30, -1])
def test_a_commit_torn_mid_write_leaves_the_previous_offsets(
    store: OffsetStore, monkeypatch: pytest.MonkeyPatch, written: int
) -> None:
    """A crash during the in-place write tears only the slot being written."""
    store.commit({TP("t", 0): 5})
    store.commit({TP("t", 0): 6, TP("u", 1): 1})
    real_pwrite = os.pwrite

    def torn(fd, data, offset):
        real_pwrite(fd, data[:written] if written >= 0 else data[:-1], offset)
        raise OSError("simulated crash mid-write")

    monkeypatch.setattr(os, "pwrite", torn)
    with pytest.raises(OSError, match="simulated"):
        store.commit({TP("t", 0): 7})
    monkeypatch.undo()
    assert store.load() == {TP("t", 0): 6, TP("u", 1): 1}
    store.commit({TP("t", 0): 8})  # the torn slot is simply written again
    assert store.load() == {TP("t", 0): 8, TP("u", 1): 1}
    assert OffsetStore(store.dir.rsplit("/", 1)[0], "billing").load() == store.load()


def test_commits_alternate_slots_and_grow_the_file_when_a_slot_is_full(
    store: OffsetStore, groups_dir: Path
) -> None:
    path = groups_dir / "billing" / "offsets"
    slots = []
    for i in range(4):
        store.commit({TP("t", 0): i})
        slots.append(decode_file(path.read_bytes(), "x").slot)
    assert slots == [0, 1, 0, 1]
    size = path.stat().st_size
    many = {TP(f"topic-{i:03d}", p): i * p for i in range(60) for p in range(8)}
    store.commit(many)  # ~10 KiB of offsets: more than a 4 KiB slot
    assert path.stat().st_size > size
    assert store.load() == {**many, TP("t", 0): 3}
    store.commit({TP("t", 0): 99})
    assert store.load() == {**many, TP("t", 0): 99}


def test_version_1_files_are_read_and_rewritten_on_the_next_commit(groups_dir: Path) -> None:
    (groups_dir / "g").mkdir()
    path = groups_dir / "g" / "offsets"
    path.write_bytes(encode_offsets(4, {TP("t", 0): 10}))
    s = OffsetStore(str(groups_dir), "g")
    assert s.load() == {TP("t", 0): 10}
    s.commit({TP("t", 1): 2})
    state = decode_file(path.read_bytes(), "x")
    assert path.read_bytes()[:4] == b"MKGS"
    assert (state.sequence, state.offsets) == (5, {TP("t", 0): 10, TP("t", 1): 2})
    s.close()


FIRST = {TP("orders", 0): 17, TP("orders", 1): 2**40, TP("pay-ments.x", 3): 0}
SECOND = {**FIRST, TP("orders", 0): 18}


def _committed_file(groups_dir: Path) -> bytes:
    """An offsets file after two commits: FIRST in slot 0, SECOND in slot 1."""
    s = OffsetStore(str(groups_dir), "g")
    s.commit(FIRST)
    s.commit(SECOND)
    s.close()
    return (groups_dir / "g" / "offsets").read_bytes()


def _load_or_error(groups_dir: Path) -> dict | None:
    s = OffsetStore(str(groups_dir), "g")
    try:
        return s.load()
    except minikafka.CorruptLogError as e:
        assert "offsets" in str(e)  # names the file
        return None
    finally:
        s.close()


def _positions(good: bytes) -> list[int]:
    """Every byte of the header and of both slots' records, and every 61st
    byte of the zero padding after them (all padding bytes are alike)."""
    state = decode_file(good, "x")
    record = 4 + len(encode_offsets(state.sequence, state.offsets)) + 8
    used = {*range(16 + record)}
    used |= {*range(16 + state.slot_size, 16 + state.slot_size + record)}
    return sorted(used | set(range(0, len(good), 61)))


def test_truncated_offsets_file_at_every_byte(groups_dir: Path) -> None:
    good = _committed_file(groups_dir)
    path = groups_dir / "g" / "offsets"
    seen = set()
    for n in _positions(good):
        path.write_bytes(good[:n])
        got = _load_or_error(groups_dir)
        assert got in (None, FIRST, SECOND), n  # a committed state or a clear error
        seen.add(None if got is None else got == SECOND)
    assert seen == {None, False, True}  # all three outcomes occur
    path.write_bytes(good)
    assert _load_or_error(groups_dir) == SECOND


def test_flipped_byte_in_offsets_file_at_every_position(groups_dir: Path) -> None:
    good = _committed_file(groups_dir)
    path = groups_dir / "g" / "offsets"
    for i in _positions(good):
        for flip in (0x01, 0xFF):
            bad = bytearray(good)
            bad[i] ^= flip
            path.write_bytes(bytes(bad))
            assert _load_or_error(groups_dir) in (None, FIRST, SECOND), (i, flip)


@pytest.mark.parametrize(
    "content",
    [b"", b"\0" * 100, b"garbage" * 10, b"MKGO" + b"\0" * 24, b"MKGO\x01\x00\x00\x00" + b"\xff" * 40],
)
def test_garbage_offsets_file_is_a_clear_error(groups_dir: Path, content: bytes) -> None:
    (groups_dir / "g").mkdir()
    (groups_dir / "g" / "offsets").write_bytes(content)
    assert _load_or_error(groups_dir) is None


def test_newer_file_format_version_is_refused(groups_dir: Path) -> None:
    s = OffsetStore(str(groups_dir), "g")
    s.commit({TP("t", 0): 1})
    path = groups_dir / "g" / "offsets"
    data = bytearray(path.read_bytes())
    struct.pack_into("<H", data, 4, 3)
    path.write_bytes(bytes(data))
    with pytest.raises(minikafka.CorruptLogError, match="newer"):
        s.load()
    s.close()


def test_newer_format_version_is_refused(groups_dir: Path) -> None:
    data = bytearray(encode_offsets(1, {TP("t", 0): 1}))
    struct.pack_into("<H", data, 4, 3)
    body = bytes(data[:-8])
    data[-8:] = struct.pack("<Q", xxh3_64_intdigest(body))
    (groups_dir / "g").mkdir()
    (groups_dir / "g" / "offsets").write_bytes(bytes(data))
    with pytest.raises(minikafka.CorruptLogError, match="newer"):
        OffsetStore(str(groups_dir), "g").load()


def test_well_checksummed_but_malformed_body_is_a_clear_error(groups_dir: Path) -> None:
    """A file whose checksum matches but whose entries do not fit (a buggy
    writer): still a CorruptLogError, not a struct or Unicode error."""
    (groups_dir / "g").mkdir()
    path = groups_dir / "g" / "offsets"
    for body in (
        struct.pack("<4sHHQI", b"MKGO", 1, 0, 1, 3),  # 3 entries announced, none there
        struct.pack("<4sHHQI", b"MKGO", 1, 0, 1, 1) + struct.pack("<H", 50) + b"abc",
        struct.pack("<4sHHQI", b"MKGO", 1, 0, 1, 1) + struct.pack("<H", 2) + b"\xff\xfe"
        + struct.pack("<Iq", 0, 1),
    ):
        path.write_bytes(body + struct.pack("<Q", xxh3_64_intdigest(body)))
        with pytest.raises(minikafka.CorruptLogError):
            OffsetStore(str(groups_dir), "g").load()


def test_corrupt_offsets_surface_through_the_broker(tmp_path: Path) -> None:
    path = tmp_path / "data"
    with Broker(path) as broker:
        broker.create_topic("t")
        broker.offset_store("g").commit({TP("t", 0): 3})
        assert broker.committed_offsets("g") == {TP("t", 0): 3}
    offsets = next((path / "groups").glob("*/offsets"))
    raw = bytearray(offsets.read_bytes())
    raw[16 + 4 + 20] ^= 1  # inside the only record (slot 0)
    offsets.write_bytes(bytes(raw))
    with Broker(path) as broker, pytest.raises(minikafka.CorruptLogError, match="checksum"):
        broker.committed_offsets("g")


# -- group id encoding ------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=60))
def test_group_id_encoding_round_trip(group_id: str) -> None:
    safe = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
    encoded_len = sum(1 if ch in safe else 3 * len(ch.encode()) for ch in group_id)
    if encoded_len > 240:
        with pytest.raises(minikafka.MiniKafkaError, match="too long"):
            encode_group_id(group_id)
        return
    name = encode_group_id(group_id)
    assert decode_group_id(name) == group_id
    assert set(name) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-%")
    assert name not in (".", "..") and "/" not in name and len(name) <= 240


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=19), st.text(min_size=1, max_size=19))
def test_group_id_encoding_is_injective(a: str, b: str) -> None:
    if a != b:
        assert encode_group_id(a) != encode_group_id(b)


@pytest.mark.parametrize(
    ("group_id", "name"),
    [("billing", "billing"), ("a.b", "a%2Eb"), ("..", "%2E%2E"), ("a/b", "a%2Fb"), ("%", "%25"),
     ("é", "%C3%A9"), ("x y", "x%20y"), ("A-z_9", "A-z_9")],
)
def test_group_id_encoding_examples(group_id: str, name: str) -> None:
    assert encode_group_id(group_id) == name
    assert decode_group_id(name) == group_id


def test_group_id_rules() -> None:
    with pytest.raises(TypeError):
        encode_group_id(5)
    with pytest.raises(minikafka.MiniKafkaError):
        encode_group_id("")
    assert encode_group_id("x" * 240) == "x" * 240
    with pytest.raises(minikafka.MiniKafkaError, match="too long"):
        encode_group_id("x" * 241)
    with pytest.raises(minikafka.MiniKafkaError, match="too long"):
        encode_group_id("/" * 81)  # 243 characters once encoded


def test_any_group_id_stays_inside_groups_dir(tmp_path: Path) -> None:
    with Broker(tmp_path / "data") as broker:
        for gid in ("../escape", "/abs", "a/../../b", "..", "."):
            broker.offset_store(gid).commit({TP("t", 0): 1})
        assert sorted(broker.list_groups()) == sorted(["../escape", "/abs", "a/../../b", "..", "."])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    assert all(p.parent.name == "groups" for p in (tmp_path / "data" / "groups").iterdir())


@pytest.mark.parametrize("name", ["%", "%zz", "%4", "x%", "%C3", "%2e", "%41", "a.b", "%FF", "x" * 241])
def test_list_groups_skips_directories_that_are_not_encoded_group_ids(tmp_path: Path, name: str) -> None:
    # Decoding hand-made names crashed (a stray "%", bad hex, escapes that
    # are not UTF-8) or named a group whose files are elsewhere ("%41" is
    # listed as "A", whose directory is "A"): describe/delete then missed it.
    with Broker(tmp_path / "data") as broker:
        broker.offset_store("g").commit({TP("t", 0): 1})
        made = tmp_path / "data" / "groups" / name
        made.mkdir()
        (made / "offsets").write_bytes(b"")
        assert broker.list_groups() == ["g"]
    report = check(tmp_path / "data")
    assert [f.problem for f in report.findings if f.path == str(made)] == [
        "directory name is not an encoded group id"]


def test_any_group_id_round_trips_through_the_broker(tmp_path: Path) -> None:
    with Broker(tmp_path / "data") as broker:
        broker.create_topic("t")

        @settings(max_examples=150, deadline=None)
        @given(st.text(min_size=1, max_size=90))
        def round_trip(group_id: str) -> None:
            try:
                encode_group_id(group_id)
            except minikafka.InvalidArgumentError:  # too long once encoded: refused, nothing written
                with pytest.raises(minikafka.InvalidArgumentError, match="too long"):
                    minikafka.Consumer(broker, group_id=group_id)
                assert os.listdir(tmp_path / "data" / "groups") == []
                return
            with minikafka.Consumer(broker, group_id=group_id, enable_auto_commit=False) as c:
                c.assign([TP("t", 0)])
                c.commit({TP("t", 0): 0})
            assert broker.list_groups() == [group_id]
            description = broker.describe_group(group_id)
            assert description.group_id == group_id and description.committed == {TP("t", 0): 0}
            broker.delete_group(group_id)
            assert broker.list_groups() == [] and broker.committed_offsets(group_id) == {}

        round_trip()


def test_nested_group_lock_keeps_the_file_lock_until_the_outer_block_ends(groups_dir):
    # A consumer closed by the garbage collector inside a thread already in
    # locked() nests it: the inner block's exit released the flock, and the
    # rest of the outer block ran unprotected against other processes.
    store = OffsetStore(str(groups_dir), "nested")
    other = OffsetStore(str(groups_dir), "nested", request_timeout=0.05)  # another process's view
    with store.locked():
        with store.locked():
            pass
        with pytest.raises(minikafka.TimeoutError), other.locked():
            pass
    with other.locked():  # free once the outer block ended
        pass


def test_group_lock_taken_before_delete_group_still_excludes_after_it(tmp_path: Path) -> None:
    # A store that had opened the group lock kept its descriptor of the
    # lock file delete_group renamed away: after the group was deleted (by
    # any process) and used again, that store and a fresh one both "held"
    # the group lock at once, and a commit through the old one failed with
    # FileNotFoundError on the vanished directory.
    with Broker(tmp_path / "d") as one, Broker(tmp_path / "d") as two:
        one.create_topic("t")
        with minikafka.Consumer(one, group_id="g") as c:  # not a member: delete_group is allowed
            c.assign([TP("t", 0)])
            c.commit({TP("t", 0): 5})
            two.delete_group("g")
            assert two.list_groups() == []
            c.commit({TP("t", 0): 7})  # the group exists again, with this commit
            assert two.committed_offsets("g") == {TP("t", 0): 7}
        old = one.offset_store("g")
        fresh = OffsetStore(str(tmp_path / "d" / "groups"), "g", request_timeout=0.1)
        try:
            with old.locked(), pytest.raises(minikafka.TimeoutError), fresh.locked():
                pass
            with fresh.locked(), pytest.raises(minikafka.TimeoutError), old.locked(timeout=0.1):
                pass
        finally:
            fresh.close()


def test_forgetting_a_topic_does_not_create_offsets_for_a_group(tmp_path: Path) -> None:
    # delete_topic drops the topic's offsets of every group it listed; a
    # group deleted meanwhile came back as an empty group with an offsets file.
    with Broker(tmp_path / "d") as broker:
        store = broker.offset_store("gone")
        store.forget_topic("t")
        assert not os.path.exists(store.path)
        assert broker.list_groups() == []


def test_topic_ids_are_read_again_whenever_topic_json_is_replaced(tmp_path: Path) -> None:
    # Commits check each topic's id (a recreated topic's offsets are stale);
    # the ids are cached by (inode, mtime, size) of topic.json, with the file
    # read last held open so that a replacement can never reuse its inode and
    # look unchanged, even with the same size and a coarse timestamp.
    from minikafka.topic import METADATA, TopicIds

    topic_dir = tmp_path / "t"
    topic_dir.mkdir()
    path = topic_dir / METADATA

    def write(topic_id: int) -> None:
        tmp = tmp_path / "new.json"
        tmp.write_text(json.dumps({"id": topic_id}))
        os.replace(tmp, path)

    ids = TopicIds(str(tmp_path))
    try:
        assert ids.get("t") is None
        write(1111)
        assert ids.get("t") == 1111
        before = os.stat(path)
        write(2222)
        write(3333)  # same size as the first; its inode may be the one freed by 2222's
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # the same timestamp tick
        assert os.stat(path).st_size == before.st_size
        assert ids.get("t") == 3333
        path.unlink()
        assert ids.get("t") is None
        assert ids.get("../t") is None and ids.get("") is None
    finally:
        ids.close()


def test_a_commit_after_the_topic_was_recreated_elsewhere_drops_the_old_offsets(tmp_path: Path) -> None:
    # The broker that committed (and cached the topic's id) must notice a
    # topic deleted and created again by another broker (another process)
    # whose delete did not drop the group's offsets (killed before it could).
    with Broker(tmp_path / "d") as a, Broker(tmp_path / "d") as b:
        a.create_topic("t", partitions=2)
        a.offset_store("g").commit({TopicPartition("t", 0): 5, TopicPartition("t", 1): 7})
        assert a.committed_offsets("g") == {TopicPartition("t", 0): 5, TopicPartition("t", 1): 7}
        topic_json = tmp_path / "d" / "topics" / "t" / "topic.json"
        meta = json.loads(topic_json.read_text())
        meta["id"] = meta["id"] ^ 1  # what b's delete + create gives, minus the offsets cleanup
        (tmp_path / "new.json").write_text(json.dumps(meta))
        os.replace(tmp_path / "new.json", topic_json)
        a.offset_store("g").commit({TopicPartition("t", 1): 1})
        assert a.committed_offsets("g") == {TopicPartition("t", 1): 1}
        assert b.committed_offsets("g") == {TopicPartition("t", 1): 1}
