"""minikafka.mirror and ``minikafka mirror``: copies keep partition, key,
value, headers and timestamp; committed progress means no second copy.

Directory to directory, and directory -> Kafka (Tansu) -> directory.
"""

from __future__ import annotations

import io
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka_broker import xfail_on_tansu

import minikafka
from minikafka.kafka.mirror import default_group
from minikafka.kafka.mirror_cli import main as mirror_main


def group_for(dest: Path, topic: str) -> str:
    """The default group of a mirror of ``topic`` to the directory ``dest``."""
    return default_group(topic, f"dir:{os.path.realpath(dest)}")


def read_all(broker: minikafka.Broker, topic: str) -> list[tuple]:
    """Every record of ``topic`` as comparable tuples, in partition then offset order."""
    t = broker.topic(topic)
    tps = [minikafka.TopicPartition(topic, p) for p in range(t.partitions)]
    out: list[minikafka.Record] = []
    with minikafka.Consumer(broker, auto_offset_reset="earliest", enable_auto_commit=False) as c:
        c.assign(tps)
        ends = c.end_offsets(tps)
        deadline = time.monotonic() + 10
        while any(c.position(tp) < ends[tp] for tp in tps) and time.monotonic() < deadline:
            out.extend(c.poll(timeout=0.2))
    out.sort(key=lambda r: (r.partition, r.offset))
    return [(r.partition, r.offset, r.key, r.value, r.headers, r.timestamp) for r in out]


def fill(broker: minikafka.Broker, topic: str, start: int, count: int) -> None:
    with minikafka.Producer(broker) as p:
        for i in range(start, start + count):
            # explicit partitions that differ from the key hash must survive the copy
            p.send(topic, b"value-%d" % i, key=None if i % 5 == 0 else b"key-%d" % (i % 7),
                   partition=i % 3, headers=[("n", b"%d" % i), ("n", b"again"), ("empty", b"")],
                   timestamp_ms=1_600_000_000_000 + i)


@pytest.fixture
def source(tmp_path: Path) -> Iterator[minikafka.Broker]:
    broker = minikafka.Broker(tmp_path / "src", segment_bytes=1 << 20)
    broker.create_topic("events", partitions=3)
    yield broker
    broker.close()


def test_copy_keeps_every_record_and_a_second_run_copies_nothing(source: minikafka.Broker,
                                                                 tmp_path: Path) -> None:
    fill(source, "events", 0, 250)
    dest_path = tmp_path / "dst"
    first = minikafka.mirror(source, dest_path, "events", chunk=40, progress=False)
    assert first.records == 250
    assert sum(first.partitions.values()) == 250
    with minikafka.Broker(dest_path) as dest:
        assert dest.topic("events").partitions == 3
        assert read_all(dest, "events") == read_all(source, "events")
    again = minikafka.mirror(source, dest_path, "events", progress=False)
    assert again.records == 0
    fill(source, "events", 250, 20)
    more = minikafka.mirror(source, dest_path, "events", progress=False)
    assert more.records == 20
    with minikafka.Broker(dest_path) as dest:
        assert read_all(dest, "events") == read_all(source, "events")
    assert source.committed_offsets(first.group_id) == {
        minikafka.TopicPartition("events", p): o for p, o in source.topic("events").end_offsets().items()}


def test_each_group_keeps_its_own_progress(source: minikafka.Broker, tmp_path: Path) -> None:
    fill(source, "events", 0, 30)
    a = minikafka.mirror(source, tmp_path / "a", "events", group_id="to-a", progress=False)
    b = minikafka.mirror(source, tmp_path / "b", "events", group_id="to-b", progress=False)
    assert (a.records, b.records) == (30, 30)
    assert minikafka.mirror(source, tmp_path / "a", "events", group_id="to-a", progress=False).records == 0


def test_destination_with_fewer_partitions_is_refused(source: minikafka.Broker, tmp_path: Path) -> None:
    fill(source, "events", 0, 3)
    with minikafka.Broker(tmp_path / "small") as dest:
        dest.create_topic("events", partitions=2)
        with pytest.raises(minikafka.InvalidArgumentError, match="fewer"):
            minikafka.mirror(source, dest, "events", progress=False)
        assert dest.topic("events").end_offsets() == {0: 0, 1: 0}


def test_progress_line(source: minikafka.Broker, tmp_path: Path) -> None:
    fill(source, "events", 0, 12)
    out = io.StringIO()
    minikafka.mirror(source, tmp_path / "d", "events", progress=out)
    assert out.getvalue().endswith("\rmirror events: 12/12 records (100%)\n")


def test_missing_source_topic(source: minikafka.Broker, tmp_path: Path) -> None:
    with pytest.raises(minikafka.TopicNotFoundError):
        minikafka.mirror(source, tmp_path / "d", "nope", progress=False)


