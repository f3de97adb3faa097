"""The front half every producer backend shares: argument checks,
serializers, partitioners and the record size limit (``SendFront``), and
the small helpers backends use on their hot paths (``to_bytes``,
``check_timestamp``, ``now_ms``, ``deadline_of``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from .errors import InvalidArgumentError, InvalidPartitionError, RecordTooLargeError
from .format import RECORD_PREFIX_SIZE, encode_headers
from .options import ProducerConfig, wait_limit
from .partitioners import murmur2

#: What ``send`` takes as headers: a mapping or (name, value) pairs; values
#: bytes-like, ``str`` (UTF-8) or ``None``, as docs/api.md says.
HeaderValue = bytes | bytearray | memoryview | str | None
HeadersArg = Mapping[str, HeaderValue] | Iterable[tuple[str, HeaderValue]]
_time_ns = time.time_ns


def to_bytes(data: Any, what: str) -> bytes:
    """bytes for the wire from a non-None key or value (``str``: UTF-8);
    TypeError naming ``what`` for any other type, InvalidArgumentError for
    text that is not UTF-8 (a lone surrogate)."""
    if type(data) is bytes:
        return data
    if isinstance(data, str):
        try:
            return data.encode()
        except UnicodeEncodeError as e:
            raise InvalidArgumentError(f"{what} {data[:40]!r} is not valid UTF-8 text "
                                       f"({e.reason} at position {e.start})") from None
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(
        f"{what} must be bytes, bytearray, memoryview, str or None, not {type(data).__name__} "
        f"(set a {what}_serializer, or make the one set return one of these)"
    )


def as_list(items: Iterable[Any], what: str) -> list[Any]:
    """``send_many``'s values or keys as a list; TypeError naming ``what``
    for one value (bytes, str: iterable, but not of values) or a non-iterable."""
    if isinstance(items, list):
        return items
    if isinstance(items, (bytes, bytearray, memoryview, str)):
        raise TypeError(f"send_many {what} must be an iterable of {what}, not one "
                        f"{type(items).__name__} (for one record use send)")
    try:
        iterator = iter(items)
    except TypeError:
        raise TypeError(f"send_many {what} must be an iterable of {what}, "
                        f"not {type(items).__name__}") from None
    return list(iterator)


#: The largest timestamp a record holds (a signed 64-bit field, format.md).
MAX_TIMESTAMP_MS = 2**63 - 1


def check_timestamp(timestamp_ms: Any) -> int:
    if not isinstance(timestamp_ms, int) or isinstance(timestamp_ms, bool):
        raise TypeError(f"timestamp_ms must be an int, not {type(timestamp_ms).__name__}")
    if not 0 <= timestamp_ms <= MAX_TIMESTAMP_MS:
        raise InvalidArgumentError(f"timestamp_ms must be from 0 to 2**63 - 1 (ms since the epoch), "
                                   f"got {timestamp_ms}")
    return int(timestamp_ms)


def now_ms() -> int:
    return _time_ns() // 1_000_000


def deadline_of(timeout: Any) -> float | None:
    """The ``time.monotonic()`` instant a call given ``timeout`` seconds
    must return by; None for no limit (``wait_limit``, which checks it)."""
    limit = wait_limit(timeout)
    return None if limit is None else time.monotonic() + limit


class Route:
    """What the front half knows of one topic: its name, partition count,
    keyed partition function, record size limit, and the partition keyless
    records go to now (``sticky``; the backend moves it on per batch)."""

    __slots__ = ("max_record", "name", "partition_for", "partitions", "sticky")

    def __init__(self, name: str, partitions: int, partition_for: Callable[[bytes], int],
                 max_record: int) -> None:
        self.name = name
        self.partitions = partitions
        self.partition_for = partition_for
        self.max_record = max_record
        self.sticky = 0


class Prepared(NamedTuple):
    """One record, checked and serialized, with its partition chosen.
    ``headers`` is the encoded header block (``format.decode_headers(h, 0)``
    gives the pairs back); ``size`` its encoded size in a batch."""

    partition: int
    key: bytes | None
    value: bytes | None
    headers: bytes
    timestamp: int
    size: int


class SendFront:
    """Serializers, partitioner and record checks of one producer."""

    __slots__ = ("custom", "key_hash", "key_serializer", "partitioner", "value_serializer")

    def __init__(self, config: ProducerConfig) -> None:
        self.key_serializer = config.key_serializer
        self.value_serializer = config.value_serializer
        p = config.partitioner
        self.partitioner = None if p is None or isinstance(p, str) else p
        # partitioner="murmur2": keyed records by the Java client's hash ("xxh3": the topic's own)
        self.key_hash = murmur2 if p == "murmur2" else None
        # Anything that makes send() leave its fast path.
        self.custom = (self.key_serializer is not None or self.value_serializer is not None
                       or self.partitioner is not None or self.key_hash is not None)

    def serialize(self, key: Any, value: Any) -> tuple[Any, Any]:
        """Apply the serializers to a non-None key and value."""
        if key is not None and self.key_serializer is not None:
            key = self.key_serializer(key)
        if value is not None and self.value_serializer is not None:
            value = self.value_serializer(value)
        return key, value

    def partition_of(self, route: Route, key: bytes | None) -> int:
        """Where a record without an explicit partition goes: the custom
        partitioner's choice, the key's partition, or the sticky one."""
        if self.partitioner is not None:
            n = route.partitions
            partition = self.partitioner(key, n)
            if type(partition) is not int or not 0 <= partition < n:
                raise InvalidPartitionError(
                    f"partitioner returned {partition!r} for topic {route.name!r}, which has "
                    f"partitions 0..{n - 1}"
                )
            return partition
        if key is not None:
            if route.partitions == 1:
                return 0
            return route.partition_for(key) if self.key_hash is None else self.key_hash(key, route.partitions)
        return route.sticky

    @staticmethod
    def check_partition(route: Route, partition: Any) -> int:
        if not isinstance(partition, int) or isinstance(partition, bool):
            raise TypeError(f"partition must be an int, not {type(partition).__name__}")
        if not 0 <= partition < route.partitions:
            raise InvalidPartitionError(
                f"partition {partition} out of range for topic {route.name!r} "
                f"(partitions 0..{route.partitions - 1})"
            )
        return partition

    def prepare(self, route: Route, value: Any, key: Any, partition: int | None,
                headers: HeadersArg | None, timestamp_ms: int | None) -> Prepared:
        """Check and serialize one record and choose its partition; raises
        (TypeError, InvalidPartitionError, RecordTooLargeError) before
        anything is buffered."""
        if self.custom:
            key, value = self.serialize(key, value)
        if key is not None and type(key) is not bytes:
            key = to_bytes(key, "key")
        if value is not None and type(value) is not bytes:
            value = to_bytes(value, "value")
        if partition is None:
            partition = self.partition_of(route, key)
        elif type(partition) is not int or not 0 <= partition < route.partitions:
            self.check_partition(route, partition)
        if timestamp_ms is None:
            ts = _time_ns() // 1_000_000
        elif type(timestamp_ms) is int and 0 <= timestamp_ms <= MAX_TIMESTAMP_MS:
            ts = timestamp_ms
        else:
            ts = check_timestamp(timestamp_ms)
        hdr = b"" if headers is None else encode_headers(headers)
        size = RECORD_PREFIX_SIZE + len(hdr) + (len(key) if key else 0) + (len(value) if value else 0)
        if size > route.max_record:
            raise RecordTooLargeError(
                f"record of {size} bytes for topic {route.name!r} exceeds the limit of "
                f"{route.max_record} bytes (max_record_bytes, or what one segment holds)"
            )
        return Prepared(partition, key, value, hdr, ts, size)

    def prepare_many(self, route: Route, values: Iterable[Any], keys: Iterable[Any] | None,
                     partition: int | None, timestamp_ms: int | None,
                     ) -> tuple[list[Any], list[Any] | None, int]:
        """``send_many``'s arguments as lists (serialized), checked for
        matching lengths and partition; returns (values, keys, timestamp).
        Keys and values are type-checked when they are encoded."""
        values = as_list(values, "values")
        if keys is not None:
            keys = as_list(keys, "keys")
            if len(keys) != len(values):
                raise InvalidArgumentError(
                    f"send_many: {len(keys)} keys for {len(values)} values (lengths must match)"
                )
        if partition is not None:
            self.check_partition(route, partition)
        ts = now_ms() if timestamp_ms is None else check_timestamp(timestamp_ms)
        if self.key_serializer is not None or self.value_serializer is not None:
            pairs = [self.serialize(k, v)
                     for k, v in zip(keys or [None] * len(values), values, strict=True)]
            keys = [k for k, _ in pairs] if keys is not None else None
            values = [v for _, v in pairs]
        return values, keys, ts

    def partitions_of(self, route: Route, keys: list[Any]) -> list[int]:
        """Each keyed record's partition (``send_many``); keys as given."""
        return [self.partition_of(route, None if k is None else to_bytes(k, "key")) for k in keys]
