"""Segments, rolling and retention: dense offsets across rolls, reading
across many segments, size and time retention, retention on reopen."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import minikafka
from minikafka import Consumer, Producer, TopicPartition
from minikafka.check import check

SEG = 4096
TP0 = TopicPartition("t", 0)
HOUR_MS = 3600 * 1000
ROOT = Path(__file__).resolve().parent.parent


def now_ms() -> int:
    return int(time.time() * 1000)


def segment_bases(data_dir, topic="t", partition=0):
    pdir = data_dir / "topics" / topic / str(partition)
    return sorted(int(p.name[:20]) for p in pdir.glob("*.log"))


def log_bytes(data_dir, topic="t", partition=0):
    pdir = data_dir / "topics" / topic / str(partition)
    return sum(p.stat().st_size for p in pdir.glob("*.log"))


def value_for(i: int, size: int = 200) -> bytes:
    head = b"%06d:" % i
    return head + bytes([97 + i % 26]) * (size - len(head))


def send_values(broker, values, topic="t", **kwargs):
    with Producer(broker) as p:
        futs = [p.send(topic, v, **kwargs) for v in values]
        p.flush()
        return [f.result() for f in futs]


def read_from(broker, tp, offset=None, *, max_poll_records=500):
    """All records of ``tp`` from ``offset`` (default: earliest) to the end."""
    end = broker.topic(tp.topic).end_offsets()[tp.partition]
    out = []
    with Consumer(broker, auto_offset_reset="earliest", max_poll_records=max_poll_records) as c:
        c.assign([tp])
        if offset is not None:
            c.seek(tp, offset)
        deadline = time.monotonic() + 5
        while (not out or out[-1].offset < end - 1) and time.monotonic() < deadline:
            batch = c.poll(timeout=0.2)
            if not batch and c.position(tp) >= end:
                break
            out.extend(batch)
    return out


@pytest.fixture
def small_broker(make_broker):
    """A broker whose topics roll every 4 KiB."""
    return make_broker(segment_bytes=SEG)


# -- rolling and dense offsets ----------------------------------------------------------------


def test_offsets_dense_across_segment_rolls(small_broker, data_dir):
    small_broker.create_topic("t")
    sizes = [10 + (i * 37) % 600 for i in range(400)]
    values = [value_for(i, s) for i, s in enumerate(sizes)]
    metas = send_values(small_broker, values)
    assert [m.offset for m in metas] == list(range(400))
    assert len(segment_bases(data_dir)) > 5  # many rolls happened
    records = read_from(small_broker, TP0)
    assert [r.offset for r in records] == list(range(400))
    assert [r.value for r in records] == values


def test_segment_base_offsets_match_first_record(small_broker, data_dir):
    small_broker.create_topic("t")
    send_values(small_broker, [value_for(i) for i in range(200)])
    bases = segment_bases(data_dir)
    assert bases[0] == 0
    assert len(bases) > 3
    with Consumer(small_broker, auto_offset_reset="earliest") as c:
        c.assign([TP0])
        for base in bases:  # seeking to a segment's base offset yields that record
            c.seek(TP0, base)
            (first,) = c.poll(timeout=1.0, max_records=1)
            assert first.offset == base
            assert first.value == value_for(base)
            if base > 0:  # and the record before it is the last of the previous segment
                c.seek(TP0, base - 1)
                (prev,) = c.poll(timeout=1.0, max_records=1)
                assert (prev.offset, prev.value) == (base - 1, value_for(base - 1))


@pytest.mark.parametrize("linger_ms", [0, 5])
def test_reading_across_many_small_segments(small_broker, data_dir, linger_ms):
    small_broker.create_topic("t")
    n = 600
    with Producer(small_broker, linger_ms=linger_ms) as p:
        for i in range(n):
            p.send("t", value_for(i, 100))
    assert len(segment_bases(data_dir)) >= 10
    with Consumer(small_broker, auto_offset_reset="earliest", max_poll_records=7) as c:
        c.assign([TP0])
        got = []
        deadline = time.monotonic() + 10
        while len(got) < n and time.monotonic() < deadline:
            got.extend(c.poll(timeout=0.2))
        assert [r.offset for r in got] == list(range(n))
        assert all(r.value == value_for(r.offset, 100) for r in got)
        for offset in (0, 1, 59, 60, 61, 299, 300, 598, 599):  # random access across segments
            c.seek(TP0, offset)
            (r,) = c.poll(timeout=1.0, max_records=1)
            assert (r.offset, r.value) == (offset, value_for(offset, 100))


def test_offsets_for_times_across_segments(small_broker):
    small_broker.create_topic("t")
    base = 1_600_000_000_000
    with Producer(small_broker) as p:
        for i in range(300):
            p.send("t", value_for(i), timestamp_ms=base + i * 10)
    with Consumer(small_broker) as c:
        for i in (0, 1, 57, 150, 299):
            assert c.offsets_for_times({TP0: base + i * 10}) == {TP0: i}
            assert c.offsets_for_times({TP0: base + i * 10 - 5}) == {TP0: i}
        assert c.offsets_for_times({TP0: base + 300 * 10}) == {TP0: None}


def test_data_across_segments_survives_reopen(make_broker, data_dir):
    b = make_broker(segment_bytes=SEG)
    b.create_topic("t")
    values = [value_for(i) for i in range(150)]
    send_values(b, values)
    b.close()
    b2 = make_broker(segment_bytes=SEG)
    assert b2.topic("t").end_offsets() == {0: 150}
    assert [r.value for r in read_from(b2, TP0)] == values
    assert send_values(b2, [b"next"])[0].offset == 150


def test_record_that_nearly_fills_a_segment(small_broker):
    small_broker.create_topic("t")
    big = b"z" * 3000
    metas = send_values(small_broker, [b"a", big, b"b", big, big])
    assert [m.offset for m in metas] == [0, 1, 2, 3, 4]
    assert [r.value for r in read_from(small_broker, TP0)] == [b"a", big, b"b", big, big]


def test_segment_ms_rolls_by_age(make_broker, data_dir):
    b = make_broker(segment_ms=100)
    b.create_topic("t")
    send_values(b, [b"first"])
    assert len(segment_bases(data_dir)) == 1
    time.sleep(0.25)
    send_values(b, [b"second"])
    assert segment_bases(data_dir) == [0, 1]
    assert [r.value for r in read_from(b, TP0)] == [b"first", b"second"]


# -- size retention ----------------------------------------------------------------------------


@pytest.mark.parametrize("retention_bytes", [SEG, 2 * SEG, 3 * SEG])
def test_retention_bytes_deletes_old_segments_at_roll(small_broker, data_dir, retention_bytes):
    small_broker.create_topic("t", retention_bytes=retention_bytes)
    n = 400
    values = [value_for(i) for i in range(n)]
    send_values(small_broker, values)
    topic = small_broker.topic("t")
    begin = topic.beginning_offsets()[0]
    assert topic.end_offsets() == {0: n}
    assert begin > 0
    bases = segment_bases(data_dir)
    assert bases[0] == begin  # retention deletes whole segments from the head
    assert log_bytes(data_dir) <= retention_bytes + SEG
    records = read_from(small_broker, TP0)
    assert [r.offset for r in records] == list(range(begin, n))  # still dense
    assert [r.value for r in records] == values[begin:]


def test_retention_bytes_beginning_offset_moves_forward(small_broker):
    small_broker.create_topic("t", retention_bytes=SEG)
    seen = []
    for chunk in range(5):
        send_values(small_broker, [value_for(i) for i in range(chunk * 100, chunk * 100 + 100)])
        seen.append(small_broker.topic("t").beginning_offsets()[0])
    assert seen == sorted(seen)
    assert seen[-1] > seen[0]


def test_active_segment_never_deleted(small_broker, data_dir):
    small_broker.create_topic("t", retention_bytes=0)
    n = 300
    send_values(small_broker, [value_for(i) for i in range(n)])
    topic = small_broker.topic("t")
    assert topic.end_offsets() == {0: n}
    begin = topic.beginning_offsets()[0]
    assert 0 < begin < n  # the newest records (in the active segment) are kept
    assert len(segment_bases(data_dir)) >= 1
    records = read_from(small_broker, TP0)
    assert records[-1].offset == n - 1
    assert records[-1].value == value_for(n - 1)
    assert records[0].offset == begin


def test_no_retention_keeps_everything(small_broker, data_dir):
    small_broker.create_topic("t")
    send_values(small_broker, [value_for(i) for i in range(300)])
    assert small_broker.topic("t").beginning_offsets() == {0: 0}
    assert segment_bases(data_dir)[0] == 0


def test_broker_default_retention_bytes_applies_to_new_topics(make_broker):
    b = make_broker(segment_bytes=SEG, retention_bytes=SEG)
    b.create_topic("t")
    send_values(b, [value_for(i) for i in range(300)])
    assert b.topic("t").beginning_offsets()[0] > 0


def test_retention_applies_per_partition(small_broker):
    small_broker.create_topic("t", 2, retention_bytes=SEG)
    send_values(small_broker, [value_for(i) for i in range(300)], partition=0)
    send_values(small_broker, [value_for(i) for i in range(5)], partition=1)
    topic = small_broker.topic("t")
    assert topic.beginning_offsets()[0] > 0
    assert topic.beginning_offsets()[1] == 0
    assert topic.end_offsets() == {0: 300, 1: 5}


# -- time retention -------------------------------------------------------------------------------


def test_retention_ms_deletes_segments_with_old_timestamps(small_broker, data_dir):
    small_broker.create_topic("t", retention_ms=60_000)
    old = now_ms() - 2 * HOUR_MS
    old_metas = send_values(small_broker, [value_for(i) for i in range(100)], timestamp_ms=old)
    new_metas = send_values(small_broker, [value_for(i) for i in range(100, 200)])
    first_new = new_metas[0].offset
    assert first_new == 100 and old_metas[-1].offset == 99
    begin = small_broker.topic("t").beginning_offsets()[0]
    assert begin > 0  # whole old segments are gone
    assert begin <= first_new  # no segment with a recent record was deleted
    records = read_from(small_broker, TP0)
    assert [r.offset for r in records] == list(range(begin, 200))
    assert [r.value for r in records[-100:]] == [value_for(i) for i in range(100, 200)]
    assert segment_bases(data_dir)[0] == begin


def test_retention_ms_keeps_segment_with_any_recent_record(small_broker):
    small_broker.create_topic("t", retention_ms=60_000)
    old = now_ms() - 2 * HOUR_MS
    recent = now_ms()
    # alternate old and recent timestamps: every segment's newest record is recent.
    # One record per batch: with lingering, a loaded machine could flush a lone old
    # record as a batch that alone filled a segment (which retention rightly deleted).
    with Producer(small_broker, linger_ms=0) as p:
        for i in range(200):
            p.send("t", value_for(i), timestamp_ms=old if i % 2 == 0 else recent)
    assert small_broker.topic("t").beginning_offsets() == {0: 0}


def test_retention_ms_applied_when_broker_reopens(make_broker, data_dir):
    b = make_broker(segment_bytes=SEG)
    b.create_topic("t", retention_ms=500)
    send_values(b, [value_for(i) for i in range(100)])
    assert b.topic("t").beginning_offsets() == {0: 0}  # everything is still young
    segments_before = len(segment_bases(data_dir))
    assert segments_before > 2
    b.close()
    time.sleep(0.7)
    b2 = make_broker(segment_bytes=SEG)
    begin = b2.topic("t").beginning_offsets()[0]
    assert begin > 0
    assert len(segment_bases(data_dir)) < segments_before
    assert b2.topic("t").end_offsets() == {0: 100}
    records = read_from(b2, TP0)
    assert records and records[-1].offset == 99  # the active segment is kept


def test_retention_bytes_applied_when_broker_reopens(make_broker, data_dir):
    b = make_broker(segment_bytes=SEG)
    b.create_topic("t", retention_bytes=SEG)
    send_values(b, [value_for(i) for i in range(200)])
    b.close()
    b2 = make_broker(segment_bytes=SEG)
    assert log_bytes(data_dir) <= 2 * SEG
    assert b2.topic("t").beginning_offsets()[0] == segment_bases(data_dir)[0]


# -- consumers and retention ---------------------------------------------------------------------


def test_committed_offset_deleted_by_retention_resets_to_earliest(small_broker):
    small_broker.create_topic("t", retention_bytes=SEG)
    send_values(small_broker, [value_for(i) for i in range(20)])
    with Consumer(small_broker, group_id="g", enable_auto_commit=False) as c:
        c.assign([TP0])
        c.commit({TP0: 1})
    send_values(small_broker, [value_for(i) for i in range(20, 400)])
    begin = small_broker.topic("t").beginning_offsets()[0]
    assert begin > 1
    with Consumer(small_broker, group_id="g", auto_offset_reset="earliest") as c:
        c.assign([TP0])
        records = c.poll(timeout=1.0, max_records=3)
    assert records[0].offset == begin
    assert records[0].value == value_for(begin)


def test_seek_before_beginning_with_reset_none_raises(small_broker):
    small_broker.create_topic("t", retention_bytes=SEG)
    send_values(small_broker, [value_for(i) for i in range(400)])
    assert small_broker.topic("t").beginning_offsets()[0] > 0
    with Consumer(small_broker, auto_offset_reset="none") as c:
        c.assign([TP0])
        c.seek(TP0, 0)
        with pytest.raises(minikafka.NoOffsetError):
            c.poll(timeout=0.1)


def test_consumer_beginning_offsets_after_retention(small_broker):
    small_broker.create_topic("t", retention_bytes=SEG)
    send_values(small_broker, [value_for(i) for i in range(400)])
    with Consumer(small_broker, auto_offset_reset="earliest") as c:
        c.assign([TP0])
        begin = c.beginning_offsets([TP0])[TP0]
        assert begin == small_broker.topic("t").beginning_offsets()[0] > 0
        assert c.end_offsets([TP0]) == {TP0: 400}
        c.seek_to_beginning(TP0)
        assert c.position(TP0) == begin
        assert c.poll(timeout=1.0, max_records=1)[0].offset == begin


# -- alter_topic: a new retention, the same topic ------------------------------------------------


@pytest.mark.parametrize("reset", ["earliest", "latest"])
def test_alter_topic_keeps_consumer_positions(small_broker, reset):
    """Changing retention is not recreating the topic: a consumer of this
    process (which looks the topic up again) neither rereads from the
    beginning nor jumps to the end."""
    small_broker.create_topic("t")
    send_values(small_broker, [value_for(i) for i in range(10)])
    with Consumer(small_broker, "t", auto_offset_reset=reset) as c:
        c.seek(TP0, 3)
        assert [r.offset for r in c.poll(timeout=1.0, max_records=2)] == [3, 4]
        small_broker.alter_topic("t", retention_ms=HOUR_MS)
        time.sleep(1.2)  # past the consumer's subscription refresh
        send_values(small_broker, [value_for(10)])
        got = []
        deadline = time.monotonic() + 5
        while len(got) < 6 and time.monotonic() < deadline:
            got += [r.offset for r in c.poll(timeout=0.2)]
        assert got == list(range(5, 11))


def test_alter_topic_keeps_the_records_a_producer_still_holds(small_broker):
    small_broker.create_topic("t")
    with Producer(small_broker, linger_ms=60_000) as p:
        futures = [p.send("t", value_for(i)) for i in range(5)]
        small_broker.alter_topic("t", retention_bytes=10 * SEG)
        p.flush(timeout=10)
        assert [f.result(timeout=0).offset for f in futures] == list(range(5))
    assert [r.value for r in read_from(small_broker, TP0)] == [value_for(i) for i in range(5)]


def test_alter_topic_by_another_process_reaches_this_process(small_broker, data_dir):
    """A writer here applies the retention another process set when it next
    rolls, and this process's consumers keep their positions."""
    small_broker.create_topic("t")
    send_values(small_broker, [value_for(i) for i in range(10)])
    with Producer(small_broker, linger_ms=0) as p, \
            Consumer(small_broker, "t", auto_offset_reset="earliest") as c:
        p.send("t", value_for(10)).result(timeout=5)
        assert len(c.poll(timeout=1.0, max_records=4)) == 4
        code = ("import sys, minikafka\n"
                "with minikafka.Broker(sys.argv[1], segment_bytes=4096) as b:\n"
                "    b.alter_topic('t', retention_bytes=2 * 4096)\n")
        subprocess.run([sys.executable, "-c", code, str(data_dir)], check=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
        for i in range(11, 400):
            p.send("t", value_for(i)).result(timeout=5)
        assert log_bytes(data_dir) <= 3 * SEG  # retention_bytes plus the active segment
        assert small_broker.topic("t").config.retention_bytes == 2 * SEG
        time.sleep(1.2)  # past the consumer's subscription refresh
        assert c.position(TP0) == 4  # not reset to the (new) beginning: the same topic


# -- timestamps ------------------------------------------------------------------------------------


@pytest.mark.parametrize("ts", [2**63, 2**64 + 5])
def test_a_timestamp_past_int64_is_refused_naming_it(small_broker, ts):
    """Timestamps are stored as signed 64-bit ms: beyond that send and
    send_many raise InvalidArgumentError naming timestamp_ms (a bare
    struct.error before) and write nothing."""
    small_broker.create_topic("t")
    with Producer(small_broker, linger_ms=50) as p:
        p.send("t", b"a")
        with pytest.raises(minikafka.InvalidArgumentError, match="timestamp_ms"):
            p.send("t", b"x", timestamp_ms=ts)
        with pytest.raises(minikafka.InvalidArgumentError, match="timestamp_ms"):
            p.send_many("t", [b"y"], timestamp_ms=ts)
        assert p.send("t", b"b", timestamp_ms=2**63 - 1).result(timeout=5).timestamp == 2**63 - 1
    assert [r.value for r in read_from(small_broker, TP0)] == [b"a", b"b"]


# -- retention through a stale Topic ---------------------------------------------------------------


@pytest.mark.parametrize("used", [True, False])
def test_apply_retention_of_a_topic_deleted_and_created_again_deletes_nothing(make_broker, used):
    """A Topic looked up before another broker (process) deleted and
    recreated the name must not apply its old retention to the new topic's
    segments (it deleted them, without the new writer lock when ``used``)."""
    a, b = make_broker(segment_bytes=SEG), make_broker(segment_bytes=SEG)
    stale = a.create_topic("t", retention_bytes=SEG)
    if used:
        send_values(a, [b"old"])
    b.delete_topic("t")
    b.create_topic("t")
    send_values(b, [value_for(i) for i in range(200)])
    with pytest.raises(minikafka.TopicNotFoundError, match="created again"):
        stale.apply_retention()
    assert b.topic("t").beginning_offsets() == {0: 0}
    assert [r.value for r in read_from(b, TP0)] == [value_for(i) for i in range(200)]
    a.topic("t").apply_retention()  # looked up again: the new topic, no retention
    assert b.topic("t").beginning_offsets() == {0: 0}


# -- alter_topic from several brokers at once ------------------------------------------------------

ALTER_MANY = ("import sys, minikafka\n"
              "with minikafka.Broker(sys.argv[1]) as b:\n"
              "    for i in range(300):\n"
              "        b.alter_topic('t', **{sys.argv[2]: 1000 + i})\n")


@pytest.mark.parametrize("where", ["threads", "processes"])
def test_concurrent_alter_topic_loses_no_change(make_broker, data_dir, where):
    """Each alter_topic reads, changes and replaces topic.json: two brokers
    (threads of one process, or processes) altering different settings at
    once must keep both last values. Two Brokers of one process shared the
    temporary file name (bare FileNotFoundError, lost changes); processes
    lost each other's changes."""
    make_broker().create_topic("t")
    fields = ("retention_ms", "retention_bytes")
    if where == "threads":
        errors: list[BaseException] = []

        def alter(broker, field):
            try:
                for i in range(200):
                    broker.alter_topic("t", **{field: 1000 + i})
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=alter, args=(make_broker(), f)) for f in fields]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert errors == []
        last = 1199
    else:
        children = [subprocess.Popen([sys.executable, "-c", ALTER_MANY, str(data_dir), f],
                                     env={**os.environ, "PYTHONPATH": str(ROOT)}) for f in fields]
        assert [c.wait(timeout=120) for c in children] == [0, 0]
        last = 1299
    config = make_broker().topic("t").config
    assert (config.retention_ms, config.retention_bytes) == (last, last)


