"""Options: one validation style for Broker, topics, Producer and Consumer.

A wrong type raises TypeError and a bad value InvalidArgumentError, both
naming the option; every keyword keeps its default.
"""

from __future__ import annotations

import json

import attrs
import pytest

import minikafka
from minikafka import BrokerOptions, Consumer, ConsumerConfig, ProducerConfig, TopicConfig, TopicSettings
from minikafka.testing import read_topic


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("poll_interval", -1),
        ("request_timeout", 0),
        ("request_timeout", float("nan")),
        ("consumer_timeout", -5),
        ("auto_commit_interval", -1),
        ("session_timeout", 0),
        ("heartbeat_interval", -0.5),
        ("max_poll_interval", 0),
        ("max_poll_records", 0),
        ("auto_offset_reset", "bogus"),
        ("group_id", ""),
    ],
)
def test_bad_consumer_or_broker_values_name_the_option(broker, option, value):
    with pytest.raises(minikafka.InvalidArgumentError, match=option):
        if option in ("poll_interval", "request_timeout"):
            BrokerOptions(**{option: value})
        else:
            Consumer(broker, **{option: value})


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("auto_commit_interval", "abc"),
        ("consumer_timeout", "5"),
        ("max_poll_records", 1.5),
        ("max_poll_records", True),
        ("enable_auto_commit", "yes"),
        ("stop_at_end", 1),
        ("value_deserializer", "json"),
        ("on_revoke", 3),
        ("group_id", 7),
    ],
)
def test_wrong_consumer_types_raise_type_error_naming_the_option(broker, option, value):
    with pytest.raises(TypeError, match=option):
        Consumer(broker, **{option: value})


def test_unknown_keywords_are_type_errors(broker, tmp_path):
    with pytest.raises(TypeError, match=r"Consumer.*bogus"):
        Consumer(broker, bogus=1)
    with pytest.raises(TypeError, match=r"Broker.*bogus"):
        minikafka.Broker(tmp_path / "b", bogus=1)
    with pytest.raises(TypeError, match="bogus"):
        broker.create_topic("t", bogus=1)
    assert "t" not in broker.list_topics()


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("linger_ms", -1, minikafka.InvalidArgumentError),
        ("linger_ms", "5", TypeError),
        ("batch_size", 0, minikafka.InvalidArgumentError),
        ("max_record_bytes", 2.0, TypeError),
        ("partitioner", "murmur", minikafka.InvalidArgumentError),  # names: "xxh3", "murmur2"
        ("partitioner", 3, TypeError),
    ],
)
def test_producer_config_validation(option, value, error):
    with pytest.raises(error, match=option):
        ProducerConfig(**{option: value})


def test_defaults_are_kept():
    c = ConsumerConfig()
    assert (c.group_id, c.auto_offset_reset, c.enable_auto_commit, c.auto_commit_interval) == (
        None, "latest", True, 5.0)
    assert (c.max_poll_records, c.consumer_timeout, c.session_timeout, c.heartbeat_interval,
            c.max_poll_interval, c.stop_at_end) == (500, None, 10.0, 0.1, 300.0, False)
    p = ProducerConfig()
    assert (p.linger_ms, p.batch_size, p.max_record_bytes) == (5, 16384, 1 << 20)
    for cls in (ConsumerConfig, ProducerConfig, BrokerOptions, TopicConfig):
        assert attrs.has(cls)
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            cls().__setattr__("x", 1)


def test_topic_settings_are_written_once():
    """Broker defaults and a topic's config share one set of fields and defaults."""
    names = TopicSettings.names()
    assert set(names) == {"segment_bytes", "segment_ms", "retention_ms", "retention_bytes",
                          "index_interval_bytes"}
    assert BrokerOptions().settings() == TopicConfig().settings() == TopicSettings().settings()


def test_create_topic_takes_every_topic_setting_and_broker_defaults(make_broker):
    broker = make_broker(segment_bytes=8192, retention_ms=1000)
    t = broker.create_topic("t", 2, retention_bytes=50_000, index_interval_bytes=128, segment_ms=None)
    assert t.config == TopicConfig(partitions=2, segment_bytes=8192, retention_ms=1000,
                                   retention_bytes=50_000, index_interval_bytes=128)
    assert broker.topic("t").config == t.config


def test_consumer_takes_a_config_object(broker):
    broker.create_topic("t")
    cfg = ConsumerConfig(auto_offset_reset="earliest", consumer_timeout=0.2)
    with Consumer(broker, "t", config=cfg, max_poll_records=7) as c:
        assert c.config == attrs.evolve(cfg, max_poll_records=7)


def test_consumer_config_must_be_a_consumer_config(broker):
    with pytest.raises(TypeError, match="ConsumerConfig"):
        Consumer(broker, config={"group_id": "g"})


def test_segment_ms_zero_is_refused_and_a_saved_zero_still_opens(tmp_path):
    """segment_ms=0 was accepted and rolled the segment on every append: one
    preallocated segment_bytes file per batch, a disk filled by a trickle.
    Kafka's segment.ms minimum is 1; so is minikafka's now. A topic.json
    saved with 0 before still opens (as 1, the same rolls), its records
    intact."""
    with pytest.raises(minikafka.InvalidArgumentError, match="segment_ms must be >= 1"):
        minikafka.Broker(tmp_path / "a", segment_ms=0)
    with minikafka.Broker(tmp_path / "b") as b:
        with pytest.raises(minikafka.InvalidArgumentError, match="segment_ms must be >= 1"):
            b.create_topic("t", segment_ms=0)
        b.create_topic("t", segment_ms=1)
        with minikafka.Producer(b) as p:
            p.send("t", b"kept").result(5)
    meta_path = tmp_path / "b" / "topics" / "t" / "topic.json"
    meta = json.loads(meta_path.read_text())
    meta["segment_ms"] = 0
    meta_path.write_text(json.dumps(meta))
    with minikafka.Broker(tmp_path / "b") as b:
        assert b.topic("t").config.segment_ms == 1
        assert [r.value for r in read_topic(b, "t")] == [b"kept"]


@pytest.mark.parametrize("options", [{"segment_bytes": 8192}, 5])
def test_broker_options_must_be_broker_options(tmp_path, options):
    """A dict as Broker's second argument failed later with AttributeError
    ('dict' object has no attribute 'poll_interval'), after making the directory."""
    with pytest.raises(TypeError, match="options must be a BrokerOptions"):
        minikafka.Broker(tmp_path / "d", options)
    assert not (tmp_path / "d").exists()