def test_cli(source: minikafka.Broker, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fill(source, "events", 0, 9)
    dest = tmp_path / "cli-dest"
    assert mirror_main([str(source.path), f"file://{dest}", "--topic", "events", "-g", "cli", "-q"]) == 0
    assert "copied 9 records of events" in capsys.readouterr().out
    assert mirror_main([str(source.path), str(dest), "-t", "events", "-g", "cli", "-q"]) == 0
    assert "copied 0 records" in capsys.readouterr().out
    assert mirror_main([str(source.path), str(dest), "-t", "absent", "-q"]) == 1
    assert "absent" in capsys.readouterr().err
    assert mirror_main([str(source.path)]) == 2


def test_round_trip_through_kafka(source: minikafka.Broker, tmp_path: Path, kafka_url: str) -> None:
    """directory -> Kafka -> directory: identical records; second runs copy nothing."""
    import uuid

    topic = f"rt-{uuid.uuid4().hex[:10]}"
    source.create_topic(topic, partitions=3)
    fill(source, topic, 0, 120)
    there = minikafka.mirror(source, kafka_url, topic, progress=False)
    assert there.records == 120
    back_path = tmp_path / "back"
    back = minikafka.mirror(kafka_url, back_path, topic, progress=False)
    assert back.records == 120
    with minikafka.Broker(back_path) as dest:
        assert read_all(dest, topic) == read_all(source, topic)
    assert minikafka.mirror(source, kafka_url, topic, progress=False).records == 0
    assert minikafka.mirror(kafka_url, back_path, topic, progress=False).records == 0


def test_a_record_the_destination_refuses_is_not_committed(tmp_path: Path) -> None:
    """A send that raises mid-batch: the records polled after it were
    committed as copied (lost); now progress stops at the refused one."""
    with minikafka.Broker(tmp_path / "src") as src, \
            minikafka.Broker(tmp_path / "small", segment_bytes=1 << 16) as small:
        src.create_topic("t", partitions=1)
        with minikafka.Producer(src) as p:
            for i in range(10):
                p.send("t", b"before-%d" % i, partition=0)
            p.send("t", b"x" * 200_000, partition=0)  # more than a 64 KiB segment holds
            for i in range(10):
                p.send("t", b"after-%d" % i, partition=0)
        with pytest.raises(minikafka.RecordTooLargeError):
            minikafka.mirror(src, small, "t", group_id="g", progress=False)
        assert small.topic("t").end_offsets() == {0: 10}
        assert src.committed_offsets("g") == {minikafka.TopicPartition("t", 0): 10}
        # the same group, a destination that can hold it: the rest arrives
        again = minikafka.mirror(src, tmp_path / "roomy", "t", group_id="g", progress=False)
        assert again.records == 11


def test_interrupt_inside_a_batch_commits_only_what_was_sent(source: minikafka.Broker, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from minikafka.local_producer import LocalProducer

    fill(source, "events", 0, 90)
    real_send = LocalProducer.send
    calls = [0]

    def send(self: LocalProducer, *args: object, **kwargs: object) -> object:
        calls[0] += 1
        if calls[0] == 25:
            raise KeyboardInterrupt
        return real_send(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(LocalProducer, "send", send)
    dest_path = tmp_path / "dst"
    with pytest.raises(KeyboardInterrupt):
        minikafka.mirror(source, dest_path, "events", progress=False)
    monkeypatch.setattr(LocalProducer, "send", real_send)
    with minikafka.Broker(dest_path) as dest:
        assert sum(dest.topic("events").end_offsets().values()) == 24
    assert sum(source.committed_offsets(group_for(dest_path, "events")).values()) == 24
    assert minikafka.mirror(source, dest_path, "events", progress=False).records == 66
    with minikafka.Broker(dest_path) as dest:
        assert read_all(dest, "events") == read_all(source, "events")


def test_no_more_than_chunk_records_between_commits(source: minikafka.Broker, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """What a crash copies twice is bounded by ``chunk`` (docs/scaling.md)."""
    from minikafka.local_consumer import LocalConsumer

    fill(source, "events", 0, 300)
    real_fetch = LocalConsumer.fetch
    first = [True]

    def fetch(self: LocalConsumer, max_records: int, timeout: float | None) -> list[minikafka.Record]:
        if first[0]:  # a poll that returns less than it may (as when the source is written meanwhile)
            first[0] = False
            return real_fetch(self, 7, timeout)
        return real_fetch(self, max_records, timeout)

    monkeypatch.setattr(LocalConsumer, "fetch", fetch)
    commits: list[int] = []
    real_commit = minikafka.Consumer.commit

    def commit(self: minikafka.Consumer, offsets: object = None) -> None:
        real_commit(self, offsets)  # type: ignore[arg-type]
        commits.append(sum(source.committed_offsets(group_for(tmp_path / "d", "events")).values()))

    monkeypatch.setattr(minikafka.Consumer, "commit", commit)
    minikafka.mirror(source, tmp_path / "d", "events", chunk=40, poll_timeout=0.05, progress=False)
    steps = [b - a for a, b in zip([0, *commits], commits, strict=False)]
    assert commits[-1] == 300 and max(steps) <= 40, steps


def test_the_topic_itself_is_refused_as_destination(source: minikafka.Broker, tmp_path: Path) -> None:
    fill(source, "events", 0, 6)
    for dest in (source, source.path, f"file://{source.path}"):
        with pytest.raises(minikafka.InvalidArgumentError, match="onto itself"):
            minikafka.mirror(source, dest, "events", progress=False)
    assert sum(source.topic("events").end_offsets().values()) == 6
    copy = minikafka.mirror(source, source.path, "events", destination_topic="copy", progress=False)
    assert copy.records == 6 and read_all(source, "copy") == read_all(source, "events")


def test_a_group_with_live_members_is_refused(source: minikafka.Broker, tmp_path: Path) -> None:
    fill(source, "events", 0, 6)
    with minikafka.Consumer(source, "events", group_id="app", auto_offset_reset="earliest") as app:
        assert app.poll(timeout=5, max_records=2)
        app.commit()
        before = source.committed_offsets("app")
        with pytest.raises(minikafka.InvalidArgumentError, match="live member"):
            minikafka.mirror(source, tmp_path / "d", "events", group_id="app", progress=False)
        assert source.committed_offsets("app") == before
    assert not (tmp_path / "d").exists() or not (tmp_path / "d" / "topics" / "events").exists()


def test_a_missing_source_directory_is_not_created(tmp_path: Path) -> None:
    for source in (tmp_path / "typo", f"file://{tmp_path / 'typo'}", str(tmp_path / "typo")):
        with pytest.raises(minikafka.InvalidArgumentError, match="does not exist"):
            minikafka.mirror(source, tmp_path / "d", "events", progress=False)
    assert not (tmp_path / "typo").exists() and not (tmp_path / "d").exists()
    assert mirror_main([str(tmp_path / "typo"), str(tmp_path / "d"), "-t", "events", "-q"]) == 1
    assert not (tmp_path / "typo").exists()


def test_progress_default_without_stderr(source: minikafka.Broker, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """pythonw and daemons have no sys.stderr: no progress line, no crash."""
    fill(source, "events", 0, 3)
    monkeypatch.setattr("sys.stderr", None)
    assert minikafka.mirror(source, tmp_path / "d", "events").records == 3


def test_records_kafka_does_not_acknowledge_are_not_committed(source: minikafka.Broker, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """flush() returns once every record is acknowledged *or failed*: the
    failed ones were committed as copied. A cluster that stops answering
    after the topic lookup: nothing is delivered, nothing committed."""
    from kafka_broker import _free_port

    from minikafka.kafka.admin import KafkaBroker, KafkaTopic

    fill(source, "events", 0, 30)
    monkeypatch.setattr(KafkaBroker, "topic", lambda self, name: KafkaTopic(self, name, 3))
    monkeypatch.setattr(KafkaBroker, "identity", lambda self: ("nowhere", frozenset()))
    with minikafka.connect(f"kafka://127.0.0.1:{_free_port()}", request_timeout=10,
                           producer_config={"message.timeout.ms": 1000}) as dead, \
            pytest.raises(minikafka.TimeoutError):
        minikafka.mirror(source, dead, "events", progress=False)
    assert sum(source.committed_offsets(default_group("events", "kafka:nowhere")).values()) == 0


def _transactional(bootstrap: str, topic: str, values: list[bytes], commit: bool | None) -> object:
    """Produce ``values`` to partition 0 in one transaction, committed,
    aborted or (None) left open; returns the producer."""
    from confluent_kafka import Producer

    # its log goes to logging: the open transaction's producer lives until
    # collected, past the broker's stop at the end of the run
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"tx-{topic}",
                  "logger": logging.getLogger("tests.transactional")})
    p.init_transactions(10)
    p.begin_transaction()
    for v in values:
        p.produce(topic, v, partition=0)
    if commit is None:
        p.flush(10)
    elif commit:
        p.commit_transaction(10)
    else:
        p.abort_transaction(10)
    return p


def test_a_transactional_kafka_topic_is_mirrored_to_its_end(kafka_bootstrap: str, kafka_url: str,
                                                            tmp_path: Path) -> None:
    """The commit marker after a transaction's records is an offset with no
    record: positions stopped below the end offset and the mirror (and a
    stop_at_end consumer) waited for ever."""
    import uuid

    topic = f"tx-{uuid.uuid4().hex[:10]}"
    with minikafka.connect(kafka_url) as k:
        k.create_topic(topic, partitions=1)
        _transactional(kafka_bootstrap, topic, [b"v%d" % i for i in range(5)], commit=True)
        assert k.topic(topic).end_offsets() == {0: 6}
        with minikafka.Consumer(k, topic, group_id=f"g-{topic}", auto_offset_reset="earliest",
                                stop_at_end=True, session_timeout=1.5, heartbeat_interval=0.3) as c:
            assert [r.value for r in c] == [b"v%d" % i for i in range(5)]
    back = tmp_path / "back"
    first = minikafka.mirror(kafka_url, back, topic, progress=False)
    assert first.records == 5
    with minikafka.connect(kafka_url) as k:
        assert k.committed_offsets(first.group_id) == {minikafka.TopicPartition(topic, 0): 6}
    assert minikafka.mirror(kafka_url, back, topic, progress=False).records == 0


def test_a_source_that_stops_sending_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A source below its end offsets that sends nothing more (a cluster
    gone away: librdkafka's poll just returns nothing): the mirror waited
    for ever; now TimeoutError after the source's request_timeout."""
    import threading

    from minikafka.local_consumer import LocalConsumer

    with minikafka.Broker(tmp_path / "src", request_timeout=1.0) as src:
        src.create_topic("t", partitions=1)
        real_fetch = LocalConsumer.fetch

        def fetch(self: LocalConsumer, max_records: int, timeout: float | None) -> list[minikafka.Record]:
            if fetched:  # then silence
                time.sleep(timeout or 0)
                return []
            fetched.append(1)
            return real_fetch(self, 1, timeout)

        fetched: list[int] = []

        monkeypatch.setattr(LocalConsumer, "fetch", fetch)
        with minikafka.Producer(src) as p:
            p.send_many("t", [b"first", b"second", b"third"], partition=0)
        outcome: list[BaseException | None] = []

        def run() -> None:
            try:
                minikafka.mirror(src, tmp_path / "d", "t", progress=False, poll_timeout=0.1)
                outcome.append(None)
            except BaseException as e:
                outcome.append(e)

        worker = threading.Thread(target=run, daemon=True)
        started = time.monotonic()
        worker.start()
        worker.join(15)
        assert not worker.is_alive(), "mirror still waiting after 15 s"
        assert isinstance(outcome[0], minikafka.TimeoutError), outcome
        assert "no record from the source" in str(outcome[0])
        assert time.monotonic() - started < 10
        assert src.committed_offsets(group_for(tmp_path / "d", "t")) == {minikafka.TopicPartition("t", 0): 1}


@xfail_on_tansu("the high watermark leaves out an open transaction's records")
def test_a_source_that_sends_nothing_times_out(kafka_bootstrap: str, kafka_url: str, tmp_path: Path) -> None:
    """An open transaction: its records are below the high watermark but
    a read_committed consumer gets none: the mirror waited for ever; now
    TimeoutError after the source's request_timeout."""
    import uuid

    topic = f"open-{uuid.uuid4().hex[:10]}"
    with minikafka.connect(kafka_url, request_timeout=2) as k:
        k.create_topic(topic, partitions=1)
        p: Any = _transactional(kafka_bootstrap, topic, [b"a", b"b"], commit=None)
        try:
            started = time.monotonic()
            with pytest.raises(minikafka.TimeoutError, match="no record from the source"):
                minikafka.mirror(k, tmp_path / "d", topic, progress=False)
            assert time.monotonic() - started < 20
        finally:
            p.abort_transaction(10)


def test_the_same_kafka_topic_is_refused(kafka_bootstrap: str, kafka_url: str) -> None:
    import uuid

    topic = f"self-{uuid.uuid4().hex[:10]}"
    port = kafka_bootstrap.rpartition(":")[2]
    with minikafka.connect(kafka_url) as k:
        k.create_topic(topic, partitions=1)
        with minikafka.Producer(k) as p:
            p.send(topic, b"x", partition=0)
        with pytest.raises(minikafka.InvalidArgumentError, match="onto itself"):
            minikafka.mirror(kafka_url, f"kafka://localhost:{port}", topic, progress=False)
        assert k.topic(topic).end_offsets() == {0: 1}


def test_cli_says_when_an_interrupt_left_progress_uncommitted(monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    import minikafka.kafka.mirror as mirror_module

    def interrupted(*args: object, **kwargs: object) -> None:
        e = KeyboardInterrupt()
        e.add_note("mirror: progress of this run's last chunk was not committed (timed out)")
        raise e

    monkeypatch.setattr(mirror_module, "mirror", interrupted)
    assert mirror_main(["a", "b", "-t", "t", "-q"]) == 130
    err = capsys.readouterr().err
    assert "not committed" in err and "progress was committed" not in err
