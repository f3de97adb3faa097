"""Issue 9, defect 12: calls that never return while another process holds
(or is frozen, SIGSTOP, while holding) a lock they need. Every call must
honour its timeout (or ``request_timeout`` where it takes none) and raise
``minikafka.TimeoutError`` naming the lock. Each call runs in a child
process that is killed at a deadline, so a hang fails the test instead of
hanging the suite."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import struct
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from faults_helpers import call_bounded, read_all, run_child, start_child, wait_for

import minikafka

HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(120)
"""

# Child prologue: a Broker with a 1 s request_timeout where the option
# exists (today it does not, so the child falls back to the default and the
# test shows the hang).
PROLOGUE = """
import sys, time, minikafka
def broker(**kw):
    try:
        return minikafka.Broker(sys.argv[1], request_timeout=1.0, **kw)
    except TypeError:
        return minikafka.Broker(sys.argv[1], **kw)
def outcome(fn):
    t0 = time.monotonic()
    try:
        fn()
    except TimeoutError as e:
        kind = "minikafka" if isinstance(e, minikafka.TimeoutError) else "builtin"
        print("TIMEOUT", kind, round(time.monotonic() - t0, 2), e, flush=True)
    except BaseException as e:
        print("RAISED", type(e).__name__, e, flush=True)
    else:
        print("RETURNED", flush=True)
"""

DEADLINE = 3.0  # the call is given 0.5-1 s; 3 s without an answer is a hang


