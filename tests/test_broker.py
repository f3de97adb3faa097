"""Broker: the data directory, options, layout, reopening, connect()."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import attrs
import pytest

import minikafka
from minikafka import Broker, BrokerOptions, Consumer, Producer, TopicPartition

MiB = 1 << 20


def log_files(data_dir, topic, partition=0):
    pdir = data_dir / "topics" / topic / str(partition)
    return sorted(p.name for p in pdir.glob("*.log"))


def test_broker_creates_missing_directory(tmp_path):
    path = tmp_path / "deep" / "nested" / "data"
    assert not path.exists()
    b = Broker(path)
    try:
        assert path.is_dir()
        assert b.list_topics() == []
    finally:
        b.close()


@pytest.mark.parametrize("as_str", [True, False], ids=["str-path", "pathlib-path"])
def test_broker_accepts_str_and_pathlike(tmp_path, as_str):
    path = tmp_path / "d"
    b = Broker(str(path) if as_str else path)
    try:
        b.create_topic("t")
        assert b.list_topics() == ["t"]
    finally:
        b.close()


def test_broker_context_manager_closes(data_dir):
    with Broker(data_dir) as b:
        assert isinstance(b, Broker)
        b.create_topic("t")
    with pytest.raises(minikafka.ClosedError):
        b.list_topics()


@pytest.mark.parametrize(
    "call",
    [
        lambda b: b.list_topics(),
        lambda b: b.create_topic("x"),
        lambda b: b.topic("t"),
        lambda b: b.delete_topic("t"),
        lambda b: b.lag("g"),
    ],
    ids=["list_topics", "create_topic", "topic", "delete_topic", "lag"],
)
def test_closed_broker_raises_closed_error(make_broker, call):
    b = make_broker()
    b.create_topic("t")
    b.close()
    with pytest.raises(minikafka.ClosedError):
        call(b)


def test_closed_broker_rejects_new_producer_sends(make_broker):
    b = make_broker()
    b.create_topic("t")
    p = Producer(b)
    b.close()
    with pytest.raises(minikafka.ClosedError):
        p.send("t", b"x").result(timeout=5)


def test_data_survives_reopen(make_broker):
    b1 = make_broker()
    b1.create_topic("t", 2)
    with Producer(b1) as p:
        for i in range(20):
            p.send("t", b"%d" % i, partition=i % 2)
    b1.close()

    b2 = make_broker()
    assert b2.topic("t").end_offsets() == {0: 10, 1: 10}
    with Consumer(b2, auto_offset_reset="earliest") as c:
        c.assign([TopicPartition("t", 1)])
        values = [r.value for r in c.poll(timeout=1.0)]
    assert values == [b"%d" % i for i in range(1, 20, 2)]
    with Producer(b2) as p:  # appending continues the offsets
        assert p.send("t", b"x", partition=0).result(timeout=5).offset == 10


def test_a_path_with_a_nul_byte_or_of_bytes_is_refused_naming_the_path(tmp_path):
    # A NUL in the path (Broker or a file:// URL's %00) was a bare ValueError
    # "embedded null byte"; a path-like giving bytes failed deep inside.
    import pathlib

    class BytesPath:
        def __fspath__(self) -> bytes:
            return bytes(tmp_path / "b")

    with pytest.raises(minikafka.InvalidArgumentError, match=r"path .*NUL"):
        minikafka.Broker(str(tmp_path / "a\x00b"))
    with pytest.raises(minikafka.InvalidArgumentError, match=r"path .*NUL"):
        minikafka.connect(f"file://{tmp_path}/a%00b")
    with pytest.raises(TypeError, match="path must be a str or path-like"):
        minikafka.Broker(BytesPath())  # type: ignore[arg-type]
    assert sorted(pathlib.Path(tmp_path).iterdir()) == []


def test_two_brokers_same_path_share_records(make_broker):
    a = make_broker()
    b = make_broker()
    a.create_topic("t")
    with Producer(a) as pa, Producer(b) as pb:
        assert pa.send("t", b"a").result(timeout=5).offset == 0
        assert pb.send("t", b"b").result(timeout=5).offset == 1
        assert pa.send("t", b"c").result(timeout=5).offset == 2
    with Consumer(b, auto_offset_reset="earliest") as c:
        c.assign([TopicPartition("t", 0)])
        assert [r.value for r in c.poll(timeout=1.0)] == [b"a", b"b", b"c"]


# -- options ---------------------------------------------------------------------------------


def test_broker_options_defaults():
    o = BrokerOptions()
    assert o.segment_bytes == 16 * MiB
    assert o.index_interval_bytes == 4096
    assert o.retention_ms is None
    assert o.retention_bytes is None
    assert o.fsync is False
    assert o.auto_create_topics is False
    assert hasattr(o, "segment_ms")


def test_broker_options_is_frozen():
    o = BrokerOptions(segment_bytes=MiB)
    assert attrs.has(BrokerOptions)
    with pytest.raises(AttributeError):  # attrs.exceptions.FrozenInstanceError
        o.segment_bytes = 2 * MiB
    assert o.segment_bytes == MiB


def test_broker_options_equality():
    assert BrokerOptions(segment_bytes=MiB, fsync=True) == BrokerOptions(segment_bytes=MiB, fsync=True)
    assert BrokerOptions(fsync=True) != BrokerOptions(fsync=False)


@pytest.mark.parametrize(
    "options",
    [
        {"retention_ms": -1},
        {"retention_bytes": -5},
        {"segment_bytes": 0},
        {"segment_bytes": -1},
        {"index_interval_bytes": 0},
    ],
    ids=["retention_ms", "retention_bytes", "segment_bytes-zero", "segment_bytes-negative", "index_interval"],
)
def test_broker_rejects_bad_option_values(tmp_path, options):
    with pytest.raises(minikafka.InvalidArgumentError) as exc_info:
        Broker(tmp_path / "d", **options)
    assert isinstance(exc_info.value, ValueError)
    assert next(iter(options)) in str(exc_info.value)


def test_broker_rejects_unknown_option(tmp_path):
    with pytest.raises(TypeError):
        Broker(tmp_path / "d", no_such_option=1)


def test_broker_rejects_bad_option_type(tmp_path):
    with pytest.raises(TypeError):
        Broker(tmp_path / "d", segment_bytes="big")


def test_segment_bytes_option_controls_rolling(make_broker, data_dir):
    b = make_broker(segment_bytes=4096)
    b.create_topic("t")
    with Producer(b) as p:
        for _ in range(100):
            p.send("t", b"x" * 200)
    assert len(log_files(data_dir, "t")) > 1


def test_segment_bytes_per_topic_override(broker, data_dir):
    broker.create_topic("small", segment_bytes=4096)
    broker.create_topic("big")
    with Producer(broker) as p:
        for _ in range(100):
            p.send("small", b"x" * 200)
            p.send("big", b"x" * 200)
    assert len(log_files(data_dir, "small")) > 1
    assert len(log_files(data_dir, "big")) == 1


def test_segment_file_names_are_20_digit_base_offsets(make_broker, data_dir):
    b = make_broker(segment_bytes=4096)
    b.create_topic("t")
    with Producer(b) as p:
        metas = [p.send("t", b"%05d" % i + b"x" * 195) for i in range(100)]
        p.flush()
    names = log_files(data_dir, "t")
    assert len(names) > 1
    assert all(re.fullmatch(r"\d{20}\.log", n) for n in names)
    bases = [int(n[:20]) for n in names]
    assert bases[0] == 0
    assert bases == sorted(set(bases))
    assert bases[-1] < len(metas)
    pdir = data_dir / "topics" / "t" / "0"
    for n in names:  # every segment has its index
        assert (pdir / (n[:20] + ".index")).is_file()


def test_index_interval_bytes_small_still_reads_every_offset(make_broker):
    b = make_broker(index_interval_bytes=64, segment_bytes=8192)
    b.create_topic("t")
    with Producer(b, linger_ms=0) as p:
        for i in range(300):
            p.send("t", b"%d" % i + b"." * (i % 50))
    tp = TopicPartition("t", 0)
    with Consumer(b, auto_offset_reset="earliest") as c:
        c.assign([tp])
        for offset in (0, 1, 63, 64, 150, 299, 17, 200):
            c.seek(tp, offset)
            (r,) = c.poll(timeout=1.0, max_records=1)
            assert r.offset == offset
            assert r.value == b"%d" % offset + b"." * (offset % 50)


def test_fsync_option_round_trip(make_broker):
    b = make_broker(fsync=True)
    b.create_topic("t")
    with Producer(b) as p:
        meta = p.send("t", b"durable").result(timeout=5)
    assert meta.offset == 0
    with Consumer(b, group_id="g", auto_offset_reset="earliest") as c:
        c.assign([TopicPartition("t", 0)])
        assert [r.value for r in c.poll(timeout=1.0)] == [b"durable"]
        c.commit()
        assert c.committed(TopicPartition("t", 0)) == 1


def test_auto_create_off_by_default(broker):
    with Producer(broker) as p, pytest.raises(minikafka.TopicNotFoundError):
        p.send("unknown", b"x").result(timeout=5)
    assert broker.list_topics() == []


def test_auto_create_topics_on_send(make_broker, data_dir):
    b = make_broker(auto_create_topics=True)
    with Producer(b) as p:
        p.send("auto", b"x", key=b"k").result(timeout=5)
        p.send("auto", b"y").result(timeout=5)
    assert b.list_topics() == ["auto"]
    assert b.topic("auto").partitions == 1
    assert b.topic("auto").end_offsets() == {0: 2}
    assert (data_dir / "topics" / "auto" / "topic.json").is_file()


def test_auto_create_still_validates_names(make_broker):
    b = make_broker(auto_create_topics=True)
    with Producer(b) as p, pytest.raises(minikafka.InvalidTopicError):
        p.send("../evil", b"x")
    assert b.list_topics() == []


# -- layout -----------------------------------------------------------------------------------


def test_layout_topics_and_groups_directories(broker, data_dir):
    broker.create_topic("orders", 3)
    tdir = data_dir / "topics" / "orders"
    assert (tdir / "topic.json").is_file()
    assert sorted(p.name for p in tdir.iterdir() if p.is_dir()) == ["0", "1", "2"]
    with Producer(broker) as p:
        p.send("orders", b"x", partition=2)
    assert (tdir / "2" / ("0" * 20 + ".log")).is_file()
    assert (tdir / "2" / ("0" * 20 + ".index")).is_file()
    with Consumer(broker, group_id="billing", enable_auto_commit=False) as c:
        c.assign([TopicPartition("orders", 2)])
        c.commit({TopicPartition("orders", 2): 1})
    groups = data_dir / "groups"
    assert groups.is_dir()
    assert any(p.is_file() for p in groups.rglob("*"))


def test_group_offsets_live_under_groups(broker, data_dir):
    broker.create_topic("t")
    before = {p for p in data_dir.rglob("*") if p.is_file()}
    with Consumer(broker, group_id="grp", enable_auto_commit=False) as c:
        c.assign([TopicPartition("t", 0)])
        c.commit({TopicPartition("t", 0): 0})
    new_files = {p for p in data_dir.rglob("*") if p.is_file()} - before
    assert new_files
    assert all((data_dir / "groups") in p.parents for p in new_files)


# -- connect --------------------------------------------------------------------------------------


def test_connect_path_returns_broker(data_dir):
    b = minikafka.connect(str(data_dir))
    try:
        assert isinstance(b, Broker)
        b.create_topic("t")
        assert b.list_topics() == ["t"]
    finally:
        b.close()


def test_connect_pathlike(data_dir):
    b = minikafka.connect(data_dir)
    try:
        assert isinstance(b, Broker)
    finally:
        b.close()


def test_connect_file_url_sees_same_data(broker, data_dir):
    broker.create_topic("shared")
    url = "file://" + str(data_dir.absolute())
    assert url.startswith("file:///")
    b = minikafka.connect(url)
    try:
        assert isinstance(b, Broker)
        assert b.list_topics() == ["shared"]
    finally:
        b.close()


def test_connect_broker_works_with_producer_and_consumer(data_dir):
    with minikafka.connect("file://" + str(data_dir.absolute())) as b:
        b.create_topic("t")
        with Producer(b) as p:
            p.send("t", b"via-connect")
        with Consumer(b, "t", auto_offset_reset="earliest") as c:
            assert [r.value for r in c.poll(timeout=1.0)] == [b"via-connect"]
        assert b.lag("none") == {}



def _open_at(start: Any, path: Path, errors: Any) -> None:
    start.wait()
    try:
        Broker(path).close()
    except Exception as e:
        errors.put(repr(e))


@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_brokers_opening_one_new_directory_at_once_all_open(tmp_path, kind):
    # Processes (or threads) creating one data directory together: the one
    # that looked second took the first's fresh marker for a foreign file
    # ("is not empty (minikafka.json): refusing to take it over"), and
    # threads of one process shared one temporary marker name.
    import multiprocessing
    import queue
    import threading

    ctx = multiprocessing.get_context("fork")
    for round_ in range(20 if kind == "threads" else 8):
        path = tmp_path / f"d{round_}"
        if kind == "threads":
            start: Any = threading.Barrier(4)
            errors: Any = queue.Queue()
            workers: list[Any] = [threading.Thread(target=_open_at, args=(start, path, errors))
                                  for _ in range(4)]
        else:
            start, errors = ctx.Barrier(4), ctx.Queue()
            workers = [ctx.Process(target=_open_at, args=(start, path, errors)) for _ in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(60)
        assert errors.empty(), f"round {round_}: {errors.get()}"
        assert sorted(p.name for p in path.iterdir()) == [
            "doorbell", "groups", "minikafka.json", "tmp", "topics"]


def test_a_topic_of_more_partitions_than_the_limit_is_refused_at_once(broker, data_dir):
    # partitions=10**11 (a mistyped -p) created directories until the disk was full.
    started = time.monotonic()
    with pytest.raises(minikafka.InvalidArgumentError, match="partitions must be between 1 and 10000"):
        broker.create_topic("huge", partitions=10**11)
    assert time.monotonic() - started < 1.0
    assert broker.list_topics() == [] and os.listdir(data_dir / "tmp") == []
    broker.create_topic("ok", partitions=3)
