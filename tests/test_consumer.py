"""Consumer: assignment, polling, iteration, positions, commits, offset
reset, time lookups, pause/resume, groups and wake-up latency."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest

import minikafka
from minikafka import Consumer, NoOffsetError, Producer, Record, TopicPartition

TP0 = TopicPartition("t", 0)
TP1 = TopicPartition("t", 1)
TP2 = TopicPartition("t", 2)


@pytest.fixture
def topic10(broker, produce):
    """Topic "t" with one partition holding b"0" .. b"9"."""
    broker.create_topic("t")
    produce("t", [b"%d" % i for i in range(10)])
    return "t"


@pytest.fixture
def topic3(broker, produce):
    """Topic "t" with 3 partitions; partition p holds b"p-0" .. b"p-(4+p)"."""
    broker.create_topic("t", 3)
    for p in range(3):
        produce("t", [b"%d-%d" % (p, i) for i in range(5 + p)], partition=p)
    return "t"


# -- data classes --------------------------------------------------------------


def test_topic_partition_ordered_hashable_and_immutable():
    tps = [TopicPartition("b", 0), TopicPartition("a", 2), TopicPartition("a", 10), TopicPartition("a", 1)]
    assert sorted(tps) == [
        TopicPartition("a", 1),
        TopicPartition("a", 2),
        TopicPartition("a", 10),
        TopicPartition("b", 0),
    ]
    assert TopicPartition("a", 1) == TopicPartition("a", 1)
    assert len({TopicPartition("a", 1), TopicPartition("a", 1), TopicPartition("a", 2)}) == 2
    d = {TopicPartition("x", 0): 1}
    assert d[TopicPartition("x", 0)] == 1
    tp = TopicPartition("a", 1)
    assert (tp.topic, tp.partition) == ("a", 1)
    with pytest.raises(AttributeError):
        tp.partition = 3


def test_record_fields_and_immutability(broker, make_consumer, produce):
    broker.create_topic("t")
    produce("t", [b"val"], key=b"key", headers=[("h", b"1")], timestamp_ms=1234)
    c = make_consumer(auto_offset_reset="earliest")
    c.assign([TP0])
    (r,) = c.poll(timeout=1.0)
    assert isinstance(r, Record)
    assert (r.topic, r.partition, r.offset, r.timestamp) == ("t", 0, 0, 1234)
    assert (r.key, r.value, r.headers) == (b"key", b"val", (("h", b"1"),))
    with pytest.raises(AttributeError):
        r.value = b"other"


# -- assignment ---------------------------------------------------------------------


def test_constructor_topics_subscribe_all_partitions(broker, make_consumer):
    broker.create_topic("t", 3)
    broker.create_topic("u", 2)
    c = make_consumer("t", "u")
    assert c.assignment() == {TP0, TP1, TP2, TopicPartition("u", 0), TopicPartition("u", 1)}


def test_subscribe_method(broker, make_consumer):
    broker.create_topic("t", 2)
    c = make_consumer()
    assert c.assignment() == set()
    c.subscribe(["t"])
    assert c.assignment() == {TP0, TP1}


def test_assign_manual_partitions(broker, make_consumer):
    broker.create_topic("t", 3)
    c = make_consumer()
    c.assign([TP2, TP0])
    assert c.assignment() == {TP0, TP2}
    assert isinstance(c.assignment(), set)


def test_assign_replaces_previous_assignment(broker, make_consumer):
    broker.create_topic("t", 3)
    c = make_consumer()
    c.assign([TP0, TP1])
    c.assign([TP2])
    assert c.assignment() == {TP2}


def test_assign_missing_topic_raises_not_found(broker, make_consumer):
    c = make_consumer()
    with pytest.raises(minikafka.TopicNotFoundError):
        c.assign([TopicPartition("nope", 0)])


@pytest.mark.parametrize("partition", [2, 5, -1])
def test_assign_missing_partition_raises_invalid_partition(broker, make_consumer, partition):
    broker.create_topic("t", 2)
    c = make_consumer()
    with pytest.raises(minikafka.InvalidPartitionError):
        c.assign([TopicPartition("t", partition)])


@pytest.mark.parametrize("tp", [TopicPartition("t", "0"), TopicPartition("t", True),
                                TopicPartition("t", 1.0), TopicPartition(None, 0)])
def test_a_topic_partition_of_the_wrong_types_is_a_type_error_naming_it(topic3, make_consumer, broker, tp):
    # A TopicPartition's fields went unchecked: "'<=' not supported between
    # 'int' and 'str'"; partition=True opened the directory t/True ("directory
    # is gone (topic deleted?)"); 1.0 was committed as partition 1.
    c = make_consumer(group_id="g")
    calls = [lambda: c.assign([tp]), lambda: c.beginning_offsets([tp]), lambda: c.end_offsets([tp]),
             lambda: c.offsets_for_times({tp: 0}), lambda: c.committed(tp), lambda: c.commit({tp: 1})]
    for call in calls:
        with pytest.raises(TypeError, match=r"TopicPartition\(topic=.*\): (topic|partition) must"):
            call()
    assert c.assignment() == set() and broker.committed_offsets("g") == {}


def test_a_refused_subscribe_keeps_the_listeners(topic3, make_consumer):
    # subscribe(listener=...) after assign() raised, but only after installing
    # the listener: the refused call changed which callbacks run.
    seen: list[str] = []
    c = make_consumer(group_id="g", on_assign=lambda tps: seen.append("ctor"))

    class Listener:
        def on_assign(self, tps: set[TopicPartition]) -> None:
            seen.append("listener")

    c.assign([TP0])
    with pytest.raises(minikafka.InvalidArgumentError, match="after assign"):
        c.subscribe(["t"], listener=Listener())
    c.unsubscribe()
    c.subscribe(["t"])
    c.poll(timeout=0.5)
    assert seen == ["ctor"]


def test_assign_only_reads_assigned_partitions(topic3, make_consumer):
    c = make_consumer(auto_offset_reset="earliest")
    c.assign([TP1])
    records = c.poll(timeout=1.0)
    assert {r.partition for r in records} == {1}
    assert [r.value for r in records] == [b"1-%d" % i for i in range(6)]


def test_subscribe_to_topic_created_later(broker, make_consumer, produce):
    c = make_consumer("later", auto_offset_reset="earliest")
    assert c.assignment() == set()
    assert c.poll(timeout=0.05) == []
    broker.create_topic("later", 2)
    produce("later", [b"a", b"b"], partition=1)
    got = []
    deadline = time.monotonic() + 5
    while len(got) < 2 and time.monotonic() < deadline:
        got.extend(c.poll(timeout=0.2))
    assert [r.value for r in got] == [b"a", b"b"]
    assert c.assignment() == {TopicPartition("later", 0), TopicPartition("later", 1)}


def test_subscribe_topic_created_by_another_broker(broker, make_broker, make_consumer):
    c = make_consumer("x", auto_offset_reset="earliest")
    other = make_broker()
    other.create_topic("x")
    with Producer(other) as p:
        p.send("x", b"from-other")
    got = []
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        got.extend(c.poll(timeout=0.2))
    assert [r.value for r in got] == [b"from-other"]


# -- polling -------------------------------------------------------------------------


def test_poll_returns_each_partition_in_offset_order(topic3, make_consumer, drain_records):
    c = make_consumer("t", auto_offset_reset="earliest")
    records = drain_records(c, 18)
    assert len(records) == 5 + 6 + 7
    for p in range(3):
        mine = [r for r in records if r.partition == p]
        assert [r.offset for r in mine] == list(range(5 + p))
        assert [r.value for r in mine] == [b"%d-%d" % (p, i) for i in range(5 + p)]
        assert all(r.topic == "t" for r in mine)


def test_poll_no_data_returns_empty_list(broker, make_consumer):
    broker.create_topic("t")
    c = make_consumer("t")
    start = time.monotonic()
    assert c.poll() == []
    assert c.poll(timeout=0) == []
    assert time.monotonic() - start < 0.5


def test_poll_timeout_waits_about_that_long(broker, make_consumer):
    broker.create_topic("t")
    c = make_consumer("t")
    c.poll()
    start = time.monotonic()
    assert c.poll(timeout=0.2) == []
    elapsed = time.monotonic() - start
    assert 0.18 <= elapsed < 1.0


@pytest.mark.parametrize("max_records", [1, 3, 9, 10, 50])
def test_poll_max_records(topic10, make_consumer, max_records):
    c = make_consumer("t", auto_offset_reset="earliest")
    first = c.poll(timeout=1.0, max_records=max_records)
    assert len(first) == min(max_records, 10)
    assert [r.offset for r in first] == list(range(len(first)))
    rest = []
    while True:
        batch = c.poll(timeout=0.1, max_records=max_records)
        if not batch:
            break
        assert len(batch) <= max_records
        rest.extend(batch)
    assert [r.offset for r in first + rest] == list(range(10))


def test_max_poll_records_option(topic10, make_consumer):
    c = make_consumer("t", auto_offset_reset="earliest", max_poll_records=4)
    sizes = []
    got = []
    while len(got) < 10:
        batch = c.poll(timeout=1.0)
        assert batch, "ran out of records early"
        sizes.append(len(batch))
        got.extend(batch)
    assert all(s <= 4 for s in sizes)
    assert sizes[0] == 4
    assert [r.value for r in got] == [b"%d" % i for i in range(10)]


def test_poll_max_records_across_partitions_no_duplicates(topic3, make_consumer):
    c = make_consumer("t", auto_offset_reset="earliest")
    got = []
    for _ in range(100):
        batch = c.poll(timeout=0.1, max_records=2)
        assert len(batch) <= 2
        got.extend(batch)
        if len(got) >= 18:
            break
    assert len(got) == 18
    assert len({(r.partition, r.offset) for r in got}) == 18


def test_poll_gets_records_sent_after_it_started(broker, make_consumer):
    broker.create_topic("t")
    c = make_consumer("t")  # latest
    assert c.poll() == []
    with Producer(broker) as p:
        p.send("t", b"new")
    assert [r.value for r in c.poll(timeout=2.0)] == [b"new"]


def test_poll_wakes_promptly_on_append_from_other_thread(broker, make_consumer):
    broker.create_topic("t")
    c = make_consumer("t")
    assert c.poll() == []  # positioned at the end
    sent_at = []

    def produce_later():
        time.sleep(0.15)
        with Producer(broker, linger_ms=0) as p:
            p.send("t", b"wake").result(timeout=5)
            sent_at.append(time.monotonic())

    t = threading.Thread(target=produce_later)
    start = time.monotonic()
    t.start()
    records = c.poll(timeout=5.0)
    returned = time.monotonic()
    t.join(5)
    assert [r.value for r in records] == [b"wake"]
    assert returned - start < 2.0
    assert returned - sent_at[0] < 0.5


def test_poll_wakes_on_append_from_other_process(broker, data_dir, make_consumer):
    broker.create_topic("t")
    c = make_consumer("t")
    assert c.poll() == []
    script = textwrap.dedent(
        f"""
        import time, minikafka
        b = minikafka.Broker({str(data_dir)!r}, segment_bytes=1 << 20)
        with minikafka.Producer(b, linger_ms=0) as p:
            time.sleep(0.1)
            p.send("t", b"from-process").result(timeout=5)
            print(time.time(), flush=True)
        b.close()
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        records = c.poll(timeout=10.0)
        returned = time.time()
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert [r.value for r in records] == [b"from-process"]
    assert returned - float(out.split()[-1]) < 0.5