def test_a_future_timestamp_keeps_its_segment_and_the_ones_after(small_broker):
    """As concepts.md says (and as in Kafka): retention by time deletes the
    oldest segments while they are old, so a segment holding a timestamp in
    the future stays until that time, and old segments after it stay too."""
    small_broker.create_topic("t", retention_ms=60_000)
    old = now_ms() - 2 * HOUR_MS
    with Producer(small_broker, linger_ms=0) as p:
        p.send("t", value_for(0), timestamp_ms=now_ms() + 24 * HOUR_MS).result(timeout=5)
        for i in range(1, 200):
            p.send("t", value_for(i), timestamp_ms=old).result(timeout=5)
    small_broker.topic("t").apply_retention()
    assert small_broker.topic("t").beginning_offsets() == {0: 0}
    assert len(read_from(small_broker, TP0)) == 200


@pytest.mark.parametrize("reset", ["latest", "none"])
def test_seek_to_beginning_then_retention_moves_the_head_reads_the_new_beginning(small_broker, reset):
    """seek_to_beginning means the first retained offset when reading starts
    (as Kafka resolves it lazily): retention deleting the offset it looked
    up before the next poll must not hand the position to auto_offset_reset
    (which jumped to the end, skipping every record, or raised NoOffsetError)."""
    small_broker.create_topic("t", retention_bytes=SEG)
    send_values(small_broker, [value_for(i) for i in range(20)])
    with Consumer(small_broker, auto_offset_reset=reset) as c:
        c.assign([TP0])
        c.seek_to_beginning(TP0)
        send_values(small_broker, [value_for(i) for i in range(20, 400)])
        begin = small_broker.topic("t").beginning_offsets()[0]
        assert begin > 0
        records = c.poll(timeout=1.0, max_records=2)
        # (how many records the retained segment holds depends on batching)
        assert [r.value for r in records] == [value_for(i) for i in range(begin, min(begin + 2, 400))]


