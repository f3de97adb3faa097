"""Topics: naming rules, create/exists/list/delete, partitioning, offsets."""

from __future__ import annotations

import os

import pytest
import xxhash

import minikafka
from minikafka import InvalidTopicError, TopicExistsError, TopicNotFoundError, TopicPartition

INVALID_NAMES = [
    pytest.param("", id="empty"),
    pytest.param(".", id="dot"),
    pytest.param("..", id="dotdot"),
    pytest.param("a/b", id="slash"),
    pytest.param("../escape", id="parent-slash"),
    pytest.param("/abs", id="absolute"),
    pytest.param("a\\b", id="backslash"),
    pytest.param("a" * 250, id="250-chars"),
    pytest.param("a" * 1000, id="1000-chars"),
    pytest.param("tëst", id="unicode-latin"),
    pytest.param("топик", id="unicode-cyrillic"),
    pytest.param("emoji\U0001f600", id="unicode-emoji"),
    pytest.param("with space", id="space"),
    pytest.param("nul\x00byte", id="nul"),
    pytest.param("new\nline", id="newline"),
    pytest.param("star*", id="star"),
    pytest.param("colon:", id="colon"),
]

VALID_NAMES = [
    pytest.param("a", id="one-char"),
    pytest.param("a" * 249, id="249-chars"),
    pytest.param("Orders.v1_EU-west", id="all-classes"),
    pytest.param("...", id="three-dots"),
    pytest.param(".hidden", id="leading-dot"),
    pytest.param("_", id="underscore"),
    pytest.param("-", id="dash"),
    pytest.param("0123456789", id="digits"),
]


# -- names --------------------------------------------------------------------


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_create_topic_rejects_invalid_name(broker, tmp_path, name):
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(InvalidTopicError) as exc_info:
        broker.create_topic(name)
    assert isinstance(exc_info.value, ValueError)
    assert isinstance(exc_info.value, minikafka.MiniKafkaError)
    # nothing created outside the data directory, and no topic inside it
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert broker.list_topics() == []


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_topic_lookup_rejects_invalid_name(broker, name):
    with pytest.raises(InvalidTopicError):
        broker.topic(name)


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_delete_topic_rejects_invalid_name(broker, name):
    with pytest.raises(InvalidTopicError):
        broker.delete_topic(name)


@pytest.mark.parametrize("name", ["..", "../data", "a/b", ""])
def test_send_rejects_invalid_topic_name(broker, producer, name):
    with pytest.raises(InvalidTopicError):
        producer.send(name, b"x")


def test_invalid_topic_error_message_names_the_topic(broker):
    with pytest.raises(InvalidTopicError) as exc_info:
        broker.create_topic("bad/name")
    assert "bad/name" in str(exc_info.value)


def test_dotdot_cannot_reach_outside_data_dir(broker, data_dir, tmp_path):
    (tmp_path / "outside").mkdir()
    for name in ("..", "../outside", "..%2foutside"):
        with pytest.raises(InvalidTopicError):
            broker.create_topic(name)
    assert list((tmp_path / "outside").iterdir()) == []


@pytest.mark.parametrize("name", VALID_NAMES)
def test_create_topic_accepts_valid_name(broker, name):
    topic = broker.create_topic(name)
    assert topic.name == name
    assert broker.list_topics() == [name]
    assert broker.topic(name).name == name


# -- lifecycle ----------------------------------------------------------------


@pytest.mark.parametrize("partitions", [1, 2, 7])
def test_create_topic_returns_topic_with_partitions(broker, partitions):
    topic = broker.create_topic("orders", partitions)
    assert isinstance(topic, minikafka.Topic)
    assert topic.name == "orders"
    assert topic.partitions == partitions
    assert broker.topic("orders").partitions == partitions


def test_create_topic_defaults_to_one_partition(broker):
    assert broker.create_topic("t").partitions == 1


def test_new_topic_offsets_are_zero(broker):
    topic = broker.create_topic("t", 3)
    assert topic.beginning_offsets() == {0: 0, 1: 0, 2: 0}
    assert topic.end_offsets() == {0: 0, 1: 0, 2: 0}


def test_create_existing_topic_raises_topic_exists(broker):
    broker.create_topic("t", 2)
    with pytest.raises(TopicExistsError) as exc_info:
        broker.create_topic("t", 2)
    assert "t" in str(exc_info.value)
    assert broker.list_topics() == ["t"]