@pytest.fixture(params=[False, True], ids=["holder-running", "holder-sigstopped"])
def frozen(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def hold(path: Path, frozen: bool) -> subprocess.Popen[str]:
    child = start_child(HOLDER, str(path))
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "locked"
    if frozen:
        os.kill(child.pid, signal.SIGSTOP)
    return child


@pytest.fixture
def holders() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for child in started:
        child.kill()
        child.wait()


def call(data_dir: Path, body: str) -> str:
    """Run PROLOGUE + body in a child; its one outcome line, or "HANG"."""
    child = start_child(PROLOGUE + textwrap.dedent(body), str(data_dir))
    try:
        out, err = child.communicate(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        return "HANG"
    lines = [line for line in out.splitlines() if line.split(" ")[0] in ("TIMEOUT", "RAISED", "RETURNED")]
    assert lines, f"child printed no outcome: {out!r} {err!r}"
    return lines[-1]


def assert_timed_out(result: str, lock: Path) -> None:
    assert result != "HANG", "the call hung past its timeout"
    assert result.startswith("TIMEOUT minikafka"), result
    assert str(lock) in result, f"the error does not name the lock: {result}"


@pytest.fixture
def topic_dir(data_dir: Path) -> Path:
    with minikafka.Broker(data_dir, segment_bytes=4096, retention_bytes=8192) as b:
        b.create_topic("t")
        with minikafka.Producer(b) as p:
            p.send("t", b"before")
    return data_dir / "topics" / "t"


def test_flush_honours_its_timeout(data_dir, topic_dir, holders, frozen) -> None:
    lock = topic_dir / "0" / "writer.lock"
    holders.append(hold(lock, frozen))
    result = call(data_dir, """
        p = minikafka.Producer(broker())
        p.send("t", b"x")
        outcome(lambda: p.flush(timeout=0.5))
        """)
    assert_timed_out(result, lock)


def test_future_result_honours_its_timeout(data_dir, topic_dir, holders) -> None:
    lock = topic_dir / "0" / "writer.lock"
    holders.append(hold(lock, True))
    result = call(data_dir, """
        p = minikafka.Producer(broker(), linger_ms=0)
        fut = p.send("t", b"x")
        outcome(lambda: fut.result(timeout=0.5))
        """)
    assert result != "HANG", "result(timeout=0.5) hung"
    assert result.startswith("TIMEOUT"), result


def test_close_honours_its_timeout(data_dir, topic_dir, holders) -> None:
    lock = topic_dir / "0" / "writer.lock"
    holders.append(hold(lock, True))
    result = call(data_dir, """
        p = minikafka.Producer(broker())
        p.send("t", b"x")
        outcome(lambda: p.close(timeout=0.5))
        """)
    assert_timed_out(result, lock)


@contextlib.contextmanager
def held_here(lock: Path) -> Iterator[None]:
    """Hold ``lock`` from this process (a flock on its own open file
    description conflicts with the producer's, even in one process)."""
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def test_a_timed_out_write_fails_its_records_and_is_never_written(data_dir, topic_dir) -> None:
    lock = topic_dir / "0" / "writer.lock"
    with minikafka.Broker(data_dir) as b:
        p = minikafka.Producer(b, linger_ms=10_000)
        fut = p.send("t", b"timed out")
        with held_here(lock), pytest.raises(minikafka.TimeoutError, match=str(lock)) as flushed:
            p.flush(timeout=0.2)
        assert fut.done()
        with pytest.raises(minikafka.TimeoutError) as got:
            fut.result(timeout=5)
        assert got.value is flushed.value, "the record's future does not carry the write's error"
        assert p.send("t", b"after").result(timeout=5).offset == 1
        p.flush(timeout=5)  # the failed batch is not written again
        p.close()
        assert [r.value for r in read_all(b, "t")] == [b"before", b"after"]


def test_send_many_waits_at_most_request_timeout(data_dir, topic_dir) -> None:
    lock = topic_dir / "0" / "writer.lock"
    with minikafka.Broker(data_dir, request_timeout=0.3) as b:
        p = minikafka.Producer(b, linger_ms=10_000)
        sent = p.send("t", b"sent before")
        t0 = time.monotonic()
        with held_here(lock), pytest.raises(minikafka.TimeoutError, match=str(lock)):
            p.send_many("t", [b"bulk 1", b"bulk 2"])
        assert time.monotonic() - t0 < 2
        with pytest.raises(minikafka.TimeoutError):
            sent.result(timeout=5)  # written first, so it timed out first
        p.close()
        assert [r.value for r in read_all(b, "t")] == [b"before"]


def test_a_locked_partition_does_not_stall_other_topics(data_dir, topic_dir) -> None:
    """The linger thread waits (up to request_timeout) for t/0's lock; a
    send to another topic, and its result(), go on meanwhile."""
    lock = topic_dir / "0" / "writer.lock"
    with minikafka.Broker(data_dir, request_timeout=5.0) as b:
        b.create_topic("other")
        p = minikafka.Producer(b, linger_ms=1)
        with held_here(lock):
            stuck = p.send("t", b"stuck")
            time.sleep(0.1)  # the linger thread is now waiting for the lock
            t0 = time.monotonic()
            meta = p.send("other", b"free").result(timeout=2)
            took = time.monotonic() - t0
            assert not stuck.done()
        assert meta.offset == 0
        assert took < 0.5, f"a send to another topic took {took:.2f} s behind a locked partition"
        assert stuck.result(timeout=5).offset == 1  # written once the lock was free
        p.close()


def test_exit_with_a_locked_partition_is_bounded_and_says_what_was_lost(data_dir, topic_dir) -> None:
    lock = topic_dir / "0" / "writer.lock"
    with held_here(lock):
        t0 = time.monotonic()
        done = run_child("""
            import sys, minikafka
            b = minikafka.Broker(sys.argv[1], request_timeout=0.5)
            p, q = (minikafka.Producer(b, linger_ms=10_000) for _ in range(2))
            for i in range(10):
                p.send("t", b"r%d" % i)
            q.send("t", b"q")
            """, str(data_dir), timeout=10)
        took = time.monotonic() - t0
    assert done.returncode == 0, done.stderr
    assert took < 5, f"interpreter exit took {took:.1f} s"  # request_timeout for all producers
    assert "10 record(s) sent to t/0 were not written" in done.stderr, done.stderr
    assert "1 record(s) sent to t/0 were not written" in done.stderr, done.stderr
    assert str(lock) in done.stderr, done.stderr


def test_poll_honours_its_timeout(data_dir, topic_dir, holders) -> None:
    lock = topic_dir / "0" / "writer.lock"
    holders.append(hold(lock, True))
    result = call(data_dir, """
        c = minikafka.Consumer(broker(), "t")
        def poll():
            t0 = time.monotonic()
            c.poll(timeout=1.0)
            assert time.monotonic() - t0 < 2.0, "poll overran its timeout"
        outcome(poll)
        """)
    # Either poll returns (it needs no writer lock) or it raises our timeout.
    assert result == "RETURNED" or result.startswith("TIMEOUT minikafka"), result


def test_group_join_waits_at_most_request_timeout(data_dir, topic_dir, holders) -> None:
    with minikafka.Broker(data_dir) as b, minikafka.Consumer(b, group_id="g") as c:
        c.commit({minikafka.TopicPartition("t", 0): 1})  # the group directory exists
    lock = data_dir / "groups" / "g" / "lock"
    assert lock.exists()
    holders.append(hold(lock, True))
    result = call(data_dir, """
        outcome(lambda: minikafka.Consumer(broker(), "t", group_id="g").poll(timeout=0.5))
        """)
    assert_timed_out(result, lock)


def test_commit_and_close_wait_at_most_request_timeout(data_dir, topic_dir, holders) -> None:
    with minikafka.Broker(data_dir) as b, minikafka.Consumer(b, group_id="g") as c:
        c.commit({minikafka.TopicPartition("t", 0): 1})
    lock = data_dir / "groups" / "g" / "lock"
    holders.append(hold(lock, True))
    result = call(data_dir, """
        c = minikafka.Consumer(broker(), group_id="g")
        outcome(lambda: c.commit({minikafka.TopicPartition("t", 0): 2}))
        """)
    assert_timed_out(result, lock)


def test_delete_topic_waits_at_most_request_timeout_and_deletes_nothing(data_dir, topic_dir, holders,
                                                                       frozen) -> None:
    """delete_topic took every writer lock with no timeout: a writer frozen
    holding one made it wait until that process died."""
    lock = topic_dir / "0" / "writer.lock"
    holders.append(hold(lock, frozen))
    result = call(data_dir, """
        outcome(lambda: broker().delete_topic("t"))
        """)
    assert_timed_out(result, lock)
    with minikafka.Broker(data_dir) as b:
        assert b.list_topics() == ["t"]
        assert [r.value for r in read_all(b, "t")] == [b"before"]


def test_broker_open_with_retention_waits_at_most_request_timeout(data_dir, topic_dir, holders) -> None:
    lock = topic_dir / "0" / "writer.lock"
    holders.append(hold(lock, True))
    result = call(data_dir, """
        outcome(broker)
        """)
    # Retention may be skipped (and left for later) or time out clearly.
    assert result == "RETURNED" or result.startswith("TIMEOUT minikafka"), result


def test_hang_harness_sees_a_prompt_call(data_dir, topic_dir) -> None:
    """The harness itself: an uncontended flush returns well within the deadline."""
    t0 = time.monotonic()
    result = call(data_dir, """
        p = minikafka.Producer(broker())
        p.send("t", b"x")
        outcome(lambda: p.flush(timeout=2))
        """)
    assert result == "RETURNED"
    assert time.monotonic() - t0 < DEADLINE


def test_heartbeats_go_on_while_a_frozen_process_holds_the_group_lock(data_dir, topic_dir, holders) -> None:
    """A peer check that needs the group lock (here: a subscribed topic
    appeared) waits for it about one heartbeat, then tries again next
    tick; it used to wait request_timeout on the heartbeat thread, so the
    members' heartbeats went stale and, once the lock came free, they
    dropped each other as dead."""
    with minikafka.Broker(data_dir, request_timeout=10.0) as b:
        opts = dict(group_id="g", session_timeout=1.0, heartbeat_interval=0.05)
        a = minikafka.Consumer(b, "t", "later", **opts)
        c = minikafka.Consumer(b, "t", "later", **opts)
        try:
            for _ in range(20):
                a.poll(timeout=0.01)
                c.poll(timeout=0.01)
            generation = b.describe_group("g").generation
            holder = hold(data_dir / "groups" / "g" / "lock", True)
            holders.append(holder)
            b.create_topic("later", partitions=2)  # every member's next check wants the lock
            time.sleep(2.0)  # twice session_timeout
            now = time.time() * 1000
            ages = [now - m.last_heartbeat_ms for m in b.describe_group("g").members]
            assert len(ages) == 2 and max(ages) < 1000, f"heartbeats stopped: ages {ages} ms"
            holder.kill()
            holder.wait()
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and len(a.assignment() | c.assignment()) < 3:
                a.poll(timeout=0.01)
                c.poll(timeout=0.01)
            desc = b.describe_group("g")
            assert sorted(m.member_id for m in desc.members) == sorted([a.member_id, c.member_id])
            assert a.assignment() | c.assignment() == {minikafka.TopicPartition("t", 0),
                                                       minikafka.TopicPartition("later", 0),
                                                       minikafka.TopicPartition("later", 1)}
            assert desc.generation == generation + 1, "more than the one rebalance for the new topic"
        finally:
            a.close()
            c.close()


@contextlib.contextmanager
def group_member_with_frozen_lock_holder(data_dir: Path, holders: list, request_timeout: float = 5.0,
                                         **options) -> Iterator[minikafka.Consumer]:
    """A member of group "g" that has read "t", then a SIGSTOPped process
    holding the group's lock."""
    with minikafka.Broker(data_dir, request_timeout=request_timeout) as b:
        c = minikafka.Consumer(b, "t", group_id="g", auto_offset_reset="earliest", **options)
        try:
            assert len(c.poll(timeout=2)) == 1
            holders.append(hold(data_dir / "groups" / "g" / "lock", True))
            yield c
        finally:
            holders[-1].kill()
            holders[-1].wait()
            c.close()


def test_poll_whose_auto_commit_is_due_honours_its_timeout(data_dir, topic_dir, holders) -> None:
    """The periodic commit at the start of poll waits only what poll may
    wait, and is retried by a later poll (it waited request_timeout)."""
    with group_member_with_frozen_lock_holder(data_dir, holders, auto_commit_interval=0.01) as c:
        time.sleep(0.05)
        t0 = time.monotonic()
        assert c.poll(timeout=0.3) == []
        assert time.monotonic() - t0 < 1.0, "poll waited for the group lock past its timeout"
        holders[-1].kill()
        holders[-1].wait()
        c.poll(timeout=0.1)  # the postponed commit goes through now
        assert c.committed(minikafka.TopicPartition("t", 0)) == 1


def test_close_waits_at_most_request_timeout_in_all(data_dir, topic_dir, holders) -> None:
    """close() takes the group lock up to three times (the final commit,
    the revoke's commit, leaving): one request_timeout for all of them, not
    one each."""
    with group_member_with_frozen_lock_holder(data_dir, holders, request_timeout=1.5) as c:
        t0 = time.monotonic()
        with pytest.raises(minikafka.TimeoutError, match="groups/g/lock"):
            c.close()
        waited = time.monotonic() - t0
        assert 1.4 < waited < 2.8, f"close waited {waited:.2f} s with request_timeout 1.5 s"
        with pytest.raises(minikafka.ClosedError):
            c.poll()


def test_poll_after_max_poll_interval_is_not_held_up_by_the_heartbeat_thread_leaving(
        data_dir, topic_dir, holders) -> None:
    """A member idle past max_poll_interval is left by its heartbeat thread,
    which held the consumer's lock while it waited for the group lock (the
    revoke's commit, then leaving: request_timeout each). With a frozen
    process holding the group lock, poll(timeout=0.1) waited for both: 5.8 s
    here, a minute with the default request_timeout. Now the thread waits
    for the group lock about one heartbeat, without the consumer's lock
    held longer, and tries again next tick."""
    with group_member_with_frozen_lock_holder(data_dir, holders, request_timeout=3.0,
                                              max_poll_interval=0.3, heartbeat_interval=0.02) as c:
        time.sleep(0.5)  # idle past max_poll_interval: the heartbeat thread is leaving
        t0 = time.monotonic()
        assert c.poll(timeout=0.1) == []
        took = time.monotonic() - t0
        assert took < 1.0, f"poll(timeout=0.1) took {took:.2f} s behind the heartbeat thread"
        holders[-1].kill()
        holders[-1].wait()
        # Idle again, with the lock free: the postponed leave happens (the
        # revoke commits the position, then the member is gone).
        tp = minikafka.TopicPartition("t", 0)
        with minikafka.Broker(data_dir) as b:
            wait_for(lambda: not b.describe_group("g").members, timeout=5, what="the idle member to leave")
            assert b.committed_offsets("g") == {tp: 1}
        assert c.assignment() == set()


def test_repair_waits_for_a_frozen_writer_at_most_its_timeout(data_dir, topic_dir, holders) -> None:
    """``check.repair`` (``minikafka check --repair``) took a partition's
    writer lock with no timeout to cut a torn tail: with a writer frozen
    holding it, the repair never returned. Now it waits at most ``timeout``
    (default request_timeout) and raises naming the lock; the log is left
    as it was, and repaired once the writer is gone."""
    from minikafka.batch import Status
    from minikafka.check import check, open_segment_file, repair, walk_segment

    active = sorted((topic_dir / "0").glob("*.log"))[-1]
    seg = open_segment_file(str(active))
    try:
        pos = next(s.position for s in walk_segment(seg) if s.info.status is not Status.BATCH)
    finally:
        seg.close()
    with open(active, "r+b") as f:  # a batch whose writer died half way
        f.seek(pos)
        f.write(struct.pack("<I", 500) + os.urandom(100))
    torn = active.read_bytes()
    lock = topic_dir / "0" / "writer.lock"
    holders.append(hold(lock, True))
    result = call(data_dir, """
        import minikafka.check as checking
        checking.RECHECK_WAIT = 0.1  # check's own second look under the lock: not what is tested
        report = checking.check(sys.argv[1])
        assert [f.problem.split(":")[0] for f in report.findings] == ["torn tail"], report.findings
        def fix():
            try:
                checking.repair(sys.argv[1], report, timeout=1.0)
            except TypeError:  # no timeout before: the default, which waited forever
                checking.repair(sys.argv[1], report)
        outcome(fix)
        """)
    assert_timed_out(result, lock)
    assert active.read_bytes() == torn
    holders[-1].kill()
    holders[-1].wait()
    assert repair(data_dir, check(data_dir)).ok
    with minikafka.Broker(data_dir) as b:
        assert [r.value for r in read_all(b, "t")] == [b"before"]



def test_delete_topic_with_a_writer_of_this_process_is_prompt(data_dir, topic_dir) -> None:
    """delete_topic took the writer locks through lock files of its own: a
    send of this process then waited on the flock while holding its
    partition, and delete_topic, closing that partition, waited for it —
    request_timeout (30 s by default) for every delete of a topic being
    written here, and the send failed with a TimeoutError naming this
    very process. Now the writer waits on the partition, and learns the
    topic was deleted."""
    with minikafka.Broker(data_dir, request_timeout=3.0) as b:
        p = minikafka.Producer(b, linger_ms=0)
        stop = threading.Event()
        errors: list[BaseException] = []
        sent = threading.Event()

        def send() -> None:
            while not stop.is_set():
                try:
                    p.send("t", b"x").result(timeout=10)
                    sent.set()
                except minikafka.MiniKafkaError as e:
                    errors.append(e)
                    time.sleep(0.01)

        thread = threading.Thread(target=send)
        thread.start()
        try:
            assert sent.wait(5)
            t0 = time.monotonic()
            b.delete_topic("t")
            took = time.monotonic() - t0
        finally:
            time.sleep(0.05)
            stop.set()
            thread.join()
            p.close()
        assert took < 1.0, f"delete_topic took {took:.2f} s"
        assert errors and all(isinstance(e, minikafka.TopicNotFoundError) for e in errors), errors
        assert b.list_topics() == []


def test_delete_topic_waiting_for_a_frozen_writer_does_not_stop_the_broker(data_dir, topic_dir,
                                                                         holders) -> None:
    """delete_topic waited for the writer locks (up to request_timeout)
    holding the broker's lock: every topic lookup of the process — a
    producer's first send, a subscription, a group member's heartbeat
    thread checking its topics (its heartbeats stopped: its group dropped
    it) — waited as long."""
    with minikafka.Broker(data_dir, request_timeout=3.0) as b:
        b.create_topic("other")
        holders.append(hold(topic_dir / "0" / "writer.lock", True))
        outcome: list[BaseException] = []

        def delete() -> None:
            try:
                b.delete_topic("t")
            except BaseException as e:
                outcome.append(e)

        deleting = threading.Thread(target=delete)
        deleting.start()
        try:
            time.sleep(0.2)  # delete_topic is waiting for t/0's writer lock
            t0 = time.monotonic()
            assert b.topic("other").partitions == 1
            b.create_topic("new")
            took = time.monotonic() - t0
        finally:
            deleting.join()
        assert took < 0.5, f"topic lookups waited {took:.2f} s behind delete_topic"
        [error] = outcome
        assert isinstance(error, minikafka.TimeoutError) and "writer.lock" in str(error), error
        assert b.list_topics() == ["new", "other", "t"]


def test_closing_the_broker_under_a_commit_waiting_for_the_group_lock(data_dir, topic_dir, holders) -> None:
    """Broker.close closed the group lock's descriptor while a commit in
    another thread was waiting for that lock (a frozen process held it):
    the commit's next try took a flock on whatever file reused the
    descriptor number, and wrote the offsets without the group lock, beside
    the process that held it. Closing waits for the commit (which times
    out as usual) before it closes the group's files."""
    tp = minikafka.TopicPartition("t", 0)
    b = minikafka.Broker(data_dir, request_timeout=1.0)
    c = minikafka.Consumer(b, group_id="g")
    c.commit({tp: 1})
    holders.append(hold(data_dir / "groups" / "g" / "lock", True))
    outcome: list[BaseException | None] = []

    def commit() -> None:
        try:
            c.commit({tp: 2})
            outcome.append(None)
        except BaseException as e:
            outcome.append(e)

    thread = threading.Thread(target=commit)
    thread.start()
    try:
        time.sleep(0.2)  # the commit is waiting for the group lock
        t0 = time.monotonic()
        b.close()
        took = time.monotonic() - t0
        reuse = [open(data_dir / f"unrelated-{i}", "w") for i in range(8)]  # noqa: SIM115
        thread.join(5)
        for f in reuse:
            f.close()
    finally:
        holders[-1].kill()
        holders[-1].wait()
        thread.join()
    [error] = outcome
    assert isinstance(error, minikafka.TimeoutError), f"the commit ended with {error!r}"
    assert took < 2.0, f"Broker.close took {took:.2f} s"
    with minikafka.Broker(data_dir) as again:
        assert again.committed_offsets("g") == {tp: 1}


def test_a_join_whose_member_file_a_frozen_prober_holds_honours_request_timeout(
        data_dir, topic_dir, holders, monkeypatch: pytest.MonkeyPatch) -> None:
    """A joining member creates its member file, then locks it, with no
    timeout. Peers and admin calls probe member files with a flock of their
    own (live_member_files: delete_group, alter_group_offsets); one frozen
    between its probe's flock and close, on a file just created, left the
    join waiting for ever. The member id is made predictable here so that
    the frozen prober can hold that file first."""
    import socket
    import types

    import minikafka.membership as membership

    monkeypatch.setattr(membership, "uuid", types.SimpleNamespace(uuid4=lambda: uuid_hex))
    uuid_hex = types.SimpleNamespace(hex="f" * 32)
    member_id = f"{socket.gethostname()}-{os.getpid()}-{'f' * 12}"
    with minikafka.Broker(data_dir, request_timeout=1.0) as b:
        minikafka.Consumer(b, "t", group_id="g").close()  # the group's directories exist
        path = data_dir / "groups" / "g" / "members" / member_id
        holders.append(hold(path, True))
        done, got = call_bounded(lambda: minikafka.Consumer(b, "t", group_id="g"), timeout=4)
        assert done, "the join waited for the member file past request_timeout"
        assert isinstance(got, minikafka.TimeoutError) and str(path) in str(got), got
        holders[-1].kill()
        holders[-1].wait()
        with minikafka.Consumer(b, "t", group_id="g") as c:  # the same id: its file is free again
            assert c.member_id == member_id
            wait_for(lambda: c.poll(timeout=0.05) or c.assignment(), what="the partition")