# -- iteration ---------------------------------------------------------------------------


def test_iteration_ends_after_consumer_timeout(topic10, make_consumer):
    c = make_consumer("t", auto_offset_reset="earliest", consumer_timeout=0.3)
    start = time.monotonic()
    values = [r.value for r in c]
    elapsed = time.monotonic() - start
    assert values == [b"%d" % i for i in range(10)]
    assert 0.25 <= elapsed < 3.0


def test_iteration_sees_records_produced_while_iterating(broker, make_consumer):
    broker.create_topic("t")
    c = make_consumer("t", auto_offset_reset="earliest", consumer_timeout=1.0)

    def produce_slowly():
        with Producer(broker, linger_ms=0) as p:
            for i in range(5):
                p.send("t", b"%d" % i).result(timeout=5)
                time.sleep(0.05)

    t = threading.Thread(target=produce_slowly)
    t.start()
    values = [r.value for r in c]
    t.join(5)
    assert values == [b"%d" % i for i in range(5)]


def test_iteration_without_timeout_ends_on_close(topic10, make_consumer):
    c = make_consumer("t", auto_offset_reset="earliest")
    timer = threading.Timer(0.3, c.close)
    timer.start()
    got = []
    start = time.monotonic()
    try:
        for r in c:
            got.append(r.value)
    finally:
        timer.cancel()
    assert time.monotonic() - start < 3.0
    assert got == [b"%d" % i for i in range(10)]


