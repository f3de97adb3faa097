"""Issue 9, defects 13-16: API robustness (callbacks, messages, closing,
logging). Each test states the promise (API.md, docs/guarantees.md)."""

from __future__ import annotations

import logging
import os
import re
import struct
import threading
import time
from pathlib import Path

import pytest
from faults_helpers import read_all

import minikafka
from minikafka import Broker, Consumer, Producer, TopicPartition

TP = TopicPartition("t", 0)


def end_offset(data_dir: Path, topic: str = "t") -> int:
    with Broker(data_dir) as other:
        return other.topic(topic).end_offsets()[0]


# -- 13: callbacks and the producer lock ----------------------------------------

def test_raising_callback_does_not_stop_later_writes(broker, data_dir: Path, caplog) -> None:
    broker.create_topic("t")
    caplog.set_level(logging.ERROR, logger="minikafka")
    p = Producer(broker, linger_ms=1)
    try:
        called = threading.Event()

        def bad(_fut: object) -> None:
            called.set()
            raise RuntimeError("user callback failed")

        p.send("t", b"one").add_done_callback(bad)
        assert called.wait(2)
        p.send("t", b"two")
        # No flush: the linger thread must still be writing.
        deadline = time.monotonic() + 2
        while end_offset(data_dir) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert end_offset(data_dir) == 2, "the record sent after a failing callback was never written"
        logged = [r for r in caplog.records if r.name == "minikafka" and r.exc_info]
        assert logged and "user callback failed" in str(logged[0].exc_info[1]), "the failure was not logged"
    finally:
        p.close()


def test_keyboard_interrupt_during_write_propagates(broker, monkeypatch) -> None:
    broker.create_topic("t")
    p = Producer(broker, linger_ms=10_000)
    p.send("t", b"x")
    raised = []

    def interrupted(*_args: object, **_kwargs: object) -> int:
        raised.append(1)
        raise KeyboardInterrupt

    # Ctrl-C arriving inside the write system call, whichever the writer uses.
    for name in ("pwritev", "pwrite", "write", "writev"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, interrupted)
    try:
        with pytest.raises(KeyboardInterrupt):
            p.flush(timeout=2)
    finally:
        monkeypatch.undo()
        assert raised, "no write system call was made: the test needs updating"
        p.close()


def test_slow_callback_does_not_stall_other_topics(broker) -> None:
    broker.create_topic("a")
    broker.create_topic("b")
    p = Producer(broker, linger_ms=1)
    started = threading.Event()
    try:
        p.send("a", b"x").add_done_callback(lambda _f: (started.set(), time.sleep(1.0)))
        assert started.wait(2)
        t0 = time.monotonic()
        p.send("b", b"y")
        took = time.monotonic() - t0
        assert took < 0.3, f"send to another topic waited {took:.2f} s for a callback"
    finally:
        p.close()


