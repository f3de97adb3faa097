"""Iteration and reading to the end: a yielded record is consumed, and
``stop_at_end`` / ``at_end()`` (API.md, "Lifetime, iteration and reading to
the end")."""

from __future__ import annotations

import threading
import time

import pytest

from minikafka import Consumer, TopicPartition

TP0 = TopicPartition("t", 0)


@pytest.fixture
def topic10(broker, produce):
    broker.create_topic("t")
    produce("t", [b"%d" % i for i in range(10)])
    return "t"


def test_break_out_of_iteration_consumes_the_record_yielded(topic10, make_consumer, broker):
    c = make_consumer("t", group_id="g", auto_offset_reset="earliest", enable_auto_commit=False)
    for record in c:
        if record.offset == 2:
            break
    assert c.position(TP0) == 3
    c.commit()
    assert c.committed(TP0) == 3
    c.close()
    again = make_consumer("t", group_id="g", auto_offset_reset="earliest")
    assert again.poll(timeout=1)[0].offset == 3


def test_auto_commit_on_close_after_break_does_not_redeliver(topic10, broker, make_consumer):
    with Consumer(broker, "t", group_id="g", auto_offset_reset="earliest") as c:
        for record in c:
            if record.offset == 4:
                break
    c2 = make_consumer("t", group_id="g", auto_offset_reset="earliest")
    assert c2.poll(timeout=1)[0].offset == 5


@pytest.mark.parametrize("group", [None, "g"])
def test_close_inside_the_loop_ends_it_mid_batch(topic10, make_consumer, group):
    c = make_consumer("t", group_id=group, auto_offset_reset="earliest")
    got = []
    for record in c:  # one batch of 10: the rest of it is not yielded
        got.append(record.offset)
        if record.offset == 2:
            c.close()
    assert got == [0, 1, 2]
    if group:  # auto-commit on close: what was yielded, no more
        again = make_consumer("t", group_id=group, auto_offset_reset="earliest")
        assert again.poll(timeout=1)[0].offset == 3


def test_held_iterator_commit_counts_only_records_yielded(topic10, make_consumer):
    """Commit while an iterator is suspended mid-batch: the offset after the
    last record yielded; the iterator then continues with the next record."""
    c = make_consumer("t", group_id="g", auto_offset_reset="earliest", enable_auto_commit=False)
    it = iter(c)
    assert [next(it).offset for _ in range(3)] == [0, 1, 2]
    c.commit()
    assert c.committed(TP0) == 3
    assert c.position(TP0) == 3
    assert [next(it).offset for _ in range(7)] == [3, 4, 5, 6, 7, 8, 9]


def test_seek_during_iteration_takes_effect_at_once(topic10, make_consumer):
    c = make_consumer("t", auto_offset_reset="earliest")
    it = iter(c)
    assert next(it).offset == 0
    c.seek(TP0, 7)
    assert [next(it).offset for _ in range(3)] == [7, 8, 9]


def test_stop_at_end_reads_what_is_there_then_stops(broker, produce, make_consumer):
    broker.create_topic("t", 3)
    for p in range(3):
        produce("t", [b"%d" % i for i in range(4 + p)], partition=p)
    c = make_consumer("t", auto_offset_reset="earliest", stop_at_end=True)
    start = time.monotonic()
    got = [(r.partition, r.offset) for r in c]
    assert time.monotonic() - start < 1.0
    assert sorted(got) == [(p, o) for p in range(3) for o in range(4 + p)]
    assert c.at_end()
    produce("t", [b"more"], partition=1)
    assert not c.at_end()
    assert [(r.partition, r.offset) for r in c] == [(1, 5)]
    assert c.at_end()


def test_stop_at_end_on_an_empty_topic_and_with_latest(broker, produce, make_consumer):
    broker.create_topic("t")
    assert list(make_consumer("t", auto_offset_reset="earliest", stop_at_end=True)) == []
    produce("t", [b"a", b"b"])
    latest = make_consumer("t", stop_at_end=True)  # auto_offset_reset="latest": already at the end
    assert latest.at_end()
    assert list(latest) == []


def test_stop_at_end_in_a_group_commits_what_was_read(broker, produce, make_consumer):
    broker.create_topic("t", 2)
    produce("t", [b"x"] * 3, partition=0)
    produce("t", [b"y"] * 2, partition=1)
    c = make_consumer("t", group_id="g", auto_offset_reset="earliest", stop_at_end=True)
    assert len(list(c)) == 5
    c.close()
    assert broker.lag("g") == {TopicPartition("t", 0): 0, TopicPartition("t", 1): 0}


def test_at_end_after_seek_and_with_manual_assignment(topic10, make_consumer):
    c = make_consumer(auto_offset_reset="earliest")
    c.assign([TP0])
    assert not c.at_end()
    c.seek_to_end()
    assert c.at_end()
    c.seek(TP0, 9)
    assert not c.at_end()
    assert [r.offset for r in c.poll(timeout=1)] == [9]
    assert c.at_end()


def test_stop_at_end_false_keeps_waiting_until_close(topic10, make_consumer):
    c = make_consumer("t", auto_offset_reset="earliest")
    got = []

    def run():
        got.extend(r.offset for r in c)

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.3)
    assert t.is_alive(), "iteration must wait for new records without stop_at_end"
    c.close()
    t.join(5)
    assert not t.is_alive() and got == list(range(10))