def test_iteration_yields_records(topic10, make_consumer):
    c = make_consumer("t", auto_offset_reset="earliest", consumer_timeout=0.1)
    it = iter(c)
    first = next(it)
    assert isinstance(first, Record)
    assert first.offset == 0


# -- positions and seeking ------------------------------------------------------------


def test_position_with_earliest_and_latest(topic10, make_consumer):
    early = make_consumer(auto_offset_reset="earliest")
    early.assign([TP0])
    assert early.position(TP0) == 0
    late = make_consumer(auto_offset_reset="latest")
    late.assign([TP0])
    assert late.position(TP0) == 10


def test_position_advances_with_poll(topic10, make_consumer):
    c = make_consumer(auto_offset_reset="earliest")
    c.assign([TP0])
    c.poll(timeout=1.0, max_records=3)
    assert c.position(TP0) == 3
    c.poll(timeout=1.0)
    assert c.position(TP0) == 10


@pytest.mark.parametrize("offset", [0, 4, 9])
def test_seek_right_after_assign(topic10, make_consumer, offset):
    c = make_consumer(auto_offset_reset="latest")
    c.assign([TP0])
    c.seek(TP0, offset)
    assert c.position(TP0) == offset
    records = c.poll(timeout=1.0)
    assert [r.offset for r in records] == list(range(offset, 10))
    assert records[0].value == b"%d" % offset