def test_seek_to_end_then_retention_deletes_it_stays_at_the_end(small_broker):
    """The same for seek_to_end: an end offset whose segment retention
    deleted meanwhile is still the end, not auto_offset_reset's earliest."""
    small_broker.create_topic("t", retention_bytes=1)
    send_values(small_broker, [value_for(i) for i in range(20)])
    with Consumer(small_broker, auto_offset_reset="earliest") as c:
        c.assign([TP0])
        c.seek_to_end(TP0)
        send_values(small_broker, [value_for(i) for i in range(20, 400)])
        assert small_broker.topic("t").beginning_offsets()[0] > 20
        assert c.position(TP0) == 400


# -- killed while deleting -------------------------------------------------------------------------

_KILL_BETWEEN_UNLINKS = """
import os, signal, sys
import minikafka
from minikafka import retention

real = retention.unlink_quietly
def unlink_then_die(path):
    if path.endswith(".index"):  # the segment is unlinked, its index not yet
        os.kill(os.getpid(), signal.SIGKILL)
    real(path)
retention.unlink_quietly = unlink_then_die
with minikafka.Broker(sys.argv[1], segment_bytes=4096) as b:
    b.alter_topic("t", retention_bytes=2 * 4096)
"""


def test_a_writer_killed_between_deleting_a_segment_and_its_index_leaves_no_orphan(make_broker, data_dir):
    """kill -9 between the two unlinks of a retention delete left the index
    of a deleted segment for ever; `minikafka check` reported it as damage."""
    broker = make_broker(segment_bytes=SEG)
    broker.create_topic("t")
    send_values(broker, [value_for(i) for i in range(200)])
    broker.close()
    pdir = data_dir / "topics" / "t" / "0"
    first = segment_bases(data_dir)[0]
    r = subprocess.run([sys.executable, "-c", _KILL_BETWEEN_UNLINKS, str(data_dir)], timeout=60,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == -9
    assert not (pdir / f"{first:020d}.log").exists() and (pdir / f"{first:020d}.index").exists()
    broker = make_broker(segment_bytes=SEG)  # opening applies retention
    begin = broker.topic("t").beginning_offsets()[0]
    assert begin > first
    assert all(int(p.name[:20]) >= begin for p in pdir.glob("*.index"))
    assert check(str(data_dir)).findings == ()
    records = read_from(broker, TP0)
    assert [r.offset for r in records] == list(range(begin, 200))
    assert all(r.value == value_for(r.offset) for r in records)
