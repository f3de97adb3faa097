"""Many processes, one data directory: real processes, no mocks.

Children are started with the "spawn" method (see mp_helpers.py) so each
begins with a clean interpreter, as an unrelated program would. They
report through JSON-lines logs; ownership intervals and receive times are
CLOCK_MONOTONIC readings, which compare across processes on Linux.

Timeouts for *completion* are generous (the CI machine is small and
shared); the latency bound of the wake-up test is the one the API promises.
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

import minikafka
from minikafka import Broker, Consumer, Producer, TopicPartition

sys.path.insert(0, os.path.dirname(__file__))
import mp_helpers
from mp_helpers import SPAWN, read_events

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="CLOCK_MONOTONIC shared across processes")

GROUP = "g"
DONE_TIMEOUT = 60.0  # seconds for a multi-process job to finish on a loaded machine


# -- plumbing ---------------------------------------------------------------------------------


@pytest.fixture
def procs() -> Iterable[Callable[..., Any]]:
    """``spawn(target, *args)`` starts a child; any child still running at
    the end is killed (a failing test must not leave processes behind)."""
    started: list[Any] = []

    def spawn(target: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        proc = SPAWN.Process(target=target, args=args, kwargs=kwargs, daemon=True)
        proc.start()
        started.append(proc)
        return proc

    yield spawn
    for proc in started:
        if proc.is_alive():
            proc.kill()
        proc.join(10)


def wait_until(cond: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def join_ok(*children: Any, timeout: float = 30.0) -> None:
    for child in children:
        child.join(timeout)
        assert child.exitcode == 0, f"{child.name} exited with {child.exitcode}"


def read_partition(broker: Broker, topic: str, partition: int, count: int,
                   timeout: float = DONE_TIMEOUT) -> list[minikafka.Record]:
    with Consumer(broker, auto_offset_reset="earliest") as c:
        c.assign([TopicPartition(topic, partition)])
        out: list[minikafka.Record] = []
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            out += c.poll(timeout=0.2)
        out += c.poll(timeout=0.05)  # nothing more than expected
        return out


def produce_round_robin(broker: Broker, topic: str, partitions: int, start: int, count: int,
                        chunk: int = 100, pause: float = 0.0) -> None:
    with Producer(broker) as p:
        for i in range(start, start + count):
            p.send(topic, b"%d" % i, partition=i % partitions)
            if pause and (i - start) % chunk == chunk - 1:
                p.flush()
                time.sleep(pause)


# -- what the group members logged ---------------------------------------------------------


class Interval:
    """One member owning one partition, from on_assign to on_revoke."""

    def __init__(self, member: str, partition: int, start: float, committed: int | None) -> None:
        self.member = member
        self.partition = partition
        self.start = start
        self.end = float("inf")  # still owned (or owned until the member died)
        self.committed = committed  # the group's committed offset when it was taken over
        self.offsets: list[int] = []  # received while owned, in order
        self.times: list[float] = []

    def __repr__(self) -> str:
        return (f"<{self.member} p{self.partition} {self.start:.4f}..{self.end:.4f} "
                f"committed={self.committed} got={len(self.offsets)}>")


class GroupLog:
    """Every member's events, folded into ownership intervals."""

    def __init__(self, paths: dict[str, Path]) -> None:
        self.events = {name: read_events(str(path)) for name, path in paths.items()}
        self.intervals: list[Interval] = []
        self.last_commit: dict[str, dict[int, int]] = {}
        self.unowned_receipts: list[tuple[str, int, int]] = []
        for name, events in self.events.items():
            open_: dict[int, Interval] = {}
            commits: dict[int, int] = {}
            for e in events:
                if e["kind"] == "assign":
                    for p in e["parts"]:
                        assert p not in open_, f"{name} was given p{p} twice without a revoke"
                        iv = Interval(name, p, e["t"], e["committed"].get(str(p)))
                        open_[p] = iv
                        self.intervals.append(iv)
                elif e["kind"] == "revoke":
                    for p in e["parts"]:
                        open_.pop(p).end = e["t"]
                elif e["kind"] == "recs":
                    for p, o in e["recs"]:
                        iv = open_.get(p)
                        if iv is None:
                            self.unowned_receipts.append((name, p, o))
                        else:
                            iv.offsets.append(o)
                            iv.times.append(e["t"])
                elif e["kind"] == "commit":
                    commits.update({int(p): o for p, o in e["positions"].items()})
            self.last_commit[name] = commits

    def owned_now(self, name: str) -> set[int]:
        return {iv.partition for iv in self.intervals if iv.member == name and iv.end == float("inf")}

    def received(self) -> Counter[tuple[int, int]]:
        return Counter((iv.partition, o) for iv in self.intervals for o in iv.offsets)

    def by_member(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for iv in self.intervals:
            counts[iv.member] += len(iv.offsets)
        return dict(counts)

    def check_ownership(self) -> None:
        """No partition owned by two members at the same instant; records are
        received only while owned, from the committed offset on, in order."""
        assert not self.unowned_receipts, f"records received without ownership: {self.unowned_receipts[:5]}"
        per_partition: dict[int, list[Interval]] = defaultdict(list)
        for iv in self.intervals:
            assert iv.start <= iv.end, iv
            per_partition[iv.partition].append(iv)
        for p, ivs in per_partition.items():
            ivs.sort(key=lambda iv: iv.start)
            for before, after in itertools.pairwise(ivs):
                assert before.end <= after.start, f"p{p} owned twice at once: {before} and {after}"
            for iv in ivs:
                if iv.offsets:
                    first = iv.committed if iv.committed is not None else 0
                    assert iv.offsets == list(range(first, first + len(iv.offsets))), (
                        f"{iv}: expected offsets from {first} on, got {iv.offsets[:5]}..."
                    )
                    assert iv.start <= min(iv.times) and max(iv.times) <= iv.end, iv


def member_logs(tmp_path: Path, names: Iterable[str]) -> dict[str, Path]:
    return {name: tmp_path / f"{name}.jsonl" for name in names}


def wait_for_stable_group(broker: Broker, logs: dict[str, Path], partitions: int) -> int:
    """Wait until every member has joined, the state file gives each its
    share, and each holds (owner lock taken) exactly that share. Returns
    the generation."""
    share = partitions // len(logs)

    def stable() -> int | None:
        desc = broker.describe_group(GROUP)
        if len(desc.members) != len(logs) or any(len(m.assignment) != share for m in desc.members):
            return None
        log = GroupLog(logs)
        owned = [log.owned_now(name) for name in logs]
        if sorted(p for o in owned for p in o) != list(range(partitions)):
            return None
        if any(len(o) != share for o in owned):
            return None
        return desc.generation

    return wait_until(stable, DONE_TIMEOUT, "every member to join and hold its share")


def wait_for_zero_lag(broker: Broker, partitions: int, timeout: float = DONE_TIMEOUT) -> None:
    def caught_up() -> bool:
        lag = broker.lag(GROUP)
        return len(lag) == partitions and not any(lag.values())

    wait_until(caught_up, timeout, "group lag 0 on every partition", interval=0.05)


# -- 1. many writers, one partition ------------------------------------------------------------


@pytest.mark.slow
def test_four_producer_processes_one_partition(make_broker, procs, data_dir):
    broker = make_broker()
    broker.create_topic("t")
    n, per = 4, 5000
    start = SPAWN.Barrier(n)
    # Two write every record as one batch (5,000 lock round trips each), two batch.
    children = [procs(mp_helpers.produce_sequence, str(data_dir), "t", i, per, start, linger)
                for i, linger in enumerate((0, 0, 5, 5))]
    join_ok(*children, timeout=DONE_TIMEOUT)
    records = read_partition(broker, "t", 0, n * per)
    assert [r.offset for r in records] == list(range(n * per))
    seqs: dict[int, list[int]] = defaultdict(list)
    for r in records:
        producer_id, seq = map(int, r.value.split(b":"))
        seqs[producer_id].append(seq)
    assert sorted(seqs) == list(range(n))
    for producer_id, got in seqs.items():
        assert got == list(range(per)), f"producer {producer_id}: order or completeness broken"
    assert broker.topic("t").end_offsets() == {0: n * per}


# -- 2. a group of three processes splits the partitions ---------------------------------------


@pytest.mark.slow
def test_group_in_three_processes_splits_the_work(make_broker, procs, data_dir, tmp_path):
    broker = make_broker()
    broker.create_topic("t", partitions=6)
    logs = member_logs(tmp_path, ["a", "b", "c"])
    stop = SPAWN.Event()
    children = [procs(mp_helpers.group_member, str(data_dir), "t", GROUP, name, str(path), stop)
                for name, path in logs.items()]
    generation = wait_for_stable_group(broker, logs, 6)

    total = 3000
    produce_round_robin(broker, "t", 6, 0, total)
    wait_for_zero_lag(broker, 6)
    generation_after = broker.describe_group(GROUP).generation
    stop.set()
    join_ok(*children)

    log = GroupLog(logs)
    log.check_ownership()
    received = log.received()
    assert set(received) == {(i % 6, i // 6) for i in range(total)}, "records lost"
    counts = log.by_member()
    assert all(counts.get(name, 0) > 0 for name in logs), f"work not split: {counts}"
    if generation_after == generation:  # no rebalance while consuming: exactly once
        assert max(received.values()) == 1
        assert sorted(counts.values()) == [1000, 1000, 1000]
    assert broker.lag(GROUP) == {TopicPartition("t", p): 0 for p in range(6)}
    assert broker.committed_offsets(GROUP) == {TopicPartition("t", p): total // 6 for p in range(6)}


# -- 3. a member killed with SIGKILL -------------------------------------------------------------


@pytest.mark.slow
def test_killed_member_partitions_resume_from_its_last_commit(make_broker, procs, data_dir, tmp_path):
    broker = make_broker()
    broker.create_topic("t", partitions=6)
    logs = member_logs(tmp_path, ["victim", "b", "c"])
    stop = SPAWN.Event()
    # Slow processing (20 ms per batch of up to 20, commit after each) so the
    # kill lands mid-stream, most likely between receiving and committing.
    children = {name: procs(mp_helpers.group_member, str(data_dir), "t", GROUP, name, str(path), stop,
                            batch_delay=0.02, max_poll_records=20)
                for name, path in logs.items()}
    wait_for_stable_group(broker, logs, 6)

    total = 3000
    produce_round_robin(broker, "t", 6, 0, total // 2)
    wait_until(lambda: GroupLog(logs).by_member().get("victim", 0) >= 60, DONE_TIMEOUT,
               "the victim to consume some records")
    victim = children["victim"]
    os.kill(victim.pid, signal.SIGKILL)
    victim.join(10)
    died = time.monotonic()
    assert victim.exitcode == -signal.SIGKILL
    produce_round_robin(broker, "t", 6, total // 2, total // 2)
    wait_for_zero_lag(broker, 6)
    stop.set()
    join_ok(children["b"], children["c"])

    log = GroupLog(logs)
    victim_owned = log.owned_now("victim")  # held when it died: no revoke was logged
    assert victim_owned, "the victim owned nothing when it was killed"
    for iv in log.intervals:
        if iv.member == "victim" and iv.end == float("inf"):
            iv.end = died  # the kernel dropped its owner flocks by now
    log.check_ownership()

    received = log.received()
    assert set(received) == {(i % 6, i // 6) for i in range(total)}, "records lost"
    takeovers = {}
    for p in victim_owned:
        later = [iv for iv in log.intervals if iv.partition == p and iv.start >= died]
        assert later, f"p{p} of the dead member was never taken over"
        takeover = min(later, key=lambda iv: iv.start)
        assert takeover.member != "victim"
        # Consumed from the victim's last commit: the new owner starts at the
        # committed offset it found (check_ownership), which is no older than
        # the last commit the victim logged (it logs right after committing).
        logged = log.last_commit["victim"].get(p)
        if logged is not None:
            assert takeover.committed is not None and takeover.committed >= logged
        takeovers[p] = takeover
    # At-least-once: a record is delivered twice only if the victim received
    # it after its last commit and the new owner got it again.
    victim_got = {(iv.partition, o) for iv in log.intervals if iv.member == "victim" for o in iv.offsets}
    for (p, o), n in received.items():
        if n > 1:
            assert n == 2 and p in takeovers and (p, o) in victim_got, (p, o, n)
            assert o >= (takeovers[p].committed or 0), (p, o)
    assert broker.lag(GROUP) == {TopicPartition("t", p): 0 for p in range(6)}
    assert not broker.describe_group(GROUP).members or all(
        m.pid != victim.pid for m in broker.describe_group(GROUP).members
    )


# -- 4. members joining and leaving while others consume ---------------------------------------


@pytest.mark.slow
def test_members_joining_while_others_consume_never_share_a_partition(
    make_broker, procs, data_dir, tmp_path
):
    broker = make_broker()
    broker.create_topic("t", partitions=6)
    names = ["a", "b", "c"]
    logs = member_logs(tmp_path, names)
    stops = {name: SPAWN.Event() for name in names}

    def start(name: str) -> Any:
        return procs(mp_helpers.group_member, str(data_dir), "t", GROUP, name, str(logs[name]),
                     stops[name], batch_delay=0.005, max_poll_records=20)

    # Produce 100 records every 0.1 s until the membership changes are done
    # (however long the children take to start), then stop.
    enough = threading.Event()
    produced = [0]

    def produce() -> None:
        while not enough.is_set():
            produce_round_robin(broker, "t", 6, produced[0], 100)
            produced[0] += 100
            time.sleep(0.1)

    producer = threading.Thread(target=produce, daemon=True)
    children = {"a": start("a")}
    try:
        wait_until(lambda: GroupLog(logs).owned_now("a") == set(range(6)), DONE_TIMEOUT, "a to own all")
        producer.start()
        wait_until(lambda: GroupLog(logs).by_member().get("a", 0) > 0, DONE_TIMEOUT, "a to consume")
        children["b"] = start("b")
        wait_until(lambda: GroupLog(logs).by_member().get("b", 0) > 0, DONE_TIMEOUT, "b to consume")
        children["c"] = start("c")
        wait_until(lambda: GroupLog(logs).by_member().get("c", 0) > 0, DONE_TIMEOUT, "c to consume")
        stops["b"].set()  # b leaves while a and c keep consuming
        join_ok(children["b"])
        time.sleep(0.2)  # a and c adopt b's partitions while records keep coming
    finally:
        enough.set()
    producer.join(DONE_TIMEOUT)
    assert not producer.is_alive()
    total = produced[0]
    wait_for_zero_lag(broker, 6)
    for name in ("a", "c"):
        stops[name].set()
    join_ok(children["a"], children["c"])

    log = GroupLog(logs)
    assert all(iv.end != float("inf") for iv in log.intervals), "an ownership never ended"
    log.check_ownership()
    owners = defaultdict(set)
    for iv in log.intervals:
        owners[iv.partition].add(iv.member)
    assert any(len(m) > 1 for m in owners.values()), "no partition ever moved"
    received = log.received()
    assert set(received) == {(i % 6, i // 6) for i in range(total)}, "records lost"
    # Every hand-over was graceful and every batch committed before the next
    # poll, so nothing is delivered twice.
    assert max(received.values()) == 1, [k for k, n in received.items() if n > 1][:10]


# -- 5. wake-up latency across processes ---------------------------------------------------------


@pytest.mark.slow
def test_consumer_in_other_process_receives_each_record_within_50ms(make_broker, procs, data_dir, tmp_path):
    broker = make_broker()
    broker.create_topic("t")
    count = 50
    ready = SPAWN.Event()
    log_path = tmp_path / "latency.jsonl"
    child = procs(mp_helpers.latency_consumer, str(data_dir), "t", count, str(log_path), ready)
    assert ready.wait(DONE_TIMEOUT)
    time.sleep(0.1)  # let it settle into its poll loop
    with Producer(broker, linger_ms=0) as p:
        for _ in range(count):
            p.send("t", b"%d" % time.monotonic_ns(), partition=0).result(timeout=10)
            time.sleep(0.01)
    join_ok(child)
    events = read_events(str(log_path))
    assert [e["offset"] for e in events] == list(range(count))
    latencies_ms = [(e["received"] - e["sent"]) / 1e6 for e in events]
    assert min(latencies_ms) >= 0
    assert max(latencies_ms) < 50, f"latencies (ms): {sorted(latencies_ms)[-5:]}"


# -- writers that die, topics that vanish, logs that roll -----------------------------------------


def test_writer_killed_while_holding_the_lock_does_not_block_others(make_broker, procs, data_dir):
    broker = make_broker()
    broker.create_topic("t")
    holding = SPAWN.Event()
    child = procs(mp_helpers.hold_writer_lock, str(data_dir), "t", holding)
    assert holding.wait(DONE_TIMEOUT)
    producer = Producer(broker, linger_ms=0)
    results: list[Any] = []
    done = threading.Event()

    def send() -> None:
        try:
            results.append(producer.send("t", b"after", partition=0).result(timeout=30))
        except BaseException as e:  # pragma: no cover - reported below
            results.append(e)
        done.set()

    threading.Thread(target=send, daemon=True).start()
    assert not done.wait(0.3), "the append did not wait for the writer lock"
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    assert done.wait(10), "a dead writer's lock still blocks appends"
    assert results[0].offset == 1
    producer.close()
    assert [r.value for r in read_partition(broker, "t", 0, 2)] == [b"before-the-lock", b"after"]


@pytest.mark.slow
def test_writer_killed_mid_append_leaves_a_dense_log(make_broker, procs, data_dir):
    broker = make_broker()
    broker.create_topic("t")
    expected: list[bytes] = []
    for round_ in range(3):
        ready = SPAWN.Event()
        child = procs(mp_helpers.produce_forever, str(data_dir), "t", ready)
        assert ready.wait(DONE_TIMEOUT)
        time.sleep(0.01 * round_)
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        # What the child got written is whole; what it did not is absent.
        end = broker.topic("t").partition(0).end_offset()
        with Producer(broker, linger_ms=0) as p:
            metas = [p.send("t", b"parent-%d-%d" % (round_, i), partition=0).result(timeout=10)
                     for i in range(5)]
        assert [m.offset for m in metas] == list(range(end, end + 5))
        records = read_partition(broker, "t", 0, end + 5)
        assert [r.offset for r in records] == list(range(end + 5))
        values = [r.value for r in records]
        this_round = [v for v in values[len(expected):] if v.startswith(b"child-")]
        assert this_round == [b"child-%d" % i for i in range(len(this_round))]
        assert len(this_round) >= 100
        expected = values
    assert values[-5:] == [b"parent-2-%d" % i for i in range(5)]


def test_topic_deleted_by_another_process_while_producing(make_broker, procs, data_dir):
    broker = make_broker()
    broker.create_topic("t", partitions=2)
    go = SPAWN.Event()
    child = procs(mp_helpers.delete_topic_later, str(data_dir), "t", go)
    direct = Producer(broker, linger_ms=0)
    batched = Producer(broker, linger_ms=2)
    futures = []
    error: BaseException | None = None
    sent = 0
    deadline = time.monotonic() + DONE_TIMEOUT
    while time.monotonic() < deadline:
        try:
            futures.append(batched.send("t", b"b%d" % sent))
            direct.send("t", b"d%d" % sent, partition=sent % 2).result(timeout=10)
        except Exception as e:
            error = e
            break
        sent += 1
        if sent == 200:
            go.set()
    join_ok(child)
    assert isinstance(error, minikafka.TopicNotFoundError), repr(error)
    for fut in futures:
        exc = fut.exception(timeout=10)
        assert exc is None or isinstance(exc, minikafka.TopicNotFoundError), repr(exc)
    with pytest.raises(minikafka.TopicNotFoundError):
        batched.send("t", b"late").result(timeout=10)
    direct.close()
    batched.close()
    assert "t" not in broker.list_topics()



def test_pending_batch_of_a_topic_deleted_elsewhere_fails_with_topic_not_found(make_broker, procs, data_dir):
    """Two producers of this process share the partition object: the one
    that finds the topic gone must not turn the other's failure into a
    ClosedError."""
    broker = make_broker()
    broker.create_topic("t")
    waiting = Producer(broker, linger_ms=60_000)
    pending = waiting.send("t", b"buffered", partition=0)  # not written yet
    go = SPAWN.Event()
    go.set()
    join_ok(procs(mp_helpers.delete_topic_later, str(data_dir), "t", go))
    with Producer(broker, linger_ms=0) as direct, pytest.raises(minikafka.TopicNotFoundError):
        direct.send("t", b"now", partition=0).result(timeout=10)
    waiting.flush()
    assert isinstance(pending.exception(timeout=10), minikafka.TopicNotFoundError), pending.exception()
    waiting.close()

@pytest.mark.slow
def test_tailing_consumer_sees_dense_offsets_across_rolls_and_retention(make_broker, procs, data_dir):
    broker = make_broker()
    broker.create_topic("t", segment_bytes=4096, retention_bytes=256 * 1024)
    consumer = Consumer(broker, auto_offset_reset="earliest")
    consumer.assign([TopicPartition("t", 0)])
    count = 6000
    child = procs(mp_helpers.produce_throttled, str(data_dir), "t", count, 100, 10, 0.002)
    offsets: list[int] = []
    deadline = time.monotonic() + DONE_TIMEOUT
    while len(offsets) < count and time.monotonic() < deadline:
        for r in consumer.poll(timeout=0.5):
            assert int(r.value[:12]) == r.offset
            offsets.append(r.offset)
    join_ok(child)
    consumer.close()
    assert offsets == list(range(count))
    part = broker.topic("t").partition(0)
    assert part.beginning_offset() > 0, "retention never deleted a segment"
    assert len(part.bases()) < count * 120 // 4096, "segments were not deleted"


@pytest.mark.slow
def test_consumer_behind_retention_skips_ahead_instead_of_stalling(make_broker, procs, data_dir):
    """A reader whose next segment was deleted by retention (written by
    another process) is outside the retained range: auto_offset_reset
    ("earliest") moves it to the oldest record left, as a seek there
    would; it must not wait forever at the hole."""
    broker = make_broker()
    broker.create_topic("t", segment_bytes=4096, retention_bytes=16 * 1024)
    consumer = Consumer(broker, auto_offset_reset="earliest")
    consumer.assign([TopicPartition("t", 0)])
    join_ok(procs(mp_helpers.produce_throttled, str(data_dir), "t", 50, 100, 50, 0.0))
    offsets = [r.offset for r in consumer.poll(timeout=5, max_records=5)]
    assert offsets == list(range(5))
    end = 3050
    join_ok(procs(mp_helpers.produce_throttled, str(data_dir), "t", end - 50, 100, 50, 0.0, 50))
    begin = broker.topic("t").partition(0).beginning_offset()
    assert begin > 100, "retention should have deleted the segments after the reader's"
    deadline = time.monotonic() + 10
    while offsets[-1] < end - 1 and time.monotonic() < deadline:
        for r in consumer.poll(timeout=0.2):
            assert int(r.value[:12]) == r.offset
            offsets.append(r.offset)
    consumer.close()
    assert offsets[-1] == end - 1, f"stalled at offset {offsets[-1] + 1} (retained: {begin}..{end})"
    gaps = [(a, b) for a, b in itertools.pairwise(offsets) if b != a + 1]
    assert len(gaps) == 1 and gaps[0][1] == begin, gaps


def test_member_killed_before_state_names_it_leaves_no_member_file(tmp_path: Path) -> None:
    """A member SIGKILLed between creating groups/<g>/members/<id> and writing
    state.json: its file is not in the state, so nobody dropped it. It must
    not block the group (flock released) and the next rebalance after its
    session timeout unlinks it (docs/format.md)."""
    path = str(tmp_path)
    with Broker(path) as broker:
        broker.create_topic("t", partitions=2)
    entered = SPAWN.Event()
    child = SPAWN.Process(target=mp_helpers.join_and_die_before_state, args=(path, "t", GROUP, entered))
    child.start()
    try:
        assert entered.wait(DONE_TIMEOUT)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join(DONE_TIMEOUT)
    members = tmp_path / "groups" / GROUP / "members"
    assert len(os.listdir(members)) == 1
    time.sleep(0.6)  # past the dead member's session timeout
    with Broker(path) as broker:
        started = time.monotonic()
        with Consumer(broker, "t", group_id=GROUP, session_timeout=0.5, heartbeat_interval=0.1) as consumer:
            consumer.poll(timeout=0.2)
            assert consumer.assignment() == {TopicPartition("t", 0), TopicPartition("t", 1)}
        assert time.monotonic() - started < 5.0
        assert os.listdir(members) == []
        broker.delete_group(GROUP)