def test_seek_right_after_subscribe(topic10, make_consumer):
    c = make_consumer("t")
    c.seek(TP0, 7)
    assert [r.offset for r in c.poll(timeout=1.0)] == [7, 8, 9]


def test_seek_backwards_replays(topic10, make_consumer):
    c = make_consumer(auto_offset_reset="earliest")
    c.assign([TP0])
    assert len(c.poll(timeout=1.0)) == 10
    c.seek(TP0, 2)
    assert [r.value for r in c.poll(timeout=1.0)] == [b"%d" % i for i in range(2, 10)]


def test_seek_to_end_position_is_end(topic10, make_consumer):
    c = make_consumer(auto_offset_reset="earliest")
    c.assign([TP0])
    c.seek(TP0, 10)  # the end is a valid position: the next record to be written
    assert c.poll(timeout=0.05) == []
    assert c.position(TP0) == 10


def test_seek_to_beginning_and_end(topic3, make_consumer):
    c = make_consumer(auto_offset_reset="latest")
    c.assign([TP0, TP1, TP2])
    assert {tp: c.position(tp) for tp in (TP0, TP1, TP2)} == {TP0: 5, TP1: 6, TP2: 7}
    c.seek_to_beginning(TP1)
    assert c.position(TP1) == 0
    assert c.position(TP0) == 5
    records = c.poll(timeout=1.0)
    assert [r.partition for r in records] == [1] * 6
    c.seek_to_beginning(TP0, TP2)
    assert c.position(TP0) == 0 and c.position(TP2) == 0
    c.seek_to_end(TP0)
    assert c.position(TP0) == 5
    got = []
    while True:
        batch = c.poll(timeout=0.1)
        if not batch:
            break
        got.extend(batch)
    assert {r.partition for r in got} == {2}
    assert len(got) == 7


def test_seek_to_beginning_without_args_means_all(topic3, make_consumer):
    c = make_consumer(auto_offset_reset="latest")
    c.assign([TP0, TP1, TP2])
    c.seek_to_beginning()
    assert [c.position(tp) for tp in (TP0, TP1, TP2)] == [0, 0, 0]
    c.seek_to_end()
    assert [c.position(tp) for tp in (TP0, TP1, TP2)] == [5, 6, 7]


def test_seek_negative_offset_raises_invalid_argument(topic10, make_consumer):
    c = make_consumer()
    c.assign([TP0])
    with pytest.raises(minikafka.InvalidArgumentError) as exc_info:
        c.seek(TP0, -1)
    assert isinstance(exc_info.value, ValueError)


def test_seek_non_int_offset_raises_type_error(topic10, make_consumer):
    c = make_consumer()
    c.assign([TP0])
    with pytest.raises(TypeError):
        c.seek(TP0, "3")


# -- offset reset ----------------------------------------------------------------------


def test_auto_offset_reset_earliest(topic10, make_consumer):
    c = make_consumer("t", auto_offset_reset="earliest")
    assert [r.offset for r in c.poll(timeout=1.0)] == list(range(10))


def test_auto_offset_reset_latest_is_default(topic10, make_consumer, produce):
    c = make_consumer("t")
    assert c.poll(timeout=0.1) == []
    produce("t", [b"new"])
    records = c.poll(timeout=2.0)
    assert [(r.offset, r.value) for r in records] == [(10, b"new")]


def test_auto_offset_reset_none_raises_no_offset(topic10, make_consumer):
    c = make_consumer(auto_offset_reset="none")
    c.assign([TP0])
    with pytest.raises(NoOffsetError) as exc_info:
        c.poll(timeout=0.1)
    assert "t" in str(exc_info.value)


def test_auto_offset_reset_none_with_group_and_no_commit(topic10, make_consumer):
    c = make_consumer(group_id="g", auto_offset_reset="none")
    c.assign([TP0])
    with pytest.raises(NoOffsetError):
        c.poll(timeout=0.1)