def test_create_existing_topic_with_other_partition_count_raises(broker):
    broker.create_topic("t", 2)
    with pytest.raises(TopicExistsError):
        broker.create_topic("t", 5)
    assert broker.topic("t").partitions == 2


def test_topic_not_found(broker):
    with pytest.raises(TopicNotFoundError) as exc_info:
        broker.topic("missing")
    assert "missing" in str(exc_info.value)


def test_list_topics_empty(broker):
    assert broker.list_topics() == []


def test_list_topics_sorted(broker):
    for name in ["zeta", "alpha", "Mid", "beta.2", "beta-1", "_x"]:
        broker.create_topic(name)
    listed = broker.list_topics()
    assert listed == sorted(["zeta", "alpha", "Mid", "beta.2", "beta-1", "_x"])
    assert isinstance(listed, list)


def test_delete_topic(broker):
    broker.create_topic("a")
    broker.create_topic("b")
    assert broker.delete_topic("a") is None
    assert broker.list_topics() == ["b"]
    with pytest.raises(TopicNotFoundError):
        broker.topic("a")


def test_delete_topic_removes_directory(broker, data_dir):
    broker.create_topic("gone", 2)
    assert (data_dir / "topics" / "gone").is_dir()
    broker.delete_topic("gone")
    assert not (data_dir / "topics" / "gone").exists()


def test_delete_missing_topic_raises_not_found(broker):
    with pytest.raises(TopicNotFoundError) as exc_info:
        broker.delete_topic("nope")
    assert "nope" in str(exc_info.value)


def test_delete_twice_raises_not_found(broker):
    broker.create_topic("t")
    broker.delete_topic("t")
    with pytest.raises(TopicNotFoundError):
        broker.delete_topic("t")


def test_recreate_deleted_topic_starts_empty(broker, produce):
    broker.create_topic("t", 1)
    produce("t", [b"1", b"2", b"3"])
    assert broker.topic("t").end_offsets() == {0: 3}
    broker.delete_topic("t")
    topic = broker.create_topic("t", 2)
    assert topic.partitions == 2
    assert topic.end_offsets() == {0: 0, 1: 0}


def test_send_after_delete_raises_not_found(broker, producer):
    broker.create_topic("t")
    producer.send("t", b"x").result(timeout=5)
    broker.delete_topic("t")
    with pytest.raises(TopicNotFoundError):
        producer.send("t", b"y").result(timeout=5)


def test_topic_visible_to_second_broker_on_same_path(broker, make_broker):
    broker.create_topic("shared", 3)
    other = make_broker()
    assert other.list_topics() == ["shared"]
    assert other.topic("shared").partitions == 3


def test_topic_created_after_second_broker_opened_is_visible(broker, make_broker):
    other = make_broker()
    assert other.list_topics() == []
    broker.create_topic("late", 2)
    assert other.list_topics() == ["late"]
    assert other.topic("late").partitions == 2
    with pytest.raises(TopicExistsError):
        other.create_topic("late")


def test_delete_seen_by_second_broker(broker, make_broker):
    other = make_broker()
    broker.create_topic("t")
    assert other.topic("t").name == "t"
    broker.delete_topic("t")
    assert other.list_topics() == []
    with pytest.raises(TopicNotFoundError):
        other.topic("t")


def test_records_visible_to_second_broker(broker, make_broker, produce):
    broker.create_topic("t", 2)
    produce("t", [b"a", b"b"], partition=1)
    other = make_broker()
    assert other.topic("t").end_offsets() == {0: 0, 1: 2}
    with minikafka.Consumer(other, auto_offset_reset="earliest") as c:
        c.assign([TopicPartition("t", 1)])
        records = c.poll(timeout=1.0)
    assert [r.value for r in records] == [b"a", b"b"]


def test_topic_survives_reopen(make_broker):
    first = make_broker()
    first.create_topic("kept", 4)
    first.close()
    second = make_broker()
    assert second.list_topics() == ["kept"]
    assert second.topic("kept").partitions == 4


# -- partitioning ---------------------------------------------------------------

KEYS = [b"", b"a", b"key-1", b"key-2", b"\x00\xff\x10", b"x" * 1000, "ключ".encode()]


