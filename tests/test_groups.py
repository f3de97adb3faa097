"""Consumer groups inside one process: rebalances on join and leave,
sticky assignment, listener order, fencing of members that lost a
partition, and the broker's group views (describe_group, list_groups, lag).

Members in one process still coordinate only through the group's files and
flocks (each Consumer has its own member lock and owner locks), so these
are the same code paths as members in separate processes; see
test_multiprocess.py for those."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable

import pytest

from minikafka import Consumer, TopicPartition
from minikafka.errors import CommitFailedError, CorruptLogError, GroupNotEmptyError, InvalidArgumentError
from minikafka.group_state import HEARTBEAT, SESSION, member_path, read_state

T = [TopicPartition("t", p) for p in range(6)]


def settle(*consumers: Consumer, timeout: float = 10.0,
           until: Callable[[], bool] | None = None) -> None:
    """Poll every member in turn until each holds (owner lock taken) exactly
    what the group's state gives it and the assignments partition the
    topic, or ``until()`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for c in consumers:
            c.poll(timeout=0.01)
        if until is not None:
            if until():
                return
            continue
        owned = [c.assignment() for c in consumers]
        flat = [tp for a in owned for tp in a]
        if not any(c._backend.rebalancing() for c in consumers) and \
                len(flat) == len(set(flat)) and sorted(flat) == sorted(_all_parts(consumers[0])):
            return
    raise AssertionError(f"group did not settle: {[sorted(c.assignment()) for c in consumers]}")


def _all_parts(c: Consumer) -> list[TopicPartition]:
    broker = c._backend._broker
    return [TopicPartition(t, p) for t in sorted(c.subscription())
            for p in range(broker.topic(t).partitions)]


@pytest.fixture
def six(broker):
    broker.create_topic("t", partitions=6)
    return broker


def member(make_consumer, **kwargs) -> Consumer:
    kwargs.setdefault("group_id", "g")
    kwargs.setdefault("auto_offset_reset", "earliest")
    return make_consumer("t", **kwargs)


# -- rebalancing ------------------------------------------------------------------------------


def test_first_member_owns_everything(six, make_consumer):
    a = member(make_consumer)
    assert a.assignment() == set(T)
    assert a.generation >= 1


def test_rebalance_on_join_and_leave(six, make_consumer):
    a = member(make_consumer)
    b = member(make_consumer)
    settle(a, b)
    assert len(a.assignment()) == len(b.assignment()) == 3
    c = member(make_consumer)
    settle(a, b, c)
    assert [len(x.assignment()) for x in (a, b, c)] == [2, 2, 2]
    generation = c.generation
    b.close()
    settle(a, c)
    assert len(a.assignment()) == len(c.assignment()) == 3
    assert a.generation > generation and c.generation == a.generation


def test_unsubscribe_leaves_the_group(six, make_consumer):
    a = member(make_consumer)
    b = member(make_consumer)
    settle(a, b)
    b.unsubscribe()
    settle(a)
    assert a.assignment() == set(T)
    assert b.assignment() == set()
    assert len(six.describe_group("g").members) == 1


def test_new_member_waits_until_the_old_owner_lets_go(six, make_consumer):
    a = member(make_consumer)
    b = member(make_consumer)  # joins; a still holds every owner lock
    assert b.assignment() == set()  # nothing is free yet
    b.poll(timeout=0.2)
    assert b.assignment() == set()
    a.poll(timeout=0.2)  # a adopts the new assignment and releases half
    b.poll(timeout=0.2)
    assert len(b.assignment()) == 3 and not a.assignment() & b.assignment()


def test_assignment_is_sticky(six, make_consumer):
    a = member(make_consumer)
    b = member(make_consumer)
    c = member(make_consumer)
    settle(a, b, c)
    before = {id(x): x.assignment() for x in (a, b, c)}
    d = member(make_consumer)
    settle(a, b, c, d)
    for x in (a, b, c):
        assert x.assignment() <= before[id(x)], "a member lost a partition it could have kept"
    assert len(d.assignment()) >= 1
    before = {id(x): x.assignment() for x in (a, b, c, d)}
    d.close()
    settle(a, b, c)
    for x in (a, b, c):
        assert x.assignment() >= before[id(x)], "a survivor lost a partition in a leave"


def test_members_with_different_subscriptions(broker, make_consumer):
    broker.create_topic("t", partitions=2)
    broker.create_topic("u", partitions=2)
    a = make_consumer("t", group_id="g")
    b = make_consumer("t", "u", group_id="g")
    everything = {TopicPartition(t, p) for t in "tu" for p in range(2)}
    settle(a, b, until=lambda: not a._backend.rebalancing() and not b._backend.rebalancing()
           and a.assignment() | b.assignment() == everything)
    assert not a.assignment() & b.assignment()
    assert all(tp.topic == "t" for tp in a.assignment()), "a is not subscribed to u"
    assert {tp for tp in b.assignment() if tp.topic == "u"} == {TopicPartition("u", 0),
                                                                TopicPartition("u", 1)}


# -- listeners --------------------------------------------------------------------------------


class Recorder:
    """A listener object (kafka-python's method names) logging into a
    shared list."""

    def __init__(self, name: str, events: list) -> None:
        self.name = name
        self.events = events

    def on_partitions_revoked(self, tps):
        self.events.append((self.name, "revoke", frozenset(tps)))

    def on_partitions_assigned(self, tps):
        self.events.append((self.name, "assign", frozenset(tps)))


def test_revoke_runs_before_the_next_owner_is_assigned(six, make_consumer):
    events: list = []
    a = member(make_consumer)
    a.subscribe(["t"], listener=Recorder("a", events))
    b = member(make_consumer)
    b.subscribe(["t"], listener=Recorder("b", events))
    settle(a, b)
    moved = b.assignment()
    assert moved
    for tp in moved:
        revoked_at = next(i for i, (n, kind, tps) in enumerate(events)
                          if n == "a" and kind == "revoke" and tp in tps)
        assigned_at = next(i for i, (n, kind, tps) in enumerate(events)
                           if n == "b" and kind == "assign" and tp in tps)
        assert revoked_at < assigned_at


def test_changing_subscription_revokes_before_assigning(broker, make_consumer):
    broker.create_topic("t")
    broker.create_topic("u")
    events: list = []
    c = make_consumer(group_id="g")
    c.subscribe(["t"], listener=Recorder("c", events))
    assert events == [("c", "assign", frozenset({TopicPartition("t", 0)}))]
    c.subscribe(["u"], listener=Recorder("c", events))
    assert events[1:] == [("c", "revoke", frozenset({TopicPartition("t", 0)})),
                          ("c", "assign", frozenset({TopicPartition("u", 0)}))]


def test_on_revoke_runs_on_close_and_sees_final_positions(six, make_consumer, produce):
    produce("t", [b"x"] * 12, partition=None)
    seen = {}

    def on_revoke(tps):
        seen.update({tp: c.position(tp) for tp in tps})

    c = member(make_consumer, on_revoke=on_revoke, enable_auto_commit=False)
    got = []
    while len(got) < 12:
        got += c.poll(timeout=1.0)
    c.commit()
    c.close()
    assert set(seen) == set(T)
    assert sum(seen.values()) == 12


# -- fencing ----------------------------------------------------------------------------------


def test_member_that_lost_a_partition_cannot_commit_it(six, make_consumer, produce):
    produce("t", [b"%d" % i for i in range(60)], partition=None)
    a = member(make_consumer, enable_auto_commit=False)
    while len(a.poll(timeout=0.5)) > 0:
        pass  # read everything: positions at the end of each partition
    a.commit({tp: 1 for tp in T})
    b = member(make_consumer, enable_auto_commit=False)
    settle(a, b)
    lost = sorted(b.assignment())
    assert lost
    tp = lost[0]
    b.commit({tp: 5})  # the new owner's progress
    with pytest.raises(CommitFailedError, match=f"{tp.topic}/{tp.partition}"):
        a.commit({tp: 9})  # stale: a no longer owns it
    # A failed commit writes nothing, not even the partitions a still owns.
    kept = sorted(a.assignment())[0]
    with pytest.raises(CommitFailedError):
        a.commit({tp: 9, kept: 7})
    assert b.committed(tp) == 5
    assert a.committed(kept) == 1
    a.commit({kept: 7})
    assert six.committed_offsets("g")[kept] == 7


def test_members_consume_each_record_once_and_commit_their_own(six, make_consumer, produce):
    a = member(make_consumer, enable_auto_commit=False)
    b = member(make_consumer, enable_auto_commit=False)
    settle(a, b)  # (settle discards what it polls: produce afterwards)
    produce("t", [b"%d" % i for i in range(60)], partition=None)
    got = []
    deadline = time.monotonic() + 10
    while len(got) < 60 and time.monotonic() < deadline:
        got += a.poll(timeout=0.05) + b.poll(timeout=0.05)
    assert len(got) == 60 and len({(r.partition, r.offset) for r in got}) == 60
    a.commit()
    assert set(six.committed_offsets("g")) == a.assignment()
    b.commit()
    assert six.lag("g") == {tp: 0 for tp in T}
    assert set(six.committed_offsets("g")) == set(T)


def test_member_dropped_by_peers_rejoins_on_poll(six, make_consumer):
    a = member(make_consumer)
    b = member(make_consumer)
    settle(a, b)
    # Drop a as peers drop a member whose heartbeat stopped (frozen past
    # session_timeout): its member file unlinked, then the state rewritten
    # without it. Its owner locks still fence the partitions.
    m = a._backend._member
    with m.store.locked():
        state = read_state(m.dir)
        os.unlink(member_path(m.dir, m.member_id))
        m._rebalance(state.without([m.member_id]))
    b.poll(timeout=0.05)
    assert b.assignment() | a.assignment() == set(T)
    assert not b.assignment() & a.assignment(), "a partition owned twice"
    settle(a, b)
    assert len(six.describe_group("g").members) == 2
    # a rejoined with a member file again: the peers' checks see it alive,
    # so the group stays at one generation (it was dropped again on every
    # heartbeat, a rebalance storm, while a heartbeat into the unlinked file).
    assert os.path.exists(member_path(m.dir, m.member_id))
    generation = six.describe_group("g").generation
    deadline = time.monotonic() + 0.5  # 25 heartbeat intervals of b's peer checks
    while time.monotonic() < deadline:
        a.poll(timeout=0.02)
        b.poll(timeout=0.02)
    assert six.describe_group("g").generation == generation
    assert a.assignment() and b.assignment()


def test_members_with_different_session_timeouts_judge_each_other_by_their_own(six, make_consumer):
    """Each member is judged by the session timeout it joined with, as a
    Kafka coordinator does. Before, a peer used its own: a member with
    session_timeout=1 dropped one heartbeating every 1.5 s (well inside
    its 6 s), which rejoined, was dropped again: a rebalance storm."""
    slow = member(make_consumer, session_timeout=6.0, heartbeat_interval=1.5)
    quick = member(make_consumer, session_timeout=1.0, heartbeat_interval=0.05)
    settle(slow, quick)
    generation = six.describe_group("g").generation
    deadline = time.monotonic() + 3.5  # two of slow's heartbeat intervals, 3.5 of quick's sessions
    while time.monotonic() < deadline:
        slow.poll(timeout=0.05)
        quick.poll(timeout=0.05)
    assert six.describe_group("g").generation == generation
    assert slow.assignment() and quick.assignment()


@pytest.mark.parametrize("own_timeout", [True, False], ids=["own timeout", "16-byte file"])
def test_administration_judges_a_member_by_its_own_session_timeout(six, make_consumer, own_timeout):
    """delete_group judged every member by a fixed 10 s: one with
    session_timeout=30 whose heartbeat was 12 s old was taken for dead,
    and its group deleted under it. A file from before the timeout was
    kept (16 bytes) is still judged by the 10 s."""
    c = member(make_consumer, session_timeout=30.0, heartbeat_interval=10.0)
    c.poll(timeout=0.05)
    m = c._backend._member
    fd = m._member_lock.fileno()
    old = HEARTBEAT.pack(int(time.time() * 1000) - 12_000, 0)
    os.pwrite(fd, old + (SESSION.pack(30_000) if own_timeout else b""), 0)
    if not own_timeout:
        os.ftruncate(fd, HEARTBEAT.size)
    if own_timeout:
        with pytest.raises(GroupNotEmptyError):
            six.delete_group("g")
        assert "g" in six.list_groups()
    else:
        six.delete_group("g")
        assert "g" not in six.list_groups()


# -- broker views --------------------------------------------------------------------------------


def test_describe_group(six, make_consumer):
    a = member(make_consumer)
    b = member(make_consumer)
    settle(a, b)
    desc = six.describe_group("g")
    assert desc.group_id == "g"
    assert desc.generation == a.generation == b.generation
    assert sorted(m.member_id for m in desc.members) == sorted(
        [a.member_id, b.member_id])
    by_id = {m.member_id: m for m in desc.members}
    assert set(by_id[a.member_id].assignment) == a.assignment()
    assert set(by_id[b.member_id].assignment) == b.assignment()
    now_ms = time.time() * 1000
    for m in desc.members:
        assert m.topics == ("t",)
        assert m.pid > 0 and m.host
        assert m.last_heartbeat_ms is not None and now_ms - m.last_heartbeat_ms < 10_000


def test_list_groups(six, make_consumer):
    assert six.list_groups() == []
    member(make_consumer, group_id="members-only")
    c = make_consumer(group_id="commits-only", enable_auto_commit=False)
    c.assign([T[0]])
    c.commit({T[0]: 0})
    make_consumer("t")  # no group: not listed
    assert six.list_groups() == ["commits-only", "members-only"]


def test_lag(six, make_consumer, produce):
    produce("t", [b"%d" % i for i in range(10)], partition=2)
    assert six.lag("g") == {}
    c = member(make_consumer, enable_auto_commit=False)
    got = c.poll(timeout=1.0, max_records=4)
    assert len(got) == 4
    c.commit({T[2]: c.position(T[2])})
    assert six.lag("g") == {T[2]: 6}
    c.commit({T[2]: 10, T[3]: 0})
    assert six.lag("g") == {T[2]: 0, T[3]: 0}
    produce("t", [b"more"] * 3, partition=3)
    assert six.lag("g") == {T[2]: 0, T[3]: 3}


# -- one release path: revoke, poll-interval expiry and close ------------------------------------


def _recording_member(make_consumer, revoked: list, **kwargs) -> Consumer:
    return member(make_consumer, on_revoke=lambda tps: revoked.append(set(tps)), **kwargs)


def test_every_release_path_runs_on_revoke_then_commits(six, make_consumer, produce):
    produce("t", [b"x"] * 12, partition=0)
    produce("t", [b"y"] * 12, partition=5)

    # 1. revoke: a second member joins and takes half.
    revoked_a: list = []
    a = _recording_member(make_consumer, revoked_a)
    a.poll(timeout=0.5, max_records=100)
    b = member(make_consumer)
    settle(a, b)
    assert revoked_a and revoked_a[0] == set(T) - a.assignment()
    committed = six.committed_offsets("g")
    assert all(committed[tp] == (12 if tp.partition in (0, 5) else 0) for tp in revoked_a[0])

    # 2. poll-interval expiry: c stops polling; its heartbeat thread releases
    # its partitions, running on_revoke and the commit before the locks go.
    a.close()
    b.close()
    revoked_c: list = []
    c = _recording_member(make_consumer, revoked_c, max_poll_interval=0.3, heartbeat_interval=0.02)
    assert c.poll(timeout=0.6) == []
    assert not revoked_c, "waiting in poll longer than max_poll_interval is still polling"
    produce("t", [b"w"] * 4, partition=0)
    assert len(c.poll(timeout=1)) == 4
    deadline = time.monotonic() + 5
    while not revoked_c and time.monotonic() < deadline:
        time.sleep(0.02)
    assert revoked_c == [set(T)]
    assert six.lag("g") == {tp: 0 for tp in T}
    d = member(make_consumer)
    settle(d)
    assert d.assignment() == set(T)
    d.close()

    # 3. close: on_revoke with everything owned, then the final commit.
    revoked_e: list = []
    e = _recording_member(make_consumer, revoked_e)
    settle(e)
    produce("t", [b"z"] * 3, partition=0)
    assert len(e.poll(timeout=1)) == 3
    e.close()
    assert revoked_e == [set(T)]
    assert six.committed_offsets("g")[T[0]] == 19


def test_the_poll_timeout_warning_says_how_long_in_fractions_of_a_second(six, make_consumer, caplog):
    c = member(make_consumer, max_poll_interval=0.2, heartbeat_interval=0.01)
    settle(c)
    with caplog.at_level(logging.WARNING, logger="minikafka"):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any("did not poll" in r.getMessage()
                                                      for r in caplog.records):
            time.sleep(0.02)
    said = [r.getMessage() for r in caplog.records if "did not poll" in r.getMessage()]
    assert said and re.search(r"did not poll for 0\.\d+ s", said[0]), said  # was "for 0 s"
    c.close()


def test_close_while_the_heartbeat_thread_waits_to_expire_the_member(six, make_consumer):
    """close() holds the consumer's lock while it stops the heartbeat thread;
    a heartbeat thread waiting for that lock to release an idle member's
    partitions must give up rather than deadlock the close."""
    import threading

    c = member(make_consumer, max_poll_interval=0.2, heartbeat_interval=0.01)
    settle(c)

    def close_holding_the_lock() -> None:
        with c._backend._lock:
            time.sleep(0.4)  # idle past max_poll_interval: the heartbeat thread wants the lock
            c.close()

    closer = threading.Thread(target=close_holding_the_lock, daemon=True)
    closer.start()
    closer.join(5)
    assert not closer.is_alive(), "close() deadlocked with the heartbeat thread"
    assert six.describe_group("g").members == ()


def test_a_constructor_whose_on_assign_raises_leaves_the_group(six, make_consumer, produce):
    """The constructor's join runs the first on_assign; if it raises, no
    consumer reaches the caller, so the constructor itself leaves: the
    partitions go to the other members at once instead of staying locked
    until the process exits."""
    def not_ready(tps):
        raise RuntimeError("app not ready")

    with pytest.raises(RuntimeError, match="app not ready"):
        member(make_consumer, on_assign=not_ready)
    assert six.describe_group("g").members == ()
    b = member(make_consumer)
    settle(b)
    assert b.assignment() == set(T)
    produce("t", [b"x"] * 3, partition=0)
    assert len(b.poll(timeout=1)) == 3


def test_assignment_naming_a_topic_deleted_since_does_not_stall_the_others(broker, make_consumer, produce):
    # The group's state was computed while topic u existed; u was deleted
    # before this member adopted it. poll raised TopicNotFoundError, and
    # the partitions it already read were dropped from its reading set for
    # good (their owner locks still held): t's records were never
    # delivered while the member lived.
    broker.create_topic("t", partitions=2)
    broker.create_topic("u", partitions=2)
    t_parts = {TopicPartition("t", 0), TopicPartition("t", 1)}
    # a's peer checks (which would notice u is gone) run only every 5 s.
    a = make_consumer("t", "u", group_id="g", auto_offset_reset="earliest", heartbeat_interval=1.0)
    b = make_consumer("t", "u", group_id="g", auto_offset_reset="earliest")
    settle(a, b)
    assert a.assignment() == t_parts  # sticky: the first member keeps the first half
    b.close()  # a is assigned u's partitions too; before it adopts them, u goes
    broker.delete_topic("u")
    assert a.poll(timeout=0.2) == []  # adopts the assignment (a sync every 50 ms)
    assert a.assignment() == t_parts and a._backend.rebalancing()  # u's stay pending
    produce("t", [b"%d" % i for i in range(10)], partition=0)
    produce("t", [b"%d" % i for i in range(10)], partition=1)
    got: list[bytes] = []
    deadline = time.monotonic() + 10
    while len(got) < 20 and time.monotonic() < deadline:
        got += [r.value for r in a.poll(timeout=0.05)]
    assert sorted(got) == sorted([b"%d" % i for i in range(10)] * 2)
    assert a.assignment() == t_parts
    # The peer check reassigns without u: nothing stays pending.
    settle(a, until=lambda: not a._backend.rebalancing(), timeout=20)
    assert a.assignment() == t_parts


@pytest.mark.parametrize("tp, offset, error, names", [
    (TopicPartition("t", 0), 2**63, "InvalidArgumentError", "2**63"),  # was struct.error "out of range"
    (TopicPartition("t", -1), 1, "InvalidPartitionError", "t/-1"),  # was struct.error
    (TopicPartition("t", 2**32), 1, "InvalidPartitionError", "t/4294967296"),  # was struct.error
    (TopicPartition("t", 6), 1, "InvalidPartitionError", "t/6"),  # was stored
    (TopicPartition("nope", 0), 1, "TopicNotFoundError", "nope"),  # was stored
    (TopicPartition("../../etc", 0), 1, "InvalidTopicError", "../../etc"),  # was stored
])
def test_commit_of_an_impossible_offset_names_it_and_keeps_the_others(six, make_consumer, tp, offset,
                                                                      error, names):
    c = make_consumer(group_id="g")
    c.assign([T[0]])
    c.commit({T[0]: 3})
    with pytest.raises(Exception) as info:
        c.commit({T[1]: 9, tp: offset})
    assert type(info.value).__name__ == error and names in str(info.value), repr(info.value)
    assert six.committed_offsets("g") == {T[0]: 3}  # nothing of the failed commit is stored
    c.commit({T[0]: 4})  # and the group's file is still fine
    assert six.committed_offsets("g") == {T[0]: 4}


def test_alter_group_offsets_refuses_an_offset_past_int64(six):
    with pytest.raises(InvalidArgumentError, match=r"2\*\*63-1"):
        six.alter_group_offsets("g", {T[0]: 2**63})
    assert six.committed_offsets("g") == {}


@pytest.mark.parametrize("content", [b"", b"{not json", b"[]", b'{"members": 5}'])
def test_a_group_with_a_damaged_state_file_can_still_be_deleted(six, make_consumer, content):
    # delete_group judged liveness from state.json, so a damaged one raised
    # CorruptLogError there too: the damaged group could not even be deleted.
    c = member(make_consumer, enable_auto_commit=False)
    c.commit({T[0]: 1})
    state = os.path.join(six.offset_store("g").dir, "state.json")
    with open(state, "wb") as f:
        f.write(content)
    with pytest.raises(GroupNotEmptyError, match=re.escape(c.member_id)):
        six.delete_group("g")  # a live member is still seen, by its member file
    member_file = member_path(six.offset_store("g").dir, c.member_id)
    with pytest.raises(CorruptLogError, match=r"state\.json"):
        c.close()  # leaving cannot rewrite the state: said, and the member is gone all the same
    assert not os.path.exists(member_file)
    with pytest.raises(CorruptLogError, match=r"state\.json"):
        six.describe_group("g")  # damage is named, not read as an empty group
    six.delete_group("g")
    assert six.list_groups() == [] and six.committed_offsets("g") == {}
    again = member(make_consumer)
    assert again.assignment() == set(T)


def test_a_heartbeat_racing_close_does_not_bring_the_member_file_back(six, make_consumer):
    # heartbeat() took the member lock before close() closed it, then asked
    # it for its descriptor: FileLock reopened (O_CREAT) the unlinked file,
    # so the member file of a member that had left came back, with a fresh
    # heartbeat and a descriptor nobody ever closed.
    import threading

    c = member(make_consumer, heartbeat_interval=60, session_timeout=120)  # no beat of its own here
    gm = c._backend._member
    path = member_path(gm.dir, gm.member_id)
    reached, go = threading.Event(), threading.Event()

    class PausedLock:
        """The heartbeat lock, pausing the racing thread as it enters."""

        def __init__(self, real: threading.RLock) -> None:
            self.real = real

        def __enter__(self) -> None:
            if threading.current_thread().name == "racing-heartbeat":
                reached.set()
                go.wait(5)
            self.real.acquire()

        def __exit__(self, *exc: object) -> None:
            self.real.release()

    gm._heartbeat_lock = PausedLock(gm._heartbeat_lock)
    beat = threading.Thread(target=gm.heartbeat, args=(0,), name="racing-heartbeat")
    beat.start()
    assert reached.wait(5)
    c.close()
    assert not os.path.exists(path)
    go.set()
    beat.join(5)
    assert not os.path.exists(path), "the member file came back after the member left"


@pytest.mark.parametrize("step", ["revoke", "rejoin"])
def test_a_poll_that_must_rebalance_while_the_group_lock_is_held_honours_its_timeout(
        make_broker, make_consumer, produce, step):
    # A poll whose sync had to give partitions up (their auto-commit) or to
    # rejoin waited request_timeout for the group lock, not its own timeout,
    # then raised TimeoutError — with the revoked partitions let go uncommitted.
    from minikafka.group_state import write_state
    from minikafka.locking import FileLock

    broker = make_broker(request_timeout=4.0)
    broker.create_topic("t", partitions=6)
    for p in range(6):
        produce("t", [b"x"] * 10, broker=broker, partition=p)
    revoked: list[set[TopicPartition]] = []
    a = make_consumer("t", broker=broker, group_id="g", auto_offset_reset="earliest",
                      on_revoke=revoked.append)
    got = []
    while len(got) < 60:
        got += a.poll(timeout=1.0)
    group_dir = broker.offset_store("g").dir
    if step == "revoke":
        b = make_consumer("t", broker=broker, group_id="g")  # a has not adopted it yet: owns all six
    else:
        write_state(group_dir, read_state(group_dir).without([a.member_id]))  # a was dropped
    held = FileLock(os.path.join(group_dir, "lock"))  # "another process", frozen inside a commit
    held.acquire()
    try:
        for _ in range(3):
            started = time.monotonic()
            assert a.poll(timeout=0.2) == []
            assert time.monotonic() - started < 2.0  # not request_timeout (4 s)
        assert revoked == [] and a.assignment() == set(T)  # nothing given up half done
    finally:
        held.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not revoked:
        a.poll(timeout=0.05)
    assert len(revoked) == 1  # once, when the lock was free, and committed
    committed = broker.committed_offsets("g")
    assert all(committed[tp] == 10 for tp in revoked[0]), committed
    if step == "revoke":
        settle(a, b)


@pytest.mark.parametrize(("options", "names"), [
    ({"session_timeout": 0.05}, "session_timeout"),  # below the default heartbeat_interval (0.1)
    ({"session_timeout": 1.0, "heartbeat_interval": 1.0}, "session_timeout"),
    ({"session_timeout": float("inf"), "heartbeat_interval": float("inf")}, "at most"),
    ({"session_timeout": float("inf"), "heartbeat_interval": 1e10}, "at most"),
    ({"heartbeat_interval": 1e-9}, "at least"),  # its thread then spun: ~40% of a core
])
def test_heartbeat_interval_must_fit_the_session_timeout(six, make_consumer, options, names):
    # A session_timeout below heartbeat_interval made two members drop each
    # other between beats (29 generations in 2 s); an infinite or huge
    # interval killed the heartbeat thread (OverflowError in its timed wait);
    # a nanosecond one was accepted and its thread used ~40% of a core.
    with pytest.raises(InvalidArgumentError, match=f"heartbeat_interval.*{names}"):
        member(make_consumer, **options)
    assert six.list_groups() == []



def test_delete_topic_drops_every_group_offsets_even_if_one_group_is_damaged(six, caplog):
    # forget_topic of a group with a damaged offsets file raised out of
    # delete_topic after the topic was gone: the delete looked failed, and
    # the groups after it in the listing kept offsets of the deleted topic.
    six.create_topic("u")
    for group_id in ("a", "b", "c"):
        six.offset_store(group_id).commit({T[0]: 1, TopicPartition("u", 0): 2})
    with open(os.path.join(six.offset_store("a").dir, "offsets"), "r+b") as f:
        f.write(b"junk")
    with caplog.at_level(logging.WARNING, logger="minikafka"):
        six.delete_topic("t")
    assert six.list_topics() == ["u"]
    assert six.committed_offsets("b") == six.committed_offsets("c") == {TopicPartition("u", 0): 2}
    said = [r.getMessage() for r in caplog.records if "offsets in group 'a' were left" in r.getMessage()]
    assert said and "offsets" in said[0], [r.getMessage() for r in caplog.records]


def test_a_damaged_state_is_logged_once_by_the_heartbeat_not_every_tick(six, make_consumer, caplog):
    c = member(make_consumer, heartbeat_interval=0.01)
    settle(c)
    with caplog.at_level(logging.ERROR, logger="minikafka"):
        state = os.path.join(six.offset_store("g").dir, "state.json")
        with open(state + ".new", "w") as f:  # replaced whole: no reader sees it empty first
            f.write("{")
        os.replace(state + ".new", state)
        time.sleep(0.5)  # ~50 heartbeats, each finding the damage
    failed = [r for r in caplog.records if "heartbeat of group" in r.getMessage()]
    assert len(failed) == 1 and "state.json" in str(failed[0].exc_info[1])
    with pytest.raises(CorruptLogError, match=r"state\.json"):
        c.poll(timeout=0)  # the consumer says so too
    os.unlink(os.path.join(six.offset_store("g").dir, "state.json"))  # the documented recovery
    settle(c)
    assert c.assignment() == set(T)


@pytest.mark.parametrize("member_id", ["../offsets", "..", ".", "", "a/b"])
def test_a_state_naming_a_member_outside_members_never_deletes_a_file(six, make_consumer, member_id):
    # A peer unlinks the member file of each member it finds dead: a damaged
    # (or hand-edited) state.json naming the member "../offsets" made every
    # member delete the group's committed offsets.
    import json

    c = member(make_consumer, enable_auto_commit=False, heartbeat_interval=0.01)
    c.commit({T[0]: 5})
    group_dir = six.offset_store("g").dir
    with open(os.path.join(group_dir, "state.json")) as f:
        state = json.load(f)
    state["members"][member_id] = {"topics": ["t"]}
    with open(os.path.join(group_dir, "state.json"), "w") as f:
        json.dump(state, f)
    time.sleep(0.3)  # the heartbeat thread's peer checks
    with pytest.raises(CorruptLogError, match=r"state\.json.*member id"):
        c.poll(timeout=0.1)
    assert six.committed_offsets("g") == {T[0]: 5}
    assert sorted(os.listdir(group_dir)) == ["lock", "members", "offsets", "owners", "state.json"]
    with pytest.raises(CorruptLogError, match=r"state\.json.*member id"):
        c.close()


def test_a_state_assigning_a_topic_that_is_no_file_name_creates_nothing_outside(six, make_consumer, data_dir):
    # Owner locks are owners/<topic>+<partition>: an assignment naming the
    # topic "../../../escape" created (and flocked) data/escape+0.
    import json

    c = member(make_consumer, enable_auto_commit=False)
    group_dir = six.offset_store("g").dir
    with open(os.path.join(group_dir, "state.json")) as f:
        state = json.load(f)
    state["assignment"][c.member_id].append(["../../../escape", 0])
    state["generation"] += 1
    with open(os.path.join(group_dir, "state.json"), "w") as f:
        json.dump(state, f)
    with pytest.raises(CorruptLogError, match=r"state\.json.*escape"):
        c.poll(timeout=0.1)
    assert not (data_dir / "escape+0").exists()
    with pytest.raises(CorruptLogError, match=r"state\.json"):
        c.close()


@pytest.mark.parametrize(("offsets", "names"), [
    ({TopicPartition("t", "0"): 1}, "TopicPartition"),  # compared with an int: "'<=' not supported"
    ({TopicPartition("t", True): 1}, "TopicPartition"),  # stored as partition 1
    ({"t": 1}, "TopicPartition"),  # "not enough values to unpack"
    ({("t", 0, 1): 1}, "TopicPartition"),
    ([(T[0], 1)], "mapping"),  # AttributeError: 'list' object has no attribute 'items'
])
def test_alter_group_offsets_names_a_bad_argument_and_writes_nothing(six, offsets, names):
    with pytest.raises(TypeError, match=names):
        six.alter_group_offsets("g", offsets)
    with pytest.raises(TypeError, match="validate_only"):
        six.alter_group_offsets("g", {T[0]: 1}, validate_only="yes")
    assert six.committed_offsets("g") == {} and six.list_groups() == []


def test_the_state_cache_sees_a_state_written_twice_since_with_a_reused_inode(tmp_path):
    # StateCache keyed state.json by (inode, mtime, size) without holding the
    # file: a rebalance freed the inode it had read, the next one's new file
    # reused it, and with a coarse timestamp (same tick) and the same size
    # the cache took a new assignment for the one it had: the member never
    # adopted it (its partitions stayed pending for their new owner).
    from minikafka.group_state import GroupState, MemberState, StateCache, write_state

    def state(generation: int, owner: str) -> GroupState:
        return GroupState(generation, {owner: MemberState(("t",))}, {owner: (T[0],)})

    write_state(str(tmp_path), state(1, "a"))
    cache = StateCache(str(tmp_path))
    assert cache.get() == state(1, "a")
    path = tmp_path / "state.json"
    before = os.stat(path)
    write_state(str(tmp_path), state(2, "b"))
    write_state(str(tmp_path), state(3, "b"))  # same size as the first
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # the same timestamp tick
    assert os.stat(path).st_size == before.st_size
    try:
        assert cache.changed()
        assert cache.get() == state(3, "b")
    finally:
        cache.close()


def test_unsubscribe_against_a_held_group_lock_waits_one_request_timeout_and_reads_no_more(
        make_broker, make_consumer, produce):
    # unsubscribe took the group lock twice (the revoke's commit, leaving)
    # with request_timeout each, so it waited twice as long as API.md allows;
    # and once it raised, subscription() still named the topics it had left.
    from minikafka.errors import TimeoutError as MiniTimeoutError
    from minikafka.locking import FileLock

    broker = make_broker(request_timeout=1.0)
    broker.create_topic("t", partitions=2)
    produce("t", [b"x"], broker=broker, partition=0)
    c = make_consumer("t", broker=broker, group_id="g", auto_offset_reset="earliest")
    assert len(c.poll(timeout=2.0)) == 1
    held = FileLock(os.path.join(broker.offset_store("g").dir, "lock"))
    held.acquire()
    try:
        started = time.monotonic()
        with pytest.raises(MiniTimeoutError):
            c.unsubscribe()
        assert time.monotonic() - started < 1.7  # one request_timeout (1 s), not two
        assert c.assignment() == set() and c.subscription() == set()
        produce("t", [b"y"], broker=broker, partition=0)
        assert c.poll(timeout=0.3) == []  # no longer owned: not read
    finally:
        held.close()
