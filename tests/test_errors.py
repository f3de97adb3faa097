"""The error hierarchy, which calls raise which error, and error messages."""

from __future__ import annotations

import pytest

import minikafka
from minikafka import Consumer, Producer, TopicPartition

ALL_ERRORS = [
    "TopicExistsError",
    "TopicNotFoundError",
    "InvalidTopicError",
    "RecordTooLargeError",
    "NoOffsetError",
    "CorruptLogError",
    "ClosedError",
    "InvalidPartitionError",
    "InvalidArgumentError",
]

VALUE_ERRORS = ["InvalidTopicError", "InvalidPartitionError", "InvalidArgumentError"]


@pytest.mark.parametrize("name", ALL_ERRORS)
def test_every_error_derives_from_minikafka_error(name):
    cls = getattr(minikafka, name)
    assert issubclass(cls, minikafka.MiniKafkaError)
    assert issubclass(cls, Exception)


def test_minikafka_error_is_an_exception():
    assert issubclass(minikafka.MiniKafkaError, Exception)


@pytest.mark.parametrize("name", VALUE_ERRORS)
def test_value_errors_are_value_errors(name):
    assert issubclass(getattr(minikafka, name), ValueError)


@pytest.mark.parametrize("name", ALL_ERRORS)
def test_errors_are_distinct_classes(name):
    cls = getattr(minikafka, name)
    others = [getattr(minikafka, n) for n in ALL_ERRORS if n != name]
    assert all(cls is not other for other in others)


def test_public_names_importable():
    for name in [
        "Broker", "BrokerOptions", "Producer", "Consumer", "Topic", "TopicPartition", "Record",
        "RecordMetadata", "connect", "MiniKafkaError", *ALL_ERRORS,
    ]:
        assert hasattr(minikafka, name), name


# -- InvalidArgumentError (bad values) ---------------------------------------------------------


@pytest.mark.parametrize("partitions", [0, -1])
def test_create_topic_bad_partition_count(broker, partitions):
    with pytest.raises(minikafka.InvalidArgumentError) as exc_info:
        broker.create_topic("t", partitions)
    assert "partitions" in str(exc_info.value)
    assert broker.list_topics() == []


def test_create_topic_partitions_wrong_type(broker):
    with pytest.raises(TypeError):
        broker.create_topic("t", "3")
    assert broker.list_topics() == []


def test_create_topic_negative_retention(broker):
    with pytest.raises(minikafka.InvalidArgumentError):
        broker.create_topic("t", retention_ms=-1)
    with pytest.raises(minikafka.InvalidArgumentError):
        broker.create_topic("u", retention_bytes=-1)
    assert broker.list_topics() == []


def test_bad_auto_offset_reset(broker):
    with pytest.raises(minikafka.InvalidArgumentError) as exc_info:
        Consumer(broker, auto_offset_reset="bogus")
    assert "auto_offset_reset" in str(exc_info.value) or "bogus" in str(exc_info.value)


def test_negative_seek_offset(broker):
    broker.create_topic("t")
    with Consumer(broker) as c:
        c.assign([TopicPartition("t", 0)])
        with pytest.raises(minikafka.InvalidArgumentError):
            c.seek(TopicPartition("t", 0), -5)


def test_negative_commit_offset(broker):
    broker.create_topic("t")
    with Consumer(broker, group_id="g") as c:
        c.assign([TopicPartition("t", 0)])
        with pytest.raises(minikafka.InvalidArgumentError):
            c.commit({TopicPartition("t", 0): -1})


@pytest.mark.parametrize("value", [0, -1])
def test_bad_max_poll_records(broker, value):
    with pytest.raises(minikafka.InvalidArgumentError):
        Consumer(broker, max_poll_records=value)


@pytest.mark.parametrize("option", ["batch_size", "max_record_bytes"])
def test_bad_producer_sizes(broker, option):
    with pytest.raises(minikafka.InvalidArgumentError):
        Producer(broker, **{option: 0})


def test_negative_linger(broker):
    with pytest.raises(minikafka.InvalidArgumentError):
        Producer(broker, linger_ms=-1)


# -- InvalidPartitionError ------------------------------------------------------------------------


def test_invalid_partition_on_send_names_topic_and_partition(broker, producer):
    broker.create_topic("two", 2)
    with pytest.raises(minikafka.InvalidPartitionError) as exc_info:
        producer.send("two", b"x", partition=7).result(timeout=5)
    msg = str(exc_info.value)
    assert "7" in msg
    assert "two" in msg


def test_invalid_partition_on_assign(broker):
    broker.create_topic("two", 2)
    with Consumer(broker) as c, pytest.raises(minikafka.InvalidPartitionError) as exc_info:
        c.assign([TopicPartition("two", 2)])
    assert "two" in str(exc_info.value)
    assert isinstance(exc_info.value, ValueError)


# -- TypeError for wrong types ------------------------------------------------------------------


