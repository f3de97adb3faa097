"""The Broker methods the command line needed: alter_topic,
alter_group_offsets, delete_group."""

from __future__ import annotations

import pytest

import minikafka
from minikafka import TopicPartition as TP


def test_alter_topic_changes_retention_and_applies_it(broker):
    topic = broker.create_topic("t", segment_bytes=4096)
    with minikafka.Producer(broker, linger_ms=0) as producer:
        for _ in range(40):
            producer.send("t", b"x" * 1000)
    assert topic.beginning_offsets() == {0: 0}
    altered = broker.alter_topic("t", retention_bytes=8192)
    assert altered.config.retention_bytes == 8192 and altered.config.retention_ms is None
    assert altered.config.segment_bytes == 4096  # the rest kept
    assert broker.topic("t").beginning_offsets()[0] > 0  # applied now
    assert broker.alter_topic("t", retention_bytes=None).config.retention_bytes is None
    with pytest.raises(minikafka.InvalidArgumentError, match="retention_ms"):
        broker.alter_topic("t", retention_ms=-1)
    with pytest.raises(TypeError):
        broker.alter_topic("t", retention_ms="1")  # type: ignore[arg-type]
    with pytest.raises(minikafka.InvalidArgumentError):
        broker.alter_topic("t")
    with pytest.raises(minikafka.TopicNotFoundError):
        broker.alter_topic("nope", retention_ms=1)


def test_alter_topic_is_seen_by_another_broker(broker, make_broker):
    broker.create_topic("t")
    other = make_broker()
    assert other.topic("t").config.retention_ms is None
    broker.alter_topic("t", retention_ms=60_000)
    assert other.topic("t").config.retention_ms == 60_000


def test_alter_group_offsets(broker):
    broker.create_topic("t", partitions=2)
    broker.alter_group_offsets("g", {TP("t", 0): 5})
    broker.alter_group_offsets("g", {TP("t", 1): 7}, validate_only=False)
    broker.alter_group_offsets("g", {TP("t", 1): 9}, validate_only=True)  # writes nothing
    assert broker.committed_offsets("g") == {TP("t", 0): 5, TP("t", 1): 7}
    with pytest.raises(minikafka.InvalidArgumentError, match="offset"):
        broker.alter_group_offsets("g", {TP("t", 0): -1})
    with pytest.raises(TypeError):
        broker.alter_group_offsets("g", {TP("t", 0): "1"})  # type: ignore[dict-item]
    with pytest.raises(minikafka.InvalidPartitionError):
        broker.alter_group_offsets("g", {TP("t", 2): 0})
    with pytest.raises(minikafka.TopicNotFoundError):
        broker.alter_group_offsets("g", {TP("nope", 0): 0})


def test_live_members_block_changes_until_they_leave(broker):
    broker.create_topic("t")
    consumer = minikafka.Consumer(broker, "t", group_id="g")
    consumer.poll(timeout=0.1)
    consumer.commit({TP("t", 0): 0})
    with pytest.raises(minikafka.GroupNotEmptyError, match="live member"):
        broker.alter_group_offsets("g", {TP("t", 0): 0})
    with pytest.raises(minikafka.GroupNotEmptyError):
        broker.delete_group("g")
    consumer.close()
    broker.alter_group_offsets("g", {TP("t", 0): 0})
    broker.delete_group("g")
    assert broker.list_groups() == [] and broker.committed_offsets("g") == {}
    with pytest.raises(minikafka.InvalidArgumentError, match="does not exist"):
        broker.delete_group("g")
    # the group can be used again afterwards
    broker.alter_group_offsets("g", {TP("t", 0): 0})
    assert broker.list_groups() == ["g"]
