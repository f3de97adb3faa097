"""A mirror's group: one default group per destination (old-style
progress taken over once), and one running mirror per group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import minikafka
from minikafka.kafka.mirror import default_group, legacy_group
from tests.cli_helpers import default_sigint

ROOT = Path(__file__).resolve().parent.parent


def fill(broker: minikafka.Broker, topic: str, start: int, count: int, partitions: int = 3) -> None:
    with minikafka.Producer(broker) as p:
        for i in range(start, start + count):
            p.send(topic, b"value-%d" % i, key=b"k%d" % i, partition=i % partitions)


def total(path: Path, topic: str) -> int:
    with minikafka.Broker(path) as b:
        return sum(b.topic(topic).end_offsets().values())


@pytest.fixture
def source(tmp_path: Path) -> minikafka.Broker:
    broker = minikafka.Broker(tmp_path / "src")
    broker.create_topic("events", partitions=3)
    yield broker
    broker.close()


def test_each_destination_has_its_own_default_group(source: minikafka.Broker, tmp_path: Path) -> None:
    """Mirroring to A, then to B: B got nothing (A's progress was shared)."""
    fill(source, "events", 0, 30)
    a = minikafka.mirror(source, tmp_path / "a", "events", progress=False)
    b = minikafka.mirror(source, tmp_path / "b", "events", progress=False)
    assert (a.records, b.records) == (30, 30)
    assert a.group_id != b.group_id
    assert a.group_id == default_group("events", f"dir:{os.path.realpath(tmp_path / 'a')}")
    assert a.group_id.startswith("minikafka-mirror.events.")
    # stable: the same destination, however it is named, continues its own progress
    fill(source, "events", 30, 6)
    (tmp_path / "link").symlink_to(tmp_path / "a")
    again = minikafka.mirror(source, f"file://{tmp_path / 'link'}", "events", progress=False)
    assert (again.group_id, again.records) == (a.group_id, 6)
    # another destination topic of the same destination is another copy
    other = minikafka.mirror(source, tmp_path / "a", "events", destination_topic="copy", progress=False)
    assert other.records == 36 and other.group_id != a.group_id
    assert total(tmp_path / "a", "events") == 36 and total(tmp_path / "b", "events") == 30


def test_each_kafka_destination_has_its_own_default_group(source: minikafka.Broker, tmp_path: Path,
                                                          kafka_url: str) -> None:
    topic = f"dest-{uuid.uuid4().hex[:10]}"
    source.create_topic(topic, partitions=2)
    fill(source, topic, 0, 10, partitions=2)
    there = minikafka.mirror(source, kafka_url, topic, progress=False)
    here = minikafka.mirror(source, tmp_path / "d", topic, progress=False)
    assert (there.records, here.records) == (10, 10) and there.group_id != here.group_id
    assert minikafka.mirror(source, kafka_url, topic, progress=False).records == 0


def test_old_default_progress_is_taken_over_for_its_destination_only(source: minikafka.Broker,
                                                                    tmp_path: Path) -> None:
    """An upgrade: the old default group (one per topic) copied 30 records
    to A. Mirroring to A again must not copy them twice; B, a new and empty
    destination, gets everything."""
    fill(source, "events", 0, 30)
    old = minikafka.mirror(source, tmp_path / "a", "events", group_id=legacy_group("events"), progress=False)
    assert old.records == 30
    fill(source, "events", 30, 6)
    a = minikafka.mirror(source, tmp_path / "a", "events", progress=False)
    assert (a.records, a.carried_from) == (6, legacy_group("events"))
    assert total(tmp_path / "a", "events") == 36
    # taken over once: the new group has its own progress now
    again = minikafka.mirror(source, tmp_path / "a", "events", progress=False)
    assert (again.records, again.carried_from) == (0, None)
    b = minikafka.mirror(source, tmp_path / "b", "events", progress=False)
    assert (b.records, b.carried_from) == (36, None)


def _cli(*argv: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "minikafka", "mirror", *argv], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=default_sigint)


def _wait_copied(path: Path, topic: str, count: int, proc: subprocess.Popen[str],
                 timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if path.exists() and (path / "minikafka.json").exists():
            with minikafka.Broker(path) as b:
                if topic in b.list_topics() and sum(b.topic(topic).end_offsets().values()) >= count:
                    return
        time.sleep(0.2)
    raise AssertionError(f"the first mirror did not copy {count} records within {timeout} s")


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)


def test_a_second_running_mirror_of_a_group_is_refused(source: minikafka.Broker, tmp_path: Path) -> None:
    """Two mirrors of one group at once both copied every record (they
    assign, so neither is a live member the other could see)."""
    fill(source, "events", 0, 30)
    dest = tmp_path / "d"
    first = _cli(str(source.path), str(dest), "-t", "events", "--follow", "-q")
    try:
        _wait_copied(dest, "events", 30, first)
        with pytest.raises(minikafka.InvalidArgumentError, match="held by another running mirror"):
            minikafka.mirror(source, dest, "events", progress=False)
        fill(source, "events", 30, 6)
        _wait_copied(dest, "events", 36, first)
    finally:
        _stop(first)
    assert total(dest, "events") == 36
    # once it stopped, the group is free
    fill(source, "events", 36, 4)
    assert minikafka.mirror(source, dest, "events", progress=False).records == 4


def test_two_mirrors_started_together_copy_each_record_once(source: minikafka.Broker, tmp_path: Path) -> None:
    fill(source, "events", 0, 3000)
    dest = tmp_path / "d"
    procs = [_cli(str(source.path), str(dest), "-t", "events", "-q") for _ in range(2)]
    outcomes = [(*p.communicate(timeout=120), p.returncode) for p in procs]
    assert total(dest, "events") == 3000, outcomes
    assert any(code == 0 for _out, _err, code in outcomes), outcomes
    for _out, err, code in outcomes:
        assert code == 0 or "held by another running mirror" in err, outcomes


def test_a_second_running_mirror_of_a_kafka_group_is_refused(tmp_path: Path, kafka_url: str) -> None:
    """The same on a Kafka source, where the group's members are not
    even reported (Tansu's DescribeGroups lists none)."""
    topic = f"held-{uuid.uuid4().hex[:10]}"
    with minikafka.connect(kafka_url) as k:
        k.create_topic(topic, partitions=2)
        with minikafka.Producer(k) as p:
            for i in range(20):
                p.send(topic, b"v%d" % i, partition=i % 2)
    dest = tmp_path / "d"
    first = _cli(kafka_url, str(dest), "-t", topic, "-g", "held", "--follow", "-q")
    try:
        _wait_copied(dest, topic, 20, first)
        started = time.monotonic()
        with pytest.raises(minikafka.InvalidArgumentError, match="held by another running mirror"):
            minikafka.mirror(kafka_url, tmp_path / "other", topic, group_id="held", progress=False)
        assert time.monotonic() - started < 60
        assert first.poll() is None
    finally:
        _stop(first)
    assert total(dest, topic) == 20
    with minikafka.connect(kafka_url) as k:
        assert sum(k.committed_offsets("held").values()) == 20
    # once it stopped, the group is free (its hold left the group on close)
    again = minikafka.mirror(kafka_url, dest, topic, group_id="held", progress=False)
    assert again.records == 0
