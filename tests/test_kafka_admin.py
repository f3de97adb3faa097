"""The Broker surface of ``connect("kafka://...")`` against a real broker
(Tansu by default, see kafka_broker.py)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
from kafka_broker import FAST_GROUP, xfail_on_tansu

import minikafka
from minikafka.kafka.admin import KafkaBroker


def _name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def kbroker(kafka_url: str) -> Iterator[KafkaBroker]:
    broker = minikafka.connect(kafka_url, request_timeout=10)
    assert isinstance(broker, KafkaBroker)
    yield broker
    broker.close()


def _produce(bootstrap: str, topic: str, partition: int, values: list[bytes], batch: bool = True) -> None:
    """Write with confluent-kafka directly (one batch when ``batch``)."""
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50 if batch else 0})
    for v in values:
        p.produce(topic, v, partition=partition)
        if not batch:
            p.flush(10)
    assert p.flush(10) == 0


def test_create_topic_lists_and_describes(kbroker: KafkaBroker) -> None:
    name = _name()
    topic = kbroker.create_topic(name, partitions=3, retention_ms=3_600_000, segment_bytes=1 << 20)
    assert (topic.name, topic.partitions) == (name, 3)
    assert kbroker.topic(name).partitions == 3
    assert name in kbroker.list_topics()
    listed = kbroker.list_topics()
    assert listed == sorted(listed)
    assert not any(n.startswith("__") for n in listed)
    assert topic.beginning_offsets() == {0: 0, 1: 0, 2: 0}
    assert topic.end_offsets() == {0: 0, 1: 0, 2: 0}


def test_create_existing_topic_raises(kbroker: KafkaBroker) -> None:
    name = _name()
    kbroker.create_topic(name)
    with pytest.raises(minikafka.TopicExistsError, match=name):
        kbroker.create_topic(name, partitions=2)


def test_missing_topic_raises(kbroker: KafkaBroker) -> None:
    name = _name("missing")
    with pytest.raises(minikafka.TopicNotFoundError, match=name):
        kbroker.topic(name)
    with pytest.raises(minikafka.TopicNotFoundError, match=name):
        kbroker.delete_topic(name)


def test_delete_topic(kbroker: KafkaBroker) -> None:
    name = _name()
    kbroker.create_topic(name, partitions=2)
    kbroker.delete_topic(name)
    assert name not in kbroker.list_topics()
    with pytest.raises(minikafka.TopicNotFoundError):
        kbroker.topic(name)


def test_delete_topic_after_reading_its_end_offsets(kafka_url: str) -> None:
    # Reading end offsets fetches (OffsetProbe), and a fetch can outlive it.
    # On Tansu, such a fetch answered after its topic is deleted crashed
    # librdkafka 2.16 on the first cycle (SIGSEGV, exit -11), so this runs in
    # a child process; delete_topic now closes the probe that fetched the topic.
    code = (
        "import sys, uuid, minikafka\n"
        "with minikafka.connect(sys.argv[1]) as broker:\n"
        "    for _ in range(3):\n"
        "        name = f'del-{uuid.uuid4().hex[:8]}'\n"
        "        topic = broker.create_topic(name, partitions=2)\n"
        "        with minikafka.Producer(broker) as p:\n"
        "            p.send(name, b'x', partition=0).result(timeout=10)\n"
        "        assert topic.end_offsets() == {0: 1, 1: 0}, topic.end_offsets()\n"
        "        probe = broker.probe()\n"
        "        broker.delete_topic(name)\n"
        "        assert broker.probe() is not probe\n"
        "print('deleted 3')\n"
    )
    out = subprocess.run([sys.executable, "-c", code, kafka_url], capture_output=True, text=True,
                         timeout=120)
    assert (out.returncode, out.stdout.strip()) == (0, "deleted 3"), out.stderr[-2000:]


def test_delete_topic_keeps_a_probe_that_never_fetched_it(kbroker: KafkaBroker, kafka_bootstrap: str) -> None:
    fetched, other = _name(), _name()
    kbroker.create_topic(fetched)
    kbroker.create_topic(other)
    _produce(kafka_bootstrap, fetched, 0, [b"x"])
    assert kbroker.topic(fetched).end_offsets() == {0: 1}
    probe = kbroker.probe()
    kbroker.delete_topic(other)
    assert kbroker.probe() is probe
    kbroker.delete_topic(fetched)
    assert kbroker.probe() is not probe


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "x" * 250, "sp ace", "ü"])
def test_invalid_topic_names_rejected_locally(kbroker: KafkaBroker, bad: str) -> None:
    with pytest.raises(minikafka.InvalidTopicError):
        kbroker.create_topic(bad)
    with pytest.raises(minikafka.InvalidTopicError):
        kbroker.topic(bad)


def test_bad_arguments(kbroker: KafkaBroker) -> None:
    with pytest.raises(TypeError, match="partitions"):
        kbroker.create_topic(_name(), partitions="2")  # type: ignore[arg-type]
    with pytest.raises(minikafka.InvalidArgumentError, match="partitions"):
        kbroker.create_topic(_name(), partitions=0)
    with pytest.raises(minikafka.InvalidArgumentError, match="retention_ms"):
        kbroker.create_topic(_name(), retention_ms=-1)
    with pytest.raises(minikafka.InvalidArgumentError, match="segment_ms must be >= 1"):
        kbroker.create_topic(_name(), segment_ms=0)  # as a directory (and Kafka's segment.ms)


def test_partition_for_is_xxh3_like_a_directory(kbroker: KafkaBroker, tmp_path) -> None:
    name = _name()
    remote = kbroker.create_topic(name, partitions=7)
    with minikafka.Broker(tmp_path / "d") as local:
        here = local.create_topic(name, partitions=7)
        for i in range(200):
            key = f"key-{i}".encode()
            assert remote.partition_for(key) == here.partition_for(key)


def test_end_offsets_count_every_record_of_a_batch(kbroker: KafkaBroker, kafka_bootstrap: str) -> None:
    """Tansu's ListOffsets 'latest' gives the last batch's base + 1; the end
    offsets must still be the high watermark (KAFKA.md)."""
    name = _name()
    topic = kbroker.create_topic(name, partitions=2)
    _produce(kafka_bootstrap, name, 0, [b"v%d" % i for i in range(10)])  # one batch of 10
    _produce(kafka_bootstrap, name, 1, [b"w%d" % i for i in range(3)], batch=False)
    assert topic.end_offsets() == {0: 10, 1: 3}
    assert topic.beginning_offsets() == {0: 0, 1: 0}


def test_groups_committed_offsets_and_lag(kbroker: KafkaBroker, kafka_bootstrap: str) -> None:
    from confluent_kafka import Consumer, TopicPartition

    name, group = _name(), _name("g")
    kbroker.create_topic(name, partitions=2)
    _produce(kafka_bootstrap, name, 0, [b"x"] * 8)
    _produce(kafka_bootstrap, name, 1, [b"y"] * 4)
    c = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(name, 0, 5), TopicPartition(name, 1, 4)], asynchronous=False)
    finally:
        c.close()
    tp0, tp1 = minikafka.TopicPartition(name, 0), minikafka.TopicPartition(name, 1)
    assert group in kbroker.list_groups()
    assert kbroker.committed_offsets(group) == {tp0: 5, tp1: 4}
    assert kbroker.lag(group) == {tp0: 3, tp1: 0}
    desc = kbroker.describe_group(group)
    assert desc.group_id == group
    assert desc.committed == {tp0: 5, tp1: 4}
    assert desc.members == ()  # nobody is connected


def test_unknown_group_has_no_offsets(kbroker: KafkaBroker) -> None:
    group = _name("nogroup")
    assert kbroker.committed_offsets(group) == {}
    assert kbroker.lag(group) == {}


def test_closed_broker_raises(kafka_url: str) -> None:
    broker = minikafka.connect(kafka_url)
    with broker:
        broker.list_topics()
    with pytest.raises(minikafka.ClosedError):
        broker.list_topics()


def test_unreachable_broker_times_out() -> None:
    broker = minikafka.connect("kafka://127.0.0.1:1", request_timeout=0.5)
    with broker, pytest.raises(minikafka.kafka.errors.TimeoutError) as info:
        broker.list_topics()
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, minikafka.MiniKafkaError)


def test_stop_at_end_iteration_on_an_unreachable_cluster_times_out() -> None:
    """The group join is bounded by request_timeout: iteration with
    stop_at_end waited for a first assignment forever."""
    with minikafka.connect("kafka://127.0.0.1:1?log_level=0", request_timeout=0.5) as broker:
        consumer = minikafka.Consumer(broker, "t", group_id="g", stop_at_end=True, session_timeout=1.0)
        started = time.monotonic()
        with pytest.raises(minikafka.TimeoutError, match=r"no assignment within 1\.5 s"):
            list(consumer)
        assert time.monotonic() - started < 3.0
        consumer.close()


def test_commit_with_no_coordinator_raises_timeout_error() -> None:
    """No coordinator to commit to is a timeout naming it, after at most
    request_timeout (docs/scaling.md), not a bare backend error. (A commit
    of a partition never assigned first reads the topic's metadata — Tansu
    would store offsets of partitions that do not exist — and that is what
    times out first for one never assigned.)"""
    with minikafka.connect("kafka://127.0.0.1:1?log_level=0", request_timeout=0.5) as broker:
        consumer = minikafka.Consumer(broker, group_id="g", session_timeout=1.0)
        started = time.monotonic()
        with pytest.raises(minikafka.TimeoutError, match=r"listing the topics of kafka://127\.0\.0\.1:1"):
            consumer.commit({minikafka.TopicPartition("t", 0): 1})
        assert time.monotonic() - started < 5.0
        consumer.close()


def test_url_configuration_reaches_the_client(kafka_bootstrap: str) -> None:
    host, port = kafka_bootstrap.rsplit(":", 1)
    with minikafka.connect(f"kafka://{kafka_bootstrap},{host}:{port}?client.id=mk-test") as broker:
        assert broker.config["client.id"] == "mk-test"
        assert broker.config["bootstrap.servers"] == f"{kafka_bootstrap},{kafka_bootstrap}"
        broker.list_topics()


@pytest.mark.parametrize("url", ["kafka://", "kafka://host:port", "kafka://h:99999", "kafka://h:1/path",
                                 "kafka://user:pw@h:9092", "kafka://a:1,"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(minikafka.InvalidArgumentError):
        minikafka.connect(url)


def test_import_without_confluent_kafka() -> None:
    """``import minikafka`` works without the extra; connect('kafka://') says how to install it."""
    code = (
        "import sys, importlib.util\n"
        "orig = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda n, *a: None if n.startswith('confluent_kafka') else orig(n, *a)\n"
        "sys.modules['confluent_kafka'] = None\n"
        "import minikafka\n"
        "try:\n"
        "    minikafka.connect('kafka://127.0.0.1:9092')\n"
        "except ImportError as e:\n"
        "    assert isinstance(e, minikafka.MiniKafkaError)\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         check=True)
    assert "pip install 'minikafka[kafka]'" in out.stdout


@xfail_on_tansu("DescribeGroups reports 0 members")
def test_describe_group_lists_connected_members(kbroker: KafkaBroker, kafka_bootstrap: str) -> None:
    from confluent_kafka import Consumer

    name, group = _name(), _name("g")
    kbroker.create_topic(name, partitions=2)
    c = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group, **FAST_GROUP})
    try:
        c.subscribe([name])
        deadline = time.monotonic() + 15
        while not c.assignment() and time.monotonic() < deadline:
            c.poll(0.1)
        assert len(c.assignment()) == 2
        desc = kbroker.describe_group(group)
        assert len(desc.members) == 1
        assert set(desc.members[0].assignment) == {minikafka.TopicPartition(name, 0),
                                                   minikafka.TopicPartition(name, 1)}
    finally:
        c.close()


def test_topic_for_send_creates_only_when_allowed(kafka_url: str) -> None:
    name = _name("auto")
    with (minikafka.connect(kafka_url, request_timeout=10) as strict,
          pytest.raises(minikafka.TopicNotFoundError, match="auto_create_topics")):
        strict.topic_for_send(name)
    with minikafka.connect(kafka_url, request_timeout=10, auto_create_topics=True) as lenient:
        assert lenient.topic_for_send(name).partitions == 1
        assert name in lenient.list_topics()


@pytest.mark.parametrize("where", ["url", "producer_config", "consumer_config"])
def test_an_unknown_client_property_is_an_invalid_argument(where: str) -> None:
    """confluent-kafka refuses it with a bare KafkaException; minikafka says
    which property, as InvalidArgumentError (a ValueError)."""
    url = "kafka://127.0.0.1:1" + ("?no.such.property=1" if where == "url" else "")
    extra = {where: {"no.such.property": 1}} if where != "url" else {}
    with pytest.raises(minikafka.InvalidArgumentError, match=r"no\.such\.property") as info, \
            minikafka.connect(url, request_timeout=0.5, **extra) as broker:
        if where == "producer_config":
            minikafka.Producer(broker)
        else:
            minikafka.Consumer(broker)
    assert isinstance(info.value, ValueError)