@pytest.mark.parametrize("partitions", [1, 3, 7, 16])
@pytest.mark.parametrize("key", KEYS, ids=lambda k: repr(k[:12]))
def test_partition_for_is_xxh3_mod_partitions(broker, partitions, key):
    topic = broker.create_topic("t", partitions)
    assert topic.partition_for(key) == xxhash.xxh3_64_intdigest(key) % partitions


@pytest.mark.parametrize("partitions", [2, 5])
def test_keyed_records_land_in_partition_for(broker, producer, partitions):
    topic = broker.create_topic("t", partitions)
    keys = [f"user-{i}".encode() for i in range(60)]
    results = [producer.send("t", b"v", key=k) for k in keys]
    producer.flush()
    used = set()
    for key, fut in zip(keys, results, strict=True):
        meta = fut.result(timeout=5)
        expected = xxhash.xxh3_64_intdigest(key) % partitions
        assert meta.partition == expected == topic.partition_for(key)
        used.add(meta.partition)
    assert len(used) > 1  # 60 keys do hash onto several partitions


def test_same_key_always_same_partition(broker, producer):
    broker.create_topic("t", 8)
    metas = [producer.send("t", str(i).encode(), key=b"sticky").result(timeout=5) for i in range(20)]
    assert {m.partition for m in metas} == {xxhash.xxh3_64_intdigest(b"sticky") % 8}
    assert [m.offset for m in metas] == list(range(20))


def test_end_offsets_count_records_per_partition(broker, producer):
    topic = broker.create_topic("t", 3)
    for p, n in [(0, 2), (1, 0), (2, 5)]:
        for _ in range(n):
            producer.send("t", b"x", partition=p)
    producer.flush()
    assert topic.end_offsets() == {0: 2, 1: 0, 2: 5}
    assert topic.beginning_offsets() == {0: 0, 1: 0, 2: 0}


def test_topic_layout_on_disk(broker, producer, data_dir):
    broker.create_topic("layout", 2)
    producer.send("layout", b"x", partition=0)
    producer.send("layout", b"y", partition=1)
    producer.flush()
    tdir = data_dir / "topics" / "layout"
    assert (tdir / "topic.json").is_file()
    for p in (0, 1):
        pdir = tdir / str(p)
        assert pdir.is_dir()
        assert (pdir / ("0" * 20 + ".log")).is_file()
        assert (pdir / ("0" * 20 + ".index")).is_file()


def test_topic_json_is_json(broker, data_dir):
    import json

    broker.create_topic("meta", 3)
    meta = json.loads((data_dir / "topics" / "meta" / "topic.json").read_text())
    assert isinstance(meta, dict)
    assert meta  # records the topic's settings


def test_topic_name_is_a_single_path_component(broker, data_dir):
    broker.create_topic("a.b-c_d")
    assert "a.b-c_d" in os.listdir(data_dir / "topics")
    assert (data_dir / "topics" / "a.b-c_d" / "topic.json").is_file()


def test_partition_for_of_text_that_is_not_utf8_names_the_key(broker):
    """A lone surrogate raised a bare UnicodeEncodeError; send() of the same
    key raises InvalidArgumentError naming it, and so does partition_for."""
    topic = broker.create_topic("surrogate", 3)
    with pytest.raises(minikafka.InvalidArgumentError, match=r"key .* is not valid UTF-8"):
        topic.partition_for("a\udcff")
    assert topic.partition_for("ü") == topic.partition_for("ü".encode())


def test_offsets_of_a_deleted_topic_raise_topic_not_found(broker, make_broker):
    # A Topic kept across delete_topic raised ClosedError ("partition t/0 is
    # closed", "directory is gone (topic deleted?)"), and across a delete and
    # re-create by another broker it gave the new topic's offsets as its own;
    # apply_retention already raised TopicNotFoundError for both.
    topic = broker.create_topic("t", 2)
    assert topic.end_offsets() == {0: 0, 1: 0}
    broker.delete_topic("t")
    for call in (topic.end_offsets, topic.beginning_offsets):
        with pytest.raises(TopicNotFoundError, match="'t' was deleted"):
            call()
    kept = broker.create_topic("u")
    other = make_broker()
    other.delete_topic("u")
    other.create_topic("u", 3)
    for call in (kept.end_offsets, kept.beginning_offsets):
        with pytest.raises(TopicNotFoundError, match="'u' was deleted"):
            call()
    assert broker.topic("u").end_offsets() == {0: 0, 1: 0, 2: 0}