def test_auto_offset_reset_none_uses_committed_offset(topic10, make_consumer):
    first = make_consumer(group_id="g", auto_offset_reset="earliest")
    first.assign([TP0])
    first.commit({TP0: 6})
    first.close()
    c = make_consumer(group_id="g", auto_offset_reset="none")
    c.assign([TP0])
    assert [r.offset for r in c.poll(timeout=1.0)] == [6, 7, 8, 9]


def test_auto_offset_reset_none_after_explicit_seek(topic10, make_consumer):
    c = make_consumer(auto_offset_reset="none")
    c.assign([TP0])
    c.seek(TP0, 8)
    assert [r.offset for r in c.poll(timeout=1.0)] == [8, 9]


@pytest.mark.parametrize(
    ("reset", "expected_first"),
    [("earliest", 0), ("latest", 10)],
)
def test_seek_out_of_range_behaves_like_reset(topic10, make_consumer, produce, reset, expected_first):
    c = make_consumer(auto_offset_reset=reset)
    c.assign([TP0])
    c.seek(TP0, 1000)
    records = c.poll(timeout=0.2)
    if reset == "latest":
        assert records == []
        produce("t", [b"after"])
        records = c.poll(timeout=2.0)
    assert records[0].offset == expected_first
    assert c.position(TP0) == records[-1].offset + 1


def test_seek_out_of_range_with_reset_none_raises(topic10, make_consumer):
    c = make_consumer(auto_offset_reset="none")
    c.assign([TP0])
    c.seek(TP0, 1000)
    with pytest.raises(NoOffsetError):
        c.poll(timeout=0.1)


def test_committed_offset_out_of_range_behaves_like_reset(topic10, make_consumer):
    first = make_consumer(group_id="g")
    first.assign([TP0])
    first.commit({TP0: 500})
    first.close()
    c = make_consumer(group_id="g", auto_offset_reset="earliest")
    c.assign([TP0])
    assert [r.offset for r in c.poll(timeout=1.0)][:1] == [0]


# -- commits ------------------------------------------------------------------------------


def test_committed_is_none_before_any_commit(topic10, make_consumer):
    c = make_consumer(group_id="g")
    c.assign([TP0])
    assert c.committed(TP0) is None


def test_commit_current_position_is_next_offset(topic10, make_consumer):
    c = make_consumer(group_id="g", auto_offset_reset="earliest", enable_auto_commit=False)
    c.assign([TP0])
    records = c.poll(timeout=1.0, max_records=4)
    assert [r.offset for r in records] == [0, 1, 2, 3]
    c.commit()
    assert c.committed(TP0) == 4  # last processed (3) + 1


def test_commit_explicit_offsets(topic3, make_consumer):
    c = make_consumer(group_id="g", enable_auto_commit=False)
    c.assign([TP0, TP1])
    c.commit({TP0: 3, TP1: 1})
    assert c.committed(TP0) == 3
    assert c.committed(TP1) == 1
    c.commit({TP0: 5})
    assert c.committed(TP0) == 5
    assert c.committed(TP1) == 1  # untouched partitions keep their commit


def test_commit_survives_broker_reopen(make_broker):
    b1 = make_broker()
    b1.create_topic("t")
    with Producer(b1) as p:
        for i in range(10):
            p.send("t", b"%d" % i)
    with Consumer(b1, group_id="g", auto_offset_reset="earliest", enable_auto_commit=False) as c:
        c.assign([TP0])
        c.poll(timeout=1.0, max_records=4)
        c.commit()
    b1.close()

    b2 = make_broker()
    with Consumer(b2, group_id="g", auto_offset_reset="earliest") as c:
        c.assign([TP0])
        assert c.committed(TP0) == 4
        assert c.position(TP0) == 4
        records = c.poll(timeout=1.0)
    assert [r.value for r in records] == [b"%d" % i for i in range(4, 10)]


def test_commit_visible_to_second_broker_instance(topic10, make_broker, make_consumer):
    c = make_consumer(group_id="g", enable_auto_commit=False)
    c.assign([TP0])
    c.commit({TP0: 7})
    other = make_broker()
    with Consumer(other, group_id="g") as c2:
        c2.assign([TP0])
        assert c2.committed(TP0) == 7
    assert other.lag("g") == {TP0: 3}


def test_auto_commit_on_close(topic10, broker, make_consumer, drain_records):
    c = make_consumer("t", group_id="g", auto_offset_reset="earliest")
    assert len(drain_records(c, 10)) == 10
    c.close()
    c2 = make_consumer(group_id="g")
    c2.assign([TP0])
    assert c2.committed(TP0) == 10
    assert broker.lag("g") == {TP0: 0}


