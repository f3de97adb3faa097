"""FileLock timeouts (issue 9 #12, lock half): a real second process holds
the lock, running or frozen with SIGSTOP; ``acquire(timeout=...)`` must
return within its deadline with a ``minikafka.TimeoutError`` that names the
lock file and the holder's pid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import minikafka
from minikafka.batch import BatchBuilder
from minikafka.locking import FileLock

HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(60)
"""


def hold(path: Path) -> subprocess.Popen[str]:
    """A child process that holds an flock on ``path`` until killed."""
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "locked"
    return child


@pytest.fixture
def lock_path(tmp_path: Path) -> Path:
    return tmp_path / "writer.lock"


@pytest.fixture
def holder(lock_path: Path) -> Iterator[subprocess.Popen[str]]:
    child = hold(lock_path)
    yield child
    child.kill()
    child.wait()


def test_timeout_error_is_both_kinds() -> None:
    assert issubclass(minikafka.TimeoutError, minikafka.MiniKafkaError)
    assert issubclass(minikafka.TimeoutError, TimeoutError)
    assert "TimeoutError" in minikafka.__all__


def test_free_lock_is_taken_at_once(lock_path: Path) -> None:
    lock = FileLock(str(lock_path))
    started = time.monotonic()
    assert lock.acquire(timeout=5)
    assert time.monotonic() - started < 0.5
    lock.release()
    lock.close()


@pytest.mark.parametrize("frozen", [False, True], ids=["running", "sigstopped"])
def test_held_lock_times_out_naming_file_and_pid(
        lock_path: Path, holder: subprocess.Popen[str], frozen: bool) -> None:
    if frozen:
        os.kill(holder.pid, signal.SIGSTOP)
    lock = FileLock(str(lock_path))
    started = time.monotonic()
    with pytest.raises(minikafka.TimeoutError) as info:
        lock.acquire(timeout=0.3)
    waited = time.monotonic() - started
    assert 0.3 <= waited < 1.5
    message = str(info.value)
    assert str(lock_path) in message
    assert f"pid {holder.pid}" in message
    assert lock.holders() == [holder.pid]
    assert lock.acquire(blocking=False) is False
    # The kernel drops the flock of a dead process: the next try succeeds.
    holder.kill()
    holder.wait()
    assert lock.acquire(timeout=2)
    assert lock.holders() == [os.getpid()]
    lock.close()


def test_waiter_gets_the_lock_when_the_holder_lets_go(
        lock_path: Path, holder: subprocess.Popen[str]) -> None:
    lock = FileLock(str(lock_path))
    killer = subprocess.Popen([sys.executable, "-c",
                               f"import os,time,signal; time.sleep(0.2); os.kill({holder.pid}, 9)"])
    started = time.monotonic()
    assert lock.acquire(timeout=5)
    assert time.monotonic() - started < 2
    killer.wait()
    lock.close()


def test_zero_timeout_is_one_try(lock_path: Path, holder: subprocess.Popen[str]) -> None:
    lock = FileLock(str(lock_path))
    started = time.monotonic()
    with pytest.raises(minikafka.TimeoutError):
        lock.acquire(timeout=0)
    assert time.monotonic() - started < 0.2
    lock.close()


def test_lock_file_content_is_never_written(lock_path: Path) -> None:
    # Member lock files carry a heartbeat: the lock must not write into them.
    lock_path.write_bytes(b"heartbeat data")
    lock = FileLock(str(lock_path))
    assert lock.acquire(timeout=1)
    lock.release()
    lock.close()
    assert lock_path.read_bytes() == b"heartbeat data"


def test_retention_and_appends_wait_at_most_request_timeout(tmp_path: Path) -> None:
    """Writer-lock users of the storage layer: ``Topic.apply_retention``
    (default: the broker's ``request_timeout``) and ``Partition.append``
    with a timeout raise naming the lock file instead of waiting for a
    holder that never lets go."""
    with minikafka.Broker(tmp_path, retention_bytes=1 << 20, request_timeout=0.3) as b:
        b.create_topic("t")
        with minikafka.Producer(b) as p:
            p.send("t", b"x")
        lock = tmp_path / "topics" / "t" / "0" / "writer.lock"
        holder = hold(lock)
        try:
            t0 = time.monotonic()
            with pytest.raises(minikafka.TimeoutError, match=str(lock)) as info:
                b.topic("t").apply_retention()
            assert time.monotonic() - t0 < 2.0
            assert str(holder.pid) in str(info.value)
            batch = BatchBuilder(0)
            batch.append(0, None, b"y")
            with pytest.raises(minikafka.TimeoutError, match=str(lock)):
                b.topic("t").partition(0).append(batch, timeout=0.2)
        finally:
            holder.kill()
            holder.wait()
        b.topic("t").apply_retention()  # free again: no error
        assert b.topic("t").end_offsets() == {0: 1}  # the timed-out append wrote nothing


