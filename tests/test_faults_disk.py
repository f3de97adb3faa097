"""Full disk (issue 9, and defect 2): a real 8 MiB tmpfs mounted for the
test. Appends, rolls, commits and topic creation on a full disk must give a
clean ``OSError`` (never SIGBUS, so writers run in child processes), lose
nothing acknowledged, and go on once space is freed."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from faults_helpers import read_all, run_child

import minikafka
from minikafka import Broker, Consumer, Producer, TopicPartition


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs, unmounted after the test."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"cannot mount a tmpfs for the full-disk tests: {e}")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the full-disk tests (needs root): {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=10)


def fill(disk: Path, leave: int = 0) -> Path:
    """Fill the disk up, then free ``leave`` bytes (whole pages)."""
    spare = disk / "spare.fill"
    if leave:
        spare.write_bytes(b"\1" * leave)
    filler = disk / "filler"
    with open(filler, "wb") as f:
        chunk = b"\1" * (1 << 16)
        try:
            while True:
                f.write(chunk)
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC
    # Top up the last partial chunk so the disk is really full.
    with open(filler, "ab", buffering=0) as f:
        for size in (4096, 512, 1):
            try:
                while True:
                    f.write(b"\1" * size)
            except OSError:
                pass
    if leave:
        spare.unlink()
    return filler


PRODUCE_UNTIL_FULL = """
import json, sys, minikafka
out = open(sys.argv[2], "a", buffering=1)
b = minikafka.Broker(sys.argv[1])
p = minikafka.Producer(b, linger_ms=0)
i = 0
try:
    while True:
        meta = p.send("t", b"%06d" % i + b"v" * 20_000, key=b"k%d" % i,
                      partition=i % 2).result(5)
        out.write(json.dumps([i, meta.partition, meta.offset]) + "\\n")
        i += 1
except OSError as e:
    print("OSERROR", e.errno, e, flush=True)
except BaseException as e:
    print("RAISED", type(e).__name__, e, flush=True)
"""


def _fill_by_producing(disk: Path, tmp_path: Path) -> tuple[Path, Path, list[list[int]]]:
    data = disk / "data"
    with Broker(data, segment_bytes=1 << 20) as b:
        b.create_topic("t", partitions=2)
    filler = fill(disk, leave=3 << 20)  # room for a roll or two, then ENOSPC
    acks = tmp_path / "acks.jsonl"
    done = run_child(PRODUCE_UNTIL_FULL, str(data), str(acks), timeout=60)
    assert done.returncode == 0, f"the writer died (signal {-done.returncode}?): {done.stderr}"
    assert done.stdout.startswith("OSERROR 28"), done.stdout + done.stderr
    acked = [json.loads(line) for line in acks.read_text().splitlines()]
    assert len(acked) > 10
    return data, filler, acked


def _check_acked(b: Broker, acked: list[list[int]]) -> None:
    for partition in (0, 1):
        sent = {o: i for i, p, o in acked if p == partition}
        got = read_all(b, "t", partition)
        assert [r.offset for r in got][: len(sent)] == sorted(sent), "acknowledged record lost"
        for r in got[: len(sent)]:
            assert r.value == b"%06d" % sent[r.offset] + b"v" * 20_000


def test_appends_and_rolls_on_a_full_disk(disk: Path, tmp_path: Path) -> None:
    data, filler, acked = _fill_by_producing(disk, tmp_path)
    filler.unlink()  # space freed: everything acknowledged is there, producing goes on
    with Broker(data) as b:
        _check_acked(b, acked)
        ends = b.topic("t").end_offsets()
        with Producer(b) as p:
            meta = p.send("t", b"after", partition=0).result(5)
        assert meta.offset == ends[0]
        assert read_all(b, "t", 0)[-1].value == b"after"


def test_reading_on_a_full_disk_needs_no_space(disk: Path, tmp_path: Path) -> None:
    data, _filler, acked = _fill_by_producing(disk, tmp_path)
    with Broker(data) as b:
        _check_acked(b, acked)


def test_topic_creation_on_a_full_disk(disk: Path) -> None:
    data = disk / "data"
    with Broker(data, segment_bytes=1 << 20) as b:
        b.create_topic("first")
        filler = fill(disk)
        with pytest.raises(OSError) as info:
            b.create_topic("second", partitions=4)
        assert info.value.errno == errno.ENOSPC
        assert b.list_topics() == ["first"]
        filler.unlink()
        b.create_topic("second", partitions=4)
        assert b.list_topics() == ["first", "second"]
        with Producer(b) as p:
            assert p.send("second", b"x", partition=3).result(5).offset == 0


LONG = "t" * 200  # long topic names make the offsets record outgrow its 4 KiB slot


def test_commit_on_a_nearly_full_disk_keeps_the_previous_offsets(disk: Path) -> None:
    data = disk / "data"
    with Broker(data, segment_bytes=4096) as b:
        b.create_topic(LONG, partitions=40)
        tps = [TopicPartition(LONG, p) for p in range(40)]
        with Consumer(b, group_id="g") as c:
            c.assign(tps)
            c.commit({tps[0]: 1})
            fill(disk, leave=4096)  # one page: the grown offsets file is written short
            try:
                c.commit(dict.fromkeys(tps, 2))
            except OSError:
                pass  # the promise: raise, and keep the old offsets
            else:
                pass  # returning is allowed only if the new offsets are all there
    with Broker(data) as b:
        offsets = b.committed_offsets("g")  # CorruptLogError today
        assert offsets in ({tps[0]: 1}, dict.fromkeys(tps, 2))


def test_commit_on_a_full_disk_in_place_goes_on(disk: Path) -> None:
    data = disk / "data"
    with Broker(data, segment_bytes=4096) as b:
        b.create_topic("t", partitions=2)
        tps = [TopicPartition("t", p) for p in range(2)]
        with Consumer(b, group_id="g") as c:
            c.assign(tps)
            c.commit({tps[0]: 1})
            filler = fill(disk)
            c.commit({tps[0]: 2, tps[1]: 3})  # in place in the other slot: no new blocks
            assert b.committed_offsets("g") == {tps[0]: 2, tps[1]: 3}
            filler.unlink()
            c.commit({tps[1]: 4})
    with Broker(data) as b:
        assert b.committed_offsets("g") == {tps[0]: 2, tps[1]: 4}


def test_mounted_disk_is_small(disk: Path) -> None:
    st = os.statvfs(disk)
    assert st.f_blocks * st.f_frsize <= 8 << 20
    assert minikafka.MiniKafkaError  # the package imports alongside the mount
