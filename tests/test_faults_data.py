"""Issue 9, defects 1-7: data lost or wrong. Each test states the promise
(API.md, docs/guarantees.md) and failed before its fix."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from faults_helpers import read_all, run_child, start_child, wait_for

import minikafka
from minikafka import Broker, Consumer, Producer, TopicPartition

TP = TopicPartition("t", 0)


def test_idle_writer_resynchronises_with_the_real_tail(data_dir: Path) -> None:
    a = Broker(data_dir, segment_bytes=4096, retention_bytes=8192)
    b = Broker(data_dir)
    try:
        a.create_topic("t")
        with Producer(a) as pa_first:
            assert pa_first.send("t", b"first").result(5).offset == 0
        pa = Producer(a)
        pa.send("t", b"warm").result(5)  # a's partition has looked at the tail
        with Producer(b) as pb:
            futures = [pb.send("t", b"v" * 300) for _ in range(200)]
            pb.flush()
            last = futures[-1].result(5).offset
        assert last == 201
        meta = pa.send("t", b"late").result(5)
        pa.close()
        assert meta.offset == 202, f"reused offset {meta.offset}"
        end = b.topic("t").end_offsets()[0]
        assert end == 203
        records = read_all(b, "t")
        assert [r.offset for r in records] == list(range(records[0].offset, 203))
        assert records[-1].value == b"late"
    finally:
        a.close()
        b.close()


def test_recreated_topic_is_new_to_every_group(data_dir: Path, make_broker) -> None:
    broker = make_broker()
    broker.create_topic("t")
    with Producer(broker) as p:
        for i in range(10):
            p.send("t", b"old%d" % i)
    with Consumer(broker, group_id="g", auto_offset_reset="earliest") as c:
        c.assign([TP])
        c.commit({TP: 8})
    # Kill a delete_topic after the topic directory is gone and before the
    # offsets are dropped: hold the group's lock (docs/format.md) so the
    # deleter stops there, then SIGKILL it.
    from minikafka.locking import FileLock

    group_dir = data_dir / "groups" / "g"
    lock = FileLock(str(group_dir / "lock"))
    lock.acquire()
    child = start_child("""
        import sys, minikafka
        minikafka.Broker(sys.argv[1]).delete_topic("t")
        """, str(data_dir))
    try:
        wait_for(lambda: not (data_dir / "topics" / "t").exists() or child.poll() is not None,
                 what="the topic directory to go")
        time.sleep(0.05)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        lock.release()
        lock.close()
    fresh = make_broker()
    fresh.create_topic("t")
    with Producer(fresh) as p:
        for i in range(12):  # more than the old committed offset: it would be in range
            p.send("t", b"new%d" % i)
    with Consumer(fresh, "t", group_id="g", auto_offset_reset="earliest") as c:
        got: list[minikafka.Record] = []
        deadline = time.monotonic() + 5
        while len(got) < 12 and time.monotonic() < deadline:
            got.extend(c.poll(timeout=0.1))
    assert [r.value for r in got] == [b"new%d" % i for i in range(12)]


def test_unflushed_records_are_written_at_exit(data_dir: Path, make_broker) -> None:
    make_broker().create_topic("t")
    done = run_child("""
        import sys, minikafka
        b = minikafka.Broker(sys.argv[1])
        p = minikafka.Producer(b, linger_ms=200)
        for i in range(100):
            p.send("t", b"r%d" % i)
        print("sent")
        """, str(data_dir))
    assert done.returncode == 0, done.stderr
    records = read_all(make_broker(), "t")
    assert [r.value for r in records] == [b"r%d" % i for i in range(100)]


def test_break_out_of_iteration_consumes_the_yielded_record(broker, produce) -> None:
    broker.create_topic("t")
    produce("t", [b"a", b"b", b"c", b"d", b"e"])
    with Consumer(broker, group_id="g", auto_offset_reset="earliest",
                  enable_auto_commit=False) as c:
        c.subscribe(["t"])
        for record in c:
            if record.offset == 2:
                break
        c.commit()
        assert c.position(TP) == 3
        assert c.committed(TP) == 3


def test_earliest_never_raises_while_retention_runs(make_broker, monkeypatch) -> None:
    """Retention in another process deletes the head segment exactly when
    the reset opens it, twice in a row (the race is ~1 in 3000 resets with
    a real concurrent writer, too rare for a strict test; the injection at
    the os.open boundary makes it certain)."""
    broker = make_broker(segment_bytes=4096)
    broker.create_topic("t")
    with Producer(broker) as p:
        p.send_many("t", [b"x" * 500] * 40)
    part_dir = broker.path / "topics" / "t" / "0"
    logs = sorted(n for n in os.listdir(part_dir) if n.endswith(".log"))
    assert len(logs) >= 4
    real_open = os.open
    deleted: list[str] = []

    def open_racing_retention(path, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
        name = os.path.basename(str(path))
        if (len(deleted) < 2 and name.endswith(".log") and os.path.dirname(str(path)) == str(part_dir)
                and name == min(n for n in os.listdir(part_dir) if n.endswith(".log"))):
            # What retention does: unlink the oldest closed segment and its index.
            for victim in (name, name[:-4] + ".index"):
                try:
                    os.unlink(os.path.join(part_dir, victim))
                except FileNotFoundError:
                    pass
            deleted.append(name)
        return real_open(path, flags, *args, **kwargs)

    c = Consumer(broker, auto_offset_reset="earliest")
    try:
        c.assign([TP])
        monkeypatch.setattr(os, "open", open_racing_retention)
        got = c.poll(timeout=0.5)
        monkeypatch.setattr(os, "open", real_open)
        assert len(deleted) == 2, "the injected retention never ran: the test needs updating"
        first = int(min(n for n in os.listdir(part_dir) if n.endswith(".log"))[:20])
        assert got and got[0].offset == first
    finally:
        monkeypatch.setattr(os, "open", real_open)
        c.close()


def test_consumer_follows_or_fails_when_topic_is_recreated(broker, make_broker, produce) -> None:
    broker.create_topic("t")
    produce("t", [b"a", b"b"])
    with Consumer(broker, "t", auto_offset_reset="earliest") as c:
        got = []
        deadline = time.monotonic() + 5
        while len(got) < 2 and time.monotonic() < deadline:
            got.extend(c.poll(timeout=0.1))
        assert len(got) == 2
        other = make_broker()
        other.delete_topic("t")
        other.create_topic("t")
        produce("t", [b"n0", b"n1", b"n2"], broker=other)
        new: list[minikafka.Record] = []
        deadline = time.monotonic() + 3
        try:
            while len(new) < 3 and time.monotonic() < deadline:
                new.extend(c.poll(timeout=0.1))
        except minikafka.MiniKafkaError as e:
            assert "t" in str(e)  # a clear error naming the topic is also allowed
            return
        assert [r.value for r in new] == [b"n0", b"n1", b"n2"]
