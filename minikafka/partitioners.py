"""Key hashes that choose a record's partition.

``xxh3`` is minikafka's default on every backend, so a key lands on the same
partition in a data directory and on a Kafka cluster (data mirrored between
them keeps key -> partition). ``murmur2`` is the Java client's default
partitioner (``org.apache.kafka.common.utils.Utils.murmur2``, seed
``0x9747b28c``, partition ``(h & 0x7fffffff) % n``), for topics shared with
Java producers; librdkafka calls it ``murmur2_random``.

Each function takes the serialized key and the number of partitions and
returns a partition. Keyless records do not come here: the producer spreads
them itself.
"""

from __future__ import annotations

from collections.abc import Callable

from xxhash import xxh3_64_intdigest

from .errors import InvalidArgumentError

KeyHash = Callable[[bytes, int], int]

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2_hash(data: bytes) -> int:
    """Java's ``Utils.murmur2(data)`` as a signed 32-bit int (MurmurHash2, 32-bit,
    little-endian 4-byte blocks, seed 0x9747b28c)."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    tail = length & ~3
    for i in range(0, tail, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length & 3
    # The tail bytes are signed in Java (byte & 0xff keeps them unsigned here).
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def murmur2(key: bytes, partitions: int) -> int:
    """The Java client's partition for ``key``: ``(murmur2(key) & 0x7fffffff) % partitions``."""
    return (murmur2_hash(bytes(key)) & 0x7FFFFFFF) % partitions


def xxh3(key: bytes, partitions: int) -> int:
    """minikafka's partition for ``key``: ``xxh3_64(key) % partitions``."""
    return xxh3_64_intdigest(key) % partitions


KEY_HASHES: dict[str, KeyHash] = {"xxh3": xxh3, "murmur2": murmur2}


def partition_for(key: bytes, partitions: int) -> int:
    """``Topic.partition_for`` on every backend: xxh3 of a serialized key
    (``str`` is encoded UTF-8), TypeError for anything else."""
    if not isinstance(key, (bytes, bytearray, memoryview)):
        if isinstance(key, str):
            try:
                key = key.encode()
            except UnicodeEncodeError as e:  # a lone surrogate: as send() says it
                raise InvalidArgumentError(f"key {key[:40]!r} is not valid UTF-8 text "
                                           f"({e.reason} at position {e.start})") from None
        else:
            raise TypeError(f"key must be bytes, not {type(key).__name__}")
    return xxh3_64_intdigest(key) % partitions


def key_hash(name: str) -> KeyHash:
    """The key hash called ``name`` (``"xxh3"`` or ``"murmur2"``)."""
    if not isinstance(name, str):
        raise TypeError(f"partitioner name must be a str, not {type(name).__name__}")
    try:
        return KEY_HASHES[name]
    except KeyError:
        raise InvalidArgumentError(
            f"partitioner must be one of {sorted(KEY_HASHES)} or a callable, got {name!r}"
        ) from None
