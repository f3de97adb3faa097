"""minikafka.mirror and ``minikafka mirror``: copies keep partition, key,
value, headers and timestamp; committed progress means no second copy.

Directory to directory, and directory -> Kafka (Tansu) -> directory.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import minikafka
from minikafka.kafka.mirror_cli import main as mirror_main


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