def test_type_error_names_the_argument(broker, producer):
    broker.create_topic("t")
    with pytest.raises(TypeError, match="value"):
        producer.send("t", 5)
    with pytest.raises(TypeError, match="key"):
        producer.send("t", b"v", key=5)


def test_assign_requires_topic_partitions(broker):
    broker.create_topic("t")
    with Consumer(broker) as c, pytest.raises(TypeError):
        c.assign(["t"])


def test_bad_timestamp_type(broker, producer):
    broker.create_topic("t")
    with pytest.raises(TypeError):
        producer.send("t", b"v", timestamp_ms="now")


# -- TopicNotFoundError / TopicExistsError messages ---------------------------------------------


def test_not_found_messages_name_the_topic(broker, producer):
    for call in (
        lambda: broker.topic("ghost"),
        lambda: broker.delete_topic("ghost"),
        lambda: producer.send("ghost", b"x").result(timeout=5),
    ):
        with pytest.raises(minikafka.TopicNotFoundError) as exc_info:
            call()
        assert "ghost" in str(exc_info.value)


def test_assign_missing_topic_message(broker):
    with Consumer(broker) as c, pytest.raises(minikafka.TopicNotFoundError) as exc_info:
        c.assign([TopicPartition("ghost", 0)])
    assert "ghost" in str(exc_info.value)


def test_exists_message_names_the_topic(broker):
    broker.create_topic("dup")
    with pytest.raises(minikafka.TopicExistsError, match="dup"):
        broker.create_topic("dup")


def test_record_too_large_message_mentions_size(broker):
    broker.create_topic("t")
    with Producer(broker, max_record_bytes=100) as p, pytest.raises(minikafka.RecordTooLargeError) as exc:
        p.send("t", b"x" * 5000)
    assert "100" in str(exc.value)


def test_no_offset_error_message_names_partition(broker):
    broker.create_topic("t")
    with Consumer(broker, auto_offset_reset="none") as c:
        c.assign([TopicPartition("t", 0)])
        with pytest.raises(minikafka.NoOffsetError) as exc:
            c.poll(timeout=0.05)
    assert "t" in str(exc.value)


# -- CorruptLogError --------------------------------------------------------------------------------


def test_corrupt_topic_metadata_raises_corrupt_log_error(make_broker, data_dir):
    b = make_broker()
    b.create_topic("t")
    b.close()
    (data_dir / "topics" / "t" / "topic.json").write_text("{not json")
    with pytest.raises(minikafka.CorruptLogError) as exc:
        b2 = make_broker()
        b2.topic("t")
    assert "topic.json" in str(exc.value)


# -- ClosedError --------------------------------------------------------------------------------------


def closed_clients(make_broker):
    """A broker with topic "t", and a Producer and Consumer of it, both closed."""
    b = make_broker()
    b.create_topic("t")
    p = Producer(b)
    c = Consumer(b, "t")
    p.close()
    c.close()
    return b, p, c


def test_closed_error_on_everything_closed(make_broker):
    b, p, c = closed_clients(make_broker)
    with pytest.raises(minikafka.ClosedError):
        p.send("t", b"x")
    with pytest.raises(minikafka.ClosedError):
        c.poll()
    b.close()
    with pytest.raises(minikafka.ClosedError):
        b.create_topic("u")
    with pytest.raises(minikafka.ClosedError):
        Producer(b).send("t", b"x")


def test_entering_or_iterating_a_closed_object_raises_closed_error(make_broker):
    # `with` on a closed Broker, Producer or Consumer returned it, and `for
    # record in consumer` on a closed one ended at once: a loop over nothing,
    # where a closed file raises. (close() during iteration still ends it.)
    b, p, c = closed_clients(make_broker)
    for obj in (p, c):
        with pytest.raises(minikafka.ClosedError), obj:
            pass
    with pytest.raises(minikafka.ClosedError):
        iter(c)
    with pytest.raises(minikafka.ClosedError):
        for _ in c:
            pass
    b.close()
    with pytest.raises(minikafka.ClosedError), b:
        pass


def test_entering_or_iterating_a_closed_async_client_raises_closed_error(make_broker):
    import asyncio

    b = make_broker()
    b.create_topic("t")

    async def main() -> None:
        producer = minikafka.AsyncProducer(b)
        consumer = minikafka.AsyncConsumer(b, "t")
        await producer.close()
        await consumer.close()
        for obj in (producer, consumer):
            with pytest.raises(minikafka.ClosedError):
                async with obj:
                    pass
        with pytest.raises(minikafka.ClosedError):
            async for _ in consumer:
                pass

    asyncio.run(main())
    b.close()


def test_every_error_class_is_exported_from_the_package() -> None:
    import inspect

    import minikafka.errors

    classes = {name for name, obj in inspect.getmembers(minikafka.errors, inspect.isclass)
               if issubclass(obj, Exception) and obj.__module__ == "minikafka.errors"}
    assert classes <= set(minikafka.__all__)
    for name in minikafka.__all__:
        assert getattr(minikafka, name) is not None