def test_apply_retention_checks_its_timeout(tmp_path: Path) -> None:
    """``Topic.apply_retention(timeout)`` took any value: 'x' failed with
    "unsupported operand" from deep inside, -1 and NaN were taken as 0,
    math.inf and 1e300 raised OverflowError from the lock. Now a bad one
    raises naming ``timeout``; inf (or a value longer than a lock can wait)
    means no limit."""
    with minikafka.Broker(tmp_path, segment_bytes=4096, retention_bytes=8192) as b:
        topic = b.create_topic("t")
        with minikafka.Producer(b, linger_ms=0) as p:
            for _ in range(100):
                p.send("t", b"v" * 100)
        for bad, error in [("1", TypeError), (True, TypeError), (-1, minikafka.InvalidArgumentError),
                           (float("nan"), minikafka.InvalidArgumentError)]:
            with pytest.raises(error, match="timeout"):
                topic.apply_retention(bad)
        for unbounded in (float("inf"), 1e300):
            topic.apply_retention(unbounded)
        assert topic.beginning_offsets()[0] > 0 and topic.end_offsets() == {0: 100}


def test_producer_waits_accept_a_timeout_longer_than_a_lock_can_wait(tmp_path: Path) -> None:
    """flush/result/close(1e300) raised OverflowError from the lane's lock."""
    with minikafka.Broker(tmp_path) as b:
        b.create_topic("t")
        p = minikafka.Producer(b, linger_ms=10_000)
        p.send("t", b"a")
        p.flush(1e300)
        assert p.send("t", b"b").result(timeout=1e300).offset == 1
        p.send("t", b"c")
        p.close(1e300)
        assert b.topic("t").end_offsets() == {0: 3}


def test_alter_topic_with_a_busy_partition_keeps_the_change_and_applies_the_rest(tmp_path: Path) -> None:
    """alter_topic saved the new retention, then raised TimeoutError when one
    partition's writer lock was held (a frozen writer): a done change
    reported as failed, and the partitions after it were not applied."""
    with minikafka.Broker(tmp_path, segment_bytes=4096, request_timeout=0.5) as b:
        b.create_topic("t", partitions=3)
        with minikafka.Producer(b, linger_ms=0) as p:
            for part in (0, 2):
                for _ in range(200):
                    p.send("t", b"x" * 100, partition=part)
        holder = hold(tmp_path / "topics" / "t" / "1" / "writer.lock")
        try:
            t0 = time.monotonic()
            topic = b.alter_topic("t", retention_bytes=4096)
            assert time.monotonic() - t0 < 3.0
        finally:
            holder.kill()
            holder.wait()
        assert topic.config.retention_bytes == 4096
        begins = topic.beginning_offsets()
        assert begins[0] > 0 and begins[2] > 0, begins  # applied on both sides of the busy one


def test_a_group_join_that_times_out_waits_request_timeout_in_all_and_leaves_no_seat(
        tmp_path: Path) -> None:
    """Consumer(..., group_id=) whose join timed out on a held group lock
    then closed itself, waiting request_timeout again to leave: the
    constructor took twice request_timeout. Its member lock is released
    all the same, so peers see no live member."""
    with minikafka.Broker(tmp_path, request_timeout=1.5) as b:
        b.create_topic("t")
        minikafka.Consumer(b, "t", group_id="g").close()  # the group's directory exists
        holder = hold(tmp_path / "groups" / "g" / "lock")
        try:
            t0 = time.monotonic()
            with pytest.raises(minikafka.TimeoutError, match="groups/g/lock"):
                minikafka.Consumer(b, "t", group_id="g", session_timeout=60.0)
            assert time.monotonic() - t0 < 2.4  # 1.5 s, not 3 s
            members = tmp_path / "groups" / "g" / "members"
            for member in members.iterdir():  # no member lock left held by this process
                probe = FileLock(str(member))
                assert probe.acquire(blocking=False), member
                probe.close()
        finally:
            holder.kill()
            holder.wait()