def test_context_manager_auto_commits(topic10, broker):
    with Consumer(broker, group_id="g", auto_offset_reset="earliest") as c:
        c.assign([TP0])
        assert len(c.poll(timeout=1.0, max_records=6)) == 6
    with Consumer(broker, group_id="g") as c:
        c.assign([TP0])
        assert c.committed(TP0) == 6
        assert [r.offset for r in c.poll(timeout=1.0)] == [6, 7, 8, 9]


def test_no_auto_commit_when_disabled(topic10, make_consumer):
    c = make_consumer(group_id="g", auto_offset_reset="earliest", enable_auto_commit=False)
    c.assign([TP0])
    assert len(c.poll(timeout=1.0)) == 10
    c.close()
    c2 = make_consumer(group_id="g", auto_offset_reset="earliest")
    c2.assign([TP0])
    assert c2.committed(TP0) is None
    assert c2.poll(timeout=1.0)[0].offset == 0


def test_auto_commit_interval(topic10, make_consumer):
    c = make_consumer(group_id="g", auto_offset_reset="earliest", auto_commit_interval=0.1)
    c.assign([TP0])
    assert len(c.poll(timeout=1.0, max_records=5)) == 5
    time.sleep(0.25)
    c.poll(timeout=0.05, max_records=5)  # auto-commit runs as part of polling
    committed = c.committed(TP0)
    assert committed is not None and committed >= 5


def test_consumer_without_group_commits_nothing(topic10, data_dir, make_consumer):
    c = make_consumer("t", auto_offset_reset="earliest")
    c.poll(timeout=1.0)
    c.close()
    groups = data_dir / "groups"
    leftovers = [p for p in groups.rglob("*") if p.is_file()] if groups.exists() else []
    assert leftovers == []


def test_committed_from_one_group_not_seen_by_another(topic10, make_consumer):
    a = make_consumer(group_id="a", enable_auto_commit=False)
    a.assign([TP0])
    a.commit({TP0: 5})
    b = make_consumer(group_id="b")
    b.assign([TP0])
    assert b.committed(TP0) is None


# -- lag ----------------------------------------------------------------------------------


def test_broker_lag(topic3, broker, make_consumer):
    c = make_consumer(group_id="g", enable_auto_commit=False)
    c.assign([TP0, TP1])
    c.commit({TP0: 2, TP1: 6})
    assert broker.lag("g") == {TP0: 3, TP1: 0}


def test_lag_grows_with_new_records(topic10, broker, make_consumer, produce):
    c = make_consumer(group_id="g", enable_auto_commit=False)
    c.assign([TP0])
    c.commit({TP0: 10})
    assert broker.lag("g") == {TP0: 0}
    produce("t", [b"x"] * 4)
    assert broker.lag("g") == {TP0: 4}


def test_lag_unknown_group_is_empty(topic10, broker):
    assert broker.lag("nobody") == {}


# -- beginning/end offsets, offsets_for_times -----------------------------------------------


def test_consumer_beginning_and_end_offsets(topic3, make_consumer):
    c = make_consumer()
    assert c.beginning_offsets([TP0, TP1, TP2]) == {TP0: 0, TP1: 0, TP2: 0}
    assert c.end_offsets([TP0, TP1, TP2]) == {TP0: 5, TP1: 6, TP2: 7}


def test_offsets_lookup_does_not_need_assignment(topic3, make_consumer):
    c = make_consumer()
    assert c.end_offsets([TP2]) == {TP2: 7}
    assert c.assignment() == set()


@pytest.fixture
def timed(broker, produce):
    """Topic "t" (1 partition): offsets 0..3 with timestamps 1000, 2000, 2000, 3000."""
    broker.create_topic("t")
    for ts in (1000, 2000, 2000, 3000):
        produce("t", [b"v"], timestamp_ms=ts)
    return "t"


@pytest.mark.parametrize(
    ("ts", "expected"),
    [(0, 0), (1000, 0), (1001, 1), (2000, 1), (2500, 3), (3000, 3), (3001, None), (10**13, None)],
)
def test_offsets_for_times(timed, make_consumer, ts, expected):
    c = make_consumer()
    assert c.offsets_for_times({TP0: ts}) == {TP0: expected}


def test_offsets_for_times_non_monotonic_timestamps(broker, produce, make_consumer):
    broker.create_topic("t")
    for ts in (1000, 5000, 3000, 4000):
        produce("t", [b"v"], timestamp_ms=ts)
    c = make_consumer()
    # earliest offset whose timestamp is >= the target
    assert c.offsets_for_times({TP0: 2000}) == {TP0: 1}
    assert c.offsets_for_times({TP0: 4500}) == {TP0: 1}
    assert c.offsets_for_times({TP0: 5001}) == {TP0: None}


