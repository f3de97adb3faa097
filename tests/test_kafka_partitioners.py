"""Key hashes: xxh3 (minikafka's default) and murmur2 (the Java client's)."""

from __future__ import annotations

import uuid

import pytest
import xxhash
from hypothesis import given
from hypothesis import strategies as st

import minikafka
from minikafka.partitioners import key_hash, murmur2, murmur2_hash, xxh3

# Apache Kafka's clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java
# (testMurmur2): Utils.murmur2(bytes) for these keys.
JAVA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("key", "expected"), sorted(JAVA_VECTORS.items()))
def test_murmur2_matches_java_utils(key: bytes, expected: int) -> None:
    assert murmur2_hash(key) == expected


def test_murmur2_partition_is_java_to_positive_mod() -> None:
    for key, h in JAVA_VECTORS.items():
        assert murmur2(key, 12) == (h & 0x7FFFFFFF) % 12


@given(st.binary(max_size=64), st.integers(1, 1000))
def test_xxh3_is_the_topic_hash(key: bytes, partitions: int) -> None:
    assert xxh3(key, partitions) == xxhash.xxh3_64_intdigest(key) % partitions
    assert 0 <= murmur2(key, partitions) < partitions


def test_key_hash_names() -> None:
    assert key_hash("xxh3") is xxh3
    assert key_hash("murmur2") is murmur2
    with pytest.raises(minikafka.InvalidArgumentError, match="partitioner"):
        key_hash("crc32")
    with pytest.raises(TypeError, match="partitioner"):
        key_hash(3)  # type: ignore[arg-type]


def test_murmur2_agrees_with_librdkafka_on_a_broker(kafka_bootstrap: str) -> None:
    """librdkafka's ``murmur2_random`` partitioner (the Java-compatible one)
    puts each key where :func:`murmur2` says."""
    from confluent_kafka import Producer

    partitions = 5
    name = f"murmur-{uuid.uuid4().hex[:10]}"
    with minikafka.connect(f"kafka://{kafka_bootstrap}") as broker:
        broker.create_topic(name, partitions=partitions)
    got: dict[bytes, int] = {}
    p = Producer({"bootstrap.servers": kafka_bootstrap, "partitioner": "murmur2_random"})
    keys = [f"user-{i}".encode() for i in range(40)] + list(JAVA_VECTORS)
    for key in keys:
        p.produce(name, b"v", key, on_delivery=lambda err, msg: got.__setitem__(msg.key(), msg.partition()))
    assert p.flush(15) == 0
    assert got == {key: murmur2(key, partitions) for key in keys}