def test_threads_racing_writers_keep_every_record_once_and_in_order(broker) -> None:
    """The write protocol without the producer lock around I/O (each
    partition's closed batches appended in order by one thread at a time):
    sends, full batches, the linger thread, result() and flush() racing
    lose nothing, write nothing twice, keep each thread's order per
    partition and run every callback once."""
    broker.create_topic("t", partitions=2)
    threads_n, per_thread = 4, 2000
    calls: list[int] = []
    results: list[list[minikafka.RecordMetadata]] = [[] for _ in range(threads_n)]

    def work(i: int, p: Producer) -> None:
        futs = []
        for j in range(per_thread):
            fut = p.send("t", b"%d-%d" % (i, j), partition=j % 2)
            fut.add_done_callback(lambda _f: calls.append(1))
            futs.append(fut)
            if j % 97 == 0:
                fut.result(timeout=5)
            elif j % 331 == 0:
                p.flush(timeout=5)
        p.flush(timeout=5)
        results[i] = [f.result() for f in futs]

    with Producer(broker, linger_ms=1, batch_size=512) as p:
        threads = [threading.Thread(target=work, args=(i, p)) for i in range(threads_n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert len(calls) == threads_n * per_thread
    for partition in (0, 1):
        got = [r.value for r in read_all(broker, "t", partition)]
        assert len(got) == len(set(got)) == threads_n * per_thread // 2
        for i in range(threads_n):  # one thread's records keep their order
            mine = [v for v in got if v.startswith(b"%d-" % i)]
            assert mine == [b"%d-%d" % (i, j) for j in range(partition, per_thread, 2)]
    for i, metas in enumerate(results):
        assert [m.partition for m in metas] == [j % 2 for j in range(per_thread)], i


@pytest.mark.parametrize("call", ["flush", "close", "result"])
def test_producer_timeouts_are_checked(broker, call: str) -> None:
    broker.create_topic("t")
    with Producer(broker, linger_ms=10_000) as p:
        fut = p.send("t", b"x")
        wait = fut.result if call == "result" else getattr(p, call)
        with pytest.raises(TypeError, match="timeout"):
            wait("1")
        with pytest.raises(minikafka.InvalidArgumentError, match="timeout"):
            wait(-1)
        with pytest.raises(minikafka.InvalidArgumentError, match="timeout"):
            wait(float("nan"))
        wait(float("inf"))  # no limit
        assert fut.result(0).offset == 0


# -- 14: messages that name what was wrong -----------------------------------------

def test_consumer_given_a_list_names_topics(broker) -> None:
    broker.create_topic("t")
    with pytest.raises(TypeError, match="topic"):
        Consumer(broker, ["t"])  # type: ignore[arg-type]


def test_subscribe_none_names_topics(broker) -> None:
    broker.create_topic("t")
    with Consumer(broker) as c, pytest.raises(TypeError, match="topics"):
        c.subscribe(None)  # type: ignore[arg-type]


def test_send_many_of_bytes_names_values(broker, data_dir: Path) -> None:
    broker.create_topic("t")
    with Producer(broker) as p, pytest.raises(TypeError, match="values"):
        p.send_many("t", b"abc")
    assert end_offset(data_dir) == 0


def test_group_id_with_lone_surrogate_names_group_id(broker) -> None:
    broker.create_topic("t")
    with pytest.raises((minikafka.InvalidArgumentError, TypeError), match="group"):
        Consumer(broker, "t", group_id="bad\ud800")


def test_poll_with_a_string_timeout_is_a_type_error(broker) -> None:
    broker.create_topic("t")
    with Consumer(broker, "t") as c, pytest.raises(TypeError, match="timeout"):
        c.poll("1")  # type: ignore[arg-type]


def test_negative_timestamp_is_refused_and_writes_nothing(broker, data_dir: Path) -> None:
    broker.create_topic("t")
    with Producer(broker) as p, pytest.raises(minikafka.InvalidArgumentError, match="timestamp"):
        p.send("t", b"x", timestamp_ms=-1)
    assert end_offset(data_dir) == 0


def test_broker_refuses_a_foreign_non_empty_directory(tmp_path: Path) -> None:
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(minikafka.MiniKafkaError, match="minikafka"):
        Broker(foreign)
    assert sorted(os.listdir(foreign)) == ["notes.txt"], "the refused directory was changed"


def test_broker_on_a_file_says_it_is_a_file(tmp_path: Path) -> None:
    """Broker(<a file>) raised NotADirectoryError naming '<file>/minikafka.json'."""
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    with pytest.raises(minikafka.InvalidArgumentError, match=rf"^{re.escape(str(f))} is a file, not a data"):
        minikafka.Broker(f)
    assert f.read_text() == "mine"


def test_broker_on_an_empty_path_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Broker("") (an unset variable, say) opened the current directory, and
    made it a data directory when it was empty."""
    monkeypatch.chdir(tmp_path)
    for path in ("", "file://"):
        with pytest.raises(minikafka.InvalidArgumentError, match="path must not be empty"):
            minikafka.connect(path)
    assert os.listdir(tmp_path) == []


def test_broker_accepts_empty_and_own_directories(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    Broker(empty).close()
    Broker(empty).close()  # now marked: reopened
    Broker(tmp_path / "new").close()


# -- 15: close releases every file ------------------------------------------------

def _files_of(data_dir: Path) -> list[str]:
    root = str(data_dir.resolve())
    out = []
    with open("/proc/self/maps") as f:
        out += [line.split()[-1] for line in f if root in line]
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(root):
            out.append(target)
    return out


def test_broker_close_releases_every_file(data_dir: Path) -> None:
    b = Broker(data_dir, segment_bytes=4096)
    b.create_topic("t")
    with Producer(b) as p:
        p.send("t", b"x").result(5)
    with Consumer(b, "t", group_id="g", auto_offset_reset="earliest") as c:
        c.poll(timeout=0.5)
    b.close()
    assert _files_of(data_dir) == []


# -- 16: logging ----------------------------------------------------------------------

def test_cut_tail_is_logged_as_a_warning(data_dir: Path, caplog) -> None:
    with Broker(data_dir) as b:
        b.create_topic("t")
        with Producer(b) as p:
            p.send("t", b"x").result(5)
    log = sorted((data_dir / "topics" / "t" / "0").glob("*.log"))[-1]
    data = log.read_bytes()
    (length,) = struct.unpack_from("<I", data, 64)
    with open(log, "r+b") as f:  # a torn batch after the last one
        f.seek(64 + length)
        f.write(struct.pack("<I", 200) + os.urandom(100))
    caplog.set_level(logging.INFO, logger="minikafka")
    with Broker(data_dir) as b, Producer(b) as p:
        assert p.send("t", b"y").result(5).offset == 1
    warnings = [r for r in caplog.records if r.name.startswith("minikafka") and r.levelno >= logging.WARNING]
    assert warnings and log.name in warnings[0].getMessage()


def test_doorbell_fallback_is_logged(data_dir: Path, caplog) -> None:
    data_dir.mkdir()
    Broker(data_dir).close()
    bell = data_dir / "doorbell"
    bell.unlink()
    bell.mkdir()  # cannot be opened as a file: polling
    caplog.set_level(logging.INFO, logger="minikafka")
    Broker(data_dir).close()
    infos = [r for r in caplog.records if r.name.startswith("minikafka") and r.levelno >= logging.INFO]
    assert any("doorbell" in r.getMessage() for r in infos)


def test_a_lock_hold_leaked_by_an_interrupt_does_not_block_the_same_thread(broker) -> None:
    """Ctrl-C can land between a lock's acquire and the ``try`` that releases
    it (CPython checks for signals when a call returns), leaking one hold.
    The thread that leaked it goes on — the CLI commits, interpreter exit
    writes what producers still hold — so it must get the partition's writer
    lock and the group lock again at once, not after request_timeout."""
    broker.create_topic("t")
    part = broker.topic("t").partition(0)
    part._lock.acquire()  # the leaked hold
    store = broker.offset_store("g")
    store._thread_lock.acquire()
    t0 = time.monotonic()
    with Producer(broker) as p:
        p._backend._route("t").lanes[0].mutex.acquire()  # the producer's partition lane, too
        assert p.send("t", b"after").result(timeout=1).offset == 0
    with Consumer(broker, group_id="g") as c:
        c.commit({TopicPartition("t", 0): 1})
    assert time.monotonic() - t0 < 1.0
    assert broker.committed_offsets("g") == {TopicPartition("t", 0): 1}


def test_a_spare_thread_that_cannot_start_does_not_fail_the_append(broker, monkeypatch) -> None:
    """At interpreter exit Python 3.12+ refuses new threads; the spare
    segment is optional, so the exit-time write must still succeed."""
    broker.create_topic("t", segment_bytes=1 << 20)  # big enough to prepare spares

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't create new thread at interpreter shutdown")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    with Producer(broker, linger_ms=0) as p:
        offsets = [p.send("t", b"x" * 1000).result(timeout=5).offset for _ in range(600)]  # past half
    assert offsets == list(range(600))


def test_a_single_topic_partition_where_a_list_is_taken_says_so(broker) -> None:
    """A TopicPartition is a tuple: end_offsets(tp) took it apart and said
    "expected a TopicPartition, got str 't'" of the TopicPartition given;
    alter_group_offsets with a list of pairs failed with AttributeError."""
    broker.create_topic("t")
    tp = minikafka.TopicPartition("t", 0)
    with minikafka.Consumer(broker) as c:
        for call in (c.end_offsets, c.beginning_offsets, c.assign):
            with pytest.raises(TypeError, match=r"takes a list of TopicPartition, not a single one: pass \["):
                call(tp)
        with pytest.raises(TypeError, match="takes a list of TopicPartition, not int"):
            c.end_offsets(5)
        assert c.assignment() == set()
    with pytest.raises(TypeError, match="offsets must be a mapping of TopicPartition to int, not list"):
        broker.alter_group_offsets("g", [(tp, 1)])
    assert broker.list_groups() == []


def test_a_too_long_group_id_says_what_the_limit_is(broker) -> None:
    """The error said only "is too long": 41 'é' are refused where 240 'a' are
    taken, with no word of the 240-character encoded limit."""
    minikafka.Consumer(broker, group_id="a" * 240).close()
    with pytest.raises(minikafka.InvalidArgumentError, match=r"246 characters .* at most 240"):
        minikafka.Consumer(broker, group_id="é" * 41)