def test_offsets_for_times_several_partitions_then_seek(broker, produce, make_consumer):
    broker.create_topic("t", 2)
    produce("t", [b"a", b"b", b"c"], partition=0, timestamp_ms=100)
    produce("t", [b"d"], partition=0, timestamp_ms=200)
    produce("t", [b"e"], partition=1, timestamp_ms=300)
    c = make_consumer(auto_offset_reset="latest")
    c.assign([TP0, TP1])
    found = c.offsets_for_times({TP0: 150, TP1: 150})
    assert found == {TP0: 3, TP1: 0}
    for tp, offset in found.items():
        c.seek(tp, offset)
    assert sorted(r.value for r in c.poll(timeout=1.0)) == [b"d", b"e"]


def test_offsets_for_times_empty_partition(broker, make_consumer):
    broker.create_topic("t")
    c = make_consumer()
    assert c.offsets_for_times({TP0: 0}) == {TP0: None}


# -- pause / resume ------------------------------------------------------------------------


def test_pause_and_resume(topic3, make_consumer):
    c = make_consumer(auto_offset_reset="earliest")
    c.assign([TP0, TP1])
    c.pause(TP0)
    records = []
    while True:
        batch = c.poll(timeout=0.1)
        if not batch:
            break
        records.extend(batch)
    assert {r.partition for r in records} == {1}
    assert len(records) == 6
    assert c.position(TP0) == 0
    c.resume(TP0)
    resumed = c.poll(timeout=1.0)
    assert {r.partition for r in resumed} == {0}
    assert [r.offset for r in resumed] == list(range(5))


def test_pause_everything_poll_waits_and_returns_empty(topic10, make_consumer):
    c = make_consumer("t", auto_offset_reset="earliest")
    c.pause(TP0)
    start = time.monotonic()
    assert c.poll(timeout=0.15) == []
    assert time.monotonic() - start >= 0.1
    c.resume(TP0)
    assert len(c.poll(timeout=1.0)) == 10


# -- groups -----------------------------------------------------------------------------------


def test_two_groups_each_see_every_record(topic3, make_consumer, drain_records):
    a = make_consumer("t", group_id="a", auto_offset_reset="earliest")
    b = make_consumer("t", group_id="b", auto_offset_reset="earliest")
    ra = drain_records(a, 18)
    rb = drain_records(b, 18)
    key = lambda r: (r.partition, r.offset)  # noqa: E731
    assert sorted(map(key, ra)) == sorted(map(key, rb))
    assert len(set(map(key, ra))) == 18


def test_group_commits_are_independent(topic10, broker, make_consumer):
    a = make_consumer(group_id="a", enable_auto_commit=False)
    a.assign([TP0])
    a.commit({TP0: 3})
    b = make_consumer(group_id="b", enable_auto_commit=False)
    b.assign([TP0])
    b.commit({TP0: 8})
    assert broker.lag("a") == {TP0: 7}
    assert broker.lag("b") == {TP0: 2}


def test_group_members_share_partitions(broker, make_consumer, produce):
    broker.create_topic("t", 4)
    c1 = make_consumer("t", group_id="g", auto_offset_reset="earliest")
    c2 = make_consumer("t", group_id="g", auto_offset_reset="earliest")
    all_tps = {TopicPartition("t", p) for p in range(4)}
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        c1.poll(timeout=0.05)
        c2.poll(timeout=0.05)
        a1, a2 = c1.assignment(), c2.assignment()
        if a1 and a2 and not (a1 & a2) and (a1 | a2) == all_tps:
            break
    assert c1.assignment() and c2.assignment(), "both members should own partitions"
    assert not (c1.assignment() & c2.assignment()), "a partition is owned by one member at a time"
    assert c1.assignment() | c2.assignment() == all_tps

    produce("t", [b"%d" % i for i in range(40)], key=None)
    got = []
    deadline = time.monotonic() + 5
    while len(got) < 40 and time.monotonic() < deadline:
        got.extend(c1.poll(timeout=0.05))
        got.extend(c2.poll(timeout=0.05))
    values = sorted(r.value for r in got)
    assert values == sorted(b"%d" % i for i in range(40))  # each record delivered exactly once


# -- deserializers ---------------------------------------------------------------------------


