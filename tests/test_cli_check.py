"""minikafka.check: verify a data directory, find each kind of damage with
its file and position, and repair only what recovery can fix."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

import minikafka
from minikafka.batch import Status
from minikafka.check import check, open_segment_file, repair, walk_segment
from tests.cli_helpers import cli


def make_dir(path: Path, records: int = 3000) -> Path:
    with minikafka.Broker(path, segment_bytes=1 << 16) as broker:
        broker.create_topic("t", partitions=2)
        with minikafka.Producer(broker) as producer:
            for i in range(0, records, 100):
                producer.send_many("t", [b"v%05d" % j + b"x" * 90 for j in range(i, i + 100)], partition=0)
            producer.send("t", b"one", key=b"k", partition=1, headers=[("h", b"1")])
        with minikafka.Consumer(broker, "t", group_id="g", auto_offset_reset="earliest",
                                consumer_timeout=0.2) as consumer:
            assert sum(1 for _ in consumer) == records + 1
    return path


def segments(path: Path, partition: int = 0) -> list[Path]:
    return sorted((path / "topics" / "t" / str(partition)).glob("*.log"))


def end_position(seg_path: Path) -> int:
    seg = open_segment_file(str(seg_path))
    try:
        return next(s.position for s in walk_segment(seg) if s.info.status is not Status.BATCH)
    finally:
        seg.close()


def flip(path: Path, position: int) -> None:
    with open(path, "r+b") as f:
        f.seek(position)
        b = f.read(1)
        f.seek(position)
        f.write(bytes([b[0] ^ 0x40]))


def read_all(path: Path) -> list[bytes]:
    with minikafka.Broker(path) as broker, minikafka.Consumer(
        broker, "t", auto_offset_reset="earliest", consumer_timeout=0.2
    ) as consumer:
        return [r.value for r in consumer if r.partition == 0]


def test_healthy_directory_has_no_findings(tmp_path):
    d = make_dir(tmp_path / "d")
    report = check(d)
    assert report.ok, report.findings
    assert report.records == 3001
    assert report.segments == len(segments(d)) + 1 >= 4
    assert report.files > report.segments  # indexes, metadata, group files too


def test_flipped_byte_in_a_sealed_segment_is_damage_that_is_not_repaired(tmp_path):
    d = make_dir(tmp_path / "d")
    sealed = segments(d)[1]
    flip(sealed, 64 + 60)  # inside the first batch's records
    damaged = sealed.read_bytes()
    report = check(d)
    [finding] = report.findings
    assert finding.path == str(sealed) and finding.position == 64
    assert "sealed" in finding.problem and finding.repair is None
    after = repair(d, report)
    assert not after.repaired and not after.ok
    assert sealed.read_bytes() == damaged  # left for a person to look at


def test_torn_tail_is_cut_by_repair_and_records_before_survive(tmp_path):
    d = make_dir(tmp_path / "d")
    active = segments(d)[-1]
    pos = end_position(active)
    with open(active, "r+b") as f:  # a batch whose writer died half way
        f.seek(pos)
        f.write(struct.pack("<I", 500) + os.urandom(100))
    report = check(d)
    [finding] = report.findings
    assert finding.path == str(active) and finding.position == pos
    assert "torn tail" in finding.problem and finding.repair is not None
    after = repair(d, report)
    assert after.ok, after.findings
    assert [f.problem for f in after.repaired] == [finding.problem]
    values = read_all(d)
    assert len(values) == 3000 and values[-1].startswith(b"v02999")


def test_damage_with_valid_batches_after_it_is_not_cut(tmp_path):
    d = make_dir(tmp_path / "d")
    active = segments(d)[-1]
    flip(active, 64 + 60)  # the first batch of the active segment; batches follow
    report = check(d)
    [finding] = report.findings
    assert "valid batches follow" in finding.problem and finding.repair is None
    repair(d, report)
    with open(active, "rb") as f:
        f.seek(64)
        assert struct.unpack("<I", f.read(4))[0] != 0  # not cut


def test_deleted_and_damaged_indexes_are_rebuilt(tmp_path):
    d = make_dir(tmp_path / "d")
    segs = segments(d)
    os.unlink(segs[0].with_suffix(".index"))
    os.unlink(segs[-1].with_suffix(".index"))
    with open(segs[1].with_suffix(".index"), "r+b") as f:
        f.seek(32 + 4)  # first entry's position
        f.write(struct.pack("<I", 1000))
    report = check(d)
    assert {(Path(f.path).name, f.repair is not None) for f in report.findings} == {
        (segs[0].with_suffix(".index").name, True), (segs[-1].with_suffix(".index").name, True),
        (segs[1].with_suffix(".index").name, True)}
    assert any(f.position == 32 for f in report.findings)
    after = repair(d, report)
    assert after.ok, after.findings
    assert len(after.repaired) == 3
    assert len(read_all(d)) == 3000


@pytest.mark.parametrize("damage", ["deleted", "not json"])
def test_a_lost_directory_marker_is_written_again_and_the_records_stay(tmp_path, damage):
    d = make_dir(tmp_path / "d")
    if damage == "deleted":
        (d / "minikafka.json").unlink()
    else:
        (d / "minikafka.json").write_text("{nope")
    report = check(d)
    assert [Path(f.path).name for f in report.repairable] == ["minikafka.json"]
    after = repair(d, report)
    assert after.ok, after.findings
    assert [Path(f.path).name for f in after.repaired] == ["minikafka.json"]
    assert sorted(p.name for p in d.iterdir()) == ["doorbell", "groups", "minikafka.json", "tmp", "topics"]
    assert len(read_all(d)) == 3000


def test_metadata_and_group_files(tmp_path):
    d = make_dir(tmp_path / "d")
    (d / "topics" / "t" / "topic.json").write_text("{not json")
    offsets = next((d / "groups").iterdir()) / "offsets"
    data = bytearray(offsets.read_bytes())
    data[0:4] = b"XXXX"
    offsets.write_bytes(bytes(data))
    (d / "minikafka.json").write_text('{"format": 99}')
    problems = {Path(f.path).name: f.problem for f in check(d).findings}
    assert "not valid JSON" in problems["topic.json"]
    assert "group 'g'" in problems["offsets"]
    assert "newer" in problems["minikafka.json"]


def test_a_damaged_group_state_is_removed_by_repair_and_the_offsets_stay(tmp_path):
    """check found a damaged state.json but repair left it, although the
    members write it again: the group stayed unusable (joins raised) until
    the user deleted the file by hand. repair removes it under the group
    lock; the committed offsets stay and the group works again."""
    d = make_dir(tmp_path / "d")
    state = next((d / "groups").iterdir()) / "state.json"
    state.write_text("{nope")
    report = check(d)
    assert [Path(f.path).name for f in report.repairable] == ["state.json"]
    after = repair(d, report)
    assert after.ok, after.findings
    assert [Path(f.path).name for f in after.repaired] == ["state.json"]
    with minikafka.Broker(d) as broker:
        assert broker.committed_offsets("g") == {minikafka.TopicPartition("t", 0): 3000,
                                                 minikafka.TopicPartition("t", 1): 1}
        with minikafka.Consumer(broker, "t", group_id="g") as consumer:
            consumer.poll(timeout=0.5)
            assert consumer.assignment() == {minikafka.TopicPartition("t", p) for p in (0, 1)}


def test_not_a_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such data directory"):
        check(tmp_path / "missing")
    (tmp_path / "file").write_text("x")  # -d pointing at a file: say so, not "no such"
    r = cli("-d", tmp_path / "file", "check")
    assert r.status == 1
    assert r.err == f"minikafka: error: {tmp_path / 'file'}: is a file, not a data directory\n"


def test_progress_reports_every_segment_byte(tmp_path):
    d = make_dir(tmp_path / "d", records=500)
    calls: list[tuple[int, int]] = []
    check(d, progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1][0] <= calls[-1][1]
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)


@pytest.mark.parametrize("marker", [None, '{"name": "my-app"}', "not json"])
def test_repair_does_not_take_over_a_directory_that_is_not_minikafkas(tmp_path, marker):
    """check --repair -d WRONG_DIR: a stranger's directory (even one with a
    file called minikafka.json) is reported, and left exactly as it was."""
    d = tmp_path / "project"
    (d / "src").mkdir(parents=True)
    (d / "README").write_text("mine")
    if marker is not None:
        (d / "minikafka.json").write_text(marker)
    before = sorted(p.name for p in d.iterdir())
    report = check(d)
    assert not report.ok and report.repairable == ()
    assert "not repaired" in report.findings[0].problem
    r = cli("-d", d, "check", "--repair")
    assert r.status == 1 and "cannot repair" in r.text
    assert sorted(p.name for p in d.iterdir()) == before
    if marker is not None:
        assert (d / "minikafka.json").read_text() == marker


def test_a_roll_during_the_check_is_not_damage(tmp_path, monkeypatch):
    """check of a live directory: a writer rolls the partition between the
    listing of its segments and the read of the last one (which now ends
    with an end marker, its successor unlisted). That is confirmed under
    the writer lock, and found to be no damage."""
    import minikafka.check as checking

    d = tmp_path / "d"
    with minikafka.Broker(d, segment_bytes=4096) as broker:
        broker.create_topic("t")
        with minikafka.Producer(broker) as producer:
            producer.send_many("t", [b"x" * 100] * 5)
            real = checking._Checker.check_segment
            rolled = []

            def roll_first(self, directory, base, last, expected):
                if last and not rolled:  # the writer moves on after the listing
                    rolled.append(base)
                    producer.send_many("t", [b"y" * 100] * 60)
                    assert len(segments(d)) > 1
                return real(self, directory, base, last, expected)

            monkeypatch.setattr(checking._Checker, "check_segment", roll_first)
            report = check(d)
    assert rolled and report.ok, report.findings
    assert report.records == 65


def test_files_vanishing_during_the_check_are_checked_again_or_said(tmp_path, monkeypatch):
    """A segment deleted between listing and reading (retention): checked
    again under the writer lock; if a writer holds it too long, the
    partition is reported as not verified, never passed over silently."""
    import minikafka.check as checking
    from minikafka.locking import FileLock

    d = make_dir(tmp_path / "d", records=300)
    real = checking._Checker._check_partition
    calls = []

    def vanish_once(self, directory):
        calls.append(directory)
        if len(calls) == 1:
            raise FileNotFoundError(2, "No such file or directory", os.path.join(directory, "x.log"))
        return real(self, directory)

    monkeypatch.setattr(checking._Checker, "_check_partition", vanish_once)
    assert check(d).ok and len(calls) == 3  # partition 0 twice, then partition 1
    calls.clear()
    monkeypatch.setattr(checking, "RECHECK_WAIT", 0.2)
    held = FileLock(str(d / "topics" / "t" / "0" / "writer.lock"))
    held.acquire()
    try:
        report = check(d)
    finally:
        held.close()
    [finding] = report.findings
    assert "x.log vanished during the check" in finding.problem and "not verified" in finding.problem
