"""Topic lifecycle across processes, spare segments, fork safety, groups
description."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import minikafka
from minikafka import Broker, Consumer, Producer, TopicPartition


def run_child(code: str, timeout: float = 30) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_delete_in_another_process_fails_writers_here(tmp_path):
    path = tmp_path / "data"
    with Broker(path) as broker:
        broker.create_topic("t", partitions=2)
        p = Producer(broker, linger_ms=0)
        assert p.send("t", b"before", partition=0).result().offset == 0
        run_child(f"import minikafka; minikafka.Broker({str(path)!r}).delete_topic('t')")
        with pytest.raises(minikafka.TopicNotFoundError, match="deleted"):
            p.send("t", b"lost?", partition=0).result()
        with pytest.raises(minikafka.TopicNotFoundError):
            p.send("t", b"again")
        # A topic created again under the same name is a new, empty topic.
        broker.create_topic("t", partitions=3)
        assert p.send("t", b"new", partition=2).result().offset == 0
        assert broker.topic("t").partitions == 3
        p.close()


def test_topic_created_in_another_process_is_visible(tmp_path):
    path = tmp_path / "data"
    with Broker(path) as broker:
        consumer = Consumer(broker, "later", auto_offset_reset="earliest")
        assert consumer.assignment() == set()
        run_child(f"""
            import minikafka
            with minikafka.Broker({str(path)!r}) as b:
                b.create_topic("later", partitions=2)
                with minikafka.Producer(b) as p:
                    p.send("later", b"hello", partition=1)
        """)
        records = []
        for _ in range(40):
            records += consumer.poll(timeout=0.05)
            if records:
                break
        assert [(r.partition, r.value) for r in records] == [(1, b"hello")]
        consumer.close()


def test_spare_segment_is_prepared_and_used(tmp_path):
    with Broker(tmp_path / "data", segment_bytes=1 << 20) as broker:
        broker.create_topic("t")
        pdir = broker.path / "topics" / "t" / "0"
        with Producer(broker) as p:
            p.send_many("t", [b"x" * 1000] * 700)  # past half of the first segment
            for _ in range(100):  # the spare is written by a background thread
                if list(pdir.glob("spare-*.seg")):
                    break
                import time

                time.sleep(0.05)
            spares = list(pdir.glob("spare-*.seg"))
            assert spares and spares[0].stat().st_size == 1 << 20
            p.send_many("t", [b"y" * 1000] * 700)  # rolls into the spare
        assert not spares[0].exists()
        logs = sorted(pdir.glob("*.log"))
        assert len(logs) == 2
        c = Consumer(broker, "t", auto_offset_reset="earliest")
        values = []
        while batch := c.poll(timeout=0.05):
            values += [r.value for r in batch]
        assert values == [b"x" * 1000] * 700 + [b"y" * 1000] * 700


def test_fork_child_does_not_share_parent_locks(tmp_path):
    with Broker(tmp_path / "data") as broker:
        broker.create_topic("t")
        p = Producer(broker, linger_ms=0)
        p.send("t", b"parent").result()  # the parent now holds an open writer.lock
        part = broker.topic("t").partition(0)
        part._flock.acquire()  # parent holds the writer lock while it forks
        pid = os.fork()
        if pid == 0:  # child: the inherited lock must not count as held
            got = part._flock.acquire(blocking=False)
            os._exit(0 if not got else 1)
        _, status = os.waitpid(pid, 0)
        part._flock.release()
        assert os.WEXITSTATUS(status) == 0
        p.close()


def test_describe_group_and_list_groups(broker):
    broker.create_topic("t", partitions=4)
    a = Consumer(broker, "t", group_id="g")
    b = Consumer(broker, "t", group_id="g")
    a.poll(timeout=0.2)
    b.poll(timeout=0.2)
    a.poll(timeout=0.2)
    desc = broker.describe_group("g")
    assert desc.group_id == "g" and desc.generation >= 2
    assert len(desc.members) == 2
    owned = [tp for m in desc.members for tp in m.assignment]
    assert sorted(owned) == [TopicPartition("t", p) for p in range(4)]
    assert all(len(m.assignment) == 2 for m in desc.members)
    assert a.assignment() | b.assignment() == set(owned)
    assert not a.assignment() & b.assignment()
    assert "g" in broker.list_groups()
    a.close()
    b.poll(timeout=0.2)
    assert b.assignment() == {TopicPartition("t", p) for p in range(4)}
    b.close()
    assert broker.describe_group("g").members == ()


def test_close_stops_background_spare_writing_so_the_directory_can_be_removed(tmp_path):
    """A spare segment is zero-filled in a background thread; once close()
    returns nothing writes in the directory (rmtree right after must work)."""
    import shutil

    for attempt in range(5):
        path = tmp_path / f"d{attempt}"
        with minikafka.Broker(path, segment_bytes=1 << 20) as broker:
            broker.create_topic("t")
            with minikafka.Producer(broker) as p:
                p.send_many("t", [b"x" * 1000] * 600)  # past half a segment: a spare starts
        shutil.rmtree(path)  # raised "Directory not empty" when a spare was still being written
        assert not path.exists()


def test_a_short_write_publishes_nothing(broker, monkeypatch):
    """If the kernel writes less than the whole batch, the batch is not
    published: its future fails and the log stays as it was."""
    import os as os_mod

    broker.create_topic("t")
    with minikafka.Producer(broker, linger_ms=0) as p:
        p.send("t", b"before").result()
        real = os_mod.pwritev
        monkeypatch.setattr(os_mod, "pwritev", lambda fd, bufs, off: real(fd, [bytes(bufs[0])[:10]], off))
        fut = p.send("t", b"x" * 100)
        with pytest.raises(OSError, match="short write"):
            fut.result()
        monkeypatch.undo()
        assert broker.topic("t").end_offsets() == {0: 1}
        assert p.send("t", b"after").result().offset == 1
    c = minikafka.Consumer(broker, auto_offset_reset="earliest")
    c.assign([TopicPartition("t", 0)])
    assert [r.value for r in c.poll(timeout=1)] == [b"before", b"after"]
    c.close()