def test_deserializers_applied(broker, produce, make_consumer):
    broker.create_topic("t")
    produce("t", [b"42", b"7"], key=b"k")
    c = make_consumer(
        "t",
        auto_offset_reset="earliest",
        key_deserializer=lambda b: b.decode().upper(),
        value_deserializer=int,
    )
    records = c.poll(timeout=1.0)
    assert [(r.key, r.value) for r in records] == [("K", 42), ("K", 7)]


# -- closed -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.poll(),
        lambda c: c.poll(timeout=0.1),
        lambda c: c.seek(TP0, 0),
        lambda c: c.position(TP0),
        lambda c: c.commit(),
        lambda c: c.assign([TP0]),
        lambda c: c.subscribe(["t"]),
        lambda c: c.committed(TP0),
        lambda c: c.pause(TP0),
        lambda c: c.end_offsets([TP0]),
        lambda c: c.assignment(),
        lambda c: c.subscription(),
        lambda c: c.paused(),
    ],
    ids=["poll", "poll-timeout", "seek", "position", "commit", "assign", "subscribe", "committed", "pause",
         "end-offsets", "assignment", "subscription", "paused"],
)
def test_closed_consumer_raises_closed_error(topic10, broker, call):
    # assignment(), subscription() and paused() answered empty sets once
    # closed, as if it were open with nothing assigned (API.md: any call on
    # a closed object raises ClosedError; Kafka's consumers raise too).
    c = Consumer(broker, group_id="g")
    c.assign([TP0])
    c.close()
    with pytest.raises(minikafka.ClosedError):
        call(c)


def test_close_from_other_thread_ends_blocked_poll(broker, make_consumer):
    broker.create_topic("t")
    c = make_consumer("t")
    c.poll()
    threading.Timer(0.2, c.close).start()
    start = time.monotonic()
    try:
        c.poll(timeout=5.0)
    except minikafka.ClosedError:
        pass  # either an empty result or ClosedError ends the wait
    assert time.monotonic() - start < 2.0


def test_consumer_requires_a_broker():
    with pytest.raises(TypeError):
        Consumer("not a broker")


def test_bogus_auto_offset_reset(broker):
    with pytest.raises(minikafka.InvalidArgumentError) as exc_info:
        Consumer(broker, auto_offset_reset="bogus")
    assert isinstance(exc_info.value, ValueError)
    assert "bogus" in str(exc_info.value)


def test_seek_after_segments_appeared_or_vanished_since_the_last_listing(make_broker):
    """seek() tries the partition's cached segment listing first; segments
    rolled or deleted since then must not make it land anywhere wrong."""
    broker = make_broker(segment_bytes=4096)
    broker.create_topic("t", retention_bytes=3 * 4096)
    tp = TopicPartition("t", 0)
    c = Consumer(broker, auto_offset_reset="earliest")
    c.assign([tp])
    c.seek(tp, 0)  # lists an empty partition
    with Producer(broker, linger_ms=0) as p:
        for i in range(10):
            p.send("t", b"%d" % i)
    c.seek(tp, 5)
    assert [r.value for r in c.poll(timeout=1)][:1] == [b"5"]
    with Producer(broker, linger_ms=0) as p:  # many rolls, and retention drops the oldest
        for i in range(10, 400):
            p.send("t", b"%d" % i + b"." * 100)
    first = broker.topic("t").beginning_offsets()[0]
    assert first > 5
    c.seek(tp, 390)  # lies in a segment made after the cached listing
    assert c.poll(timeout=1)[0].offset == 390
    c.seek(tp, 3)  # its segment was deleted: out of range, so "earliest" applies
    assert c.poll(timeout=1)[0].offset == first
    c.close()


def test_offsets_for_times_after_segments_appeared_or_vanished(make_broker):
    """offsets_for_times also tries the cached segment listing first."""
    broker = make_broker(segment_bytes=4096)
    broker.create_topic("t", retention_bytes=3 * 4096)
    tp = TopicPartition("t", 0)
    c = Consumer(broker)
    with Producer(broker, linger_ms=0) as p:
        for i in range(10):
            p.send("t", b"%d" % i, timestamp_ms=1000 + i)
    assert c.offsets_for_times({tp: 1005}) == {tp: 5}  # lists and caches one segment
    with Producer(broker, linger_ms=0) as p:  # rolls, and retention drops the oldest
        for i in range(10, 400):
            p.send("t", b"." * 100, timestamp_ms=1000 + i)
    first = broker.topic("t").beginning_offsets()[0]
    assert first > 10
    assert c.offsets_for_times({tp: 1390}) == {tp: 390}  # in a segment made since
    assert c.offsets_for_times({tp: 1005}) == {tp: first}  # its segment was deleted
    assert c.offsets_for_times({tp: 5000}) == {tp: None}
    c.close()
