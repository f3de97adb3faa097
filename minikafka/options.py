"""Broker options and per-topic configuration, with their defaults."""

from __future__ import annotations

from typing import Any

import attrs

from .errors import InvalidArgumentError
from .format import BATCH_HEADER_SIZE, RECORD_PREFIX_SIZE, SEGMENT_HEADER_SIZE, TRAILER_SIZE

MiB = 1 << 20
MIN_SEGMENT_BYTES = 4096
MAX_SEGMENT_BYTES = (1 << 32) - 1  # positions in the index are u32


def _optional_non_negative(name: str):
    def check(_inst: Any, _attr: Any, value: Any) -> None:
        if value is None:
            return
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int or None, not {type(value).__name__}")
        if value < 0:
            raise InvalidArgumentError(f"{name} must be >= 0, got {value}")

    return check


def _segment_bytes(_inst: Any, _attr: Any, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"segment_bytes must be an int, not {type(value).__name__}")
    if not MIN_SEGMENT_BYTES <= value <= MAX_SEGMENT_BYTES:
        raise InvalidArgumentError(
            f"segment_bytes must be between {MIN_SEGMENT_BYTES} and {MAX_SEGMENT_BYTES}, got {value}"
        )


def _positive_int(name: str):
    def check(_inst: Any, _attr: Any, value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        if value <= 0:
            raise InvalidArgumentError(f"{name} must be > 0, got {value}")

    return check


@attrs.frozen
class TopicConfig:
    """How one topic stores its partitions; saved in ``topic.json``."""

    partitions: int = attrs.field(default=1, validator=_positive_int("partitions"))
    #: Size of each preallocated segment file. A segment rolls when full.
    segment_bytes: int = attrs.field(default=16 * MiB, validator=_segment_bytes)
    #: Roll the active segment once it is this old (ms), if it holds data.
    segment_ms: int | None = attrs.field(
        default=7 * 24 * 3600 * 1000, validator=_optional_non_negative("segment_ms")
    )
    #: Delete closed segments whose newest record is older than this (ms).
    retention_ms: int | None = attrs.field(default=None, validator=_optional_non_negative("retention_ms"))
    #: Delete the oldest closed segments while the partition exceeds this.
    retention_bytes: int | None = attrs.field(
        default=None, validator=_optional_non_negative("retention_bytes")
    )
    #: Bytes of log between two sparse index entries.
    index_interval_bytes: int = attrs.field(
        default=4096, validator=_positive_int("index_interval_bytes")
    )

    @property
    def max_batch_bytes(self) -> int:
        """The largest batch one segment can hold."""
        return self.segment_bytes - SEGMENT_HEADER_SIZE - TRAILER_SIZE

    @property
    def max_record_bytes(self) -> int:
        """The largest encoded record one segment can hold."""
        return self.max_batch_bytes - BATCH_HEADER_SIZE

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


# The encoded size of a record with no key, value or headers.
RECORD_OVERHEAD = RECORD_PREFIX_SIZE


@attrs.frozen
class BrokerOptions:
    """Options of one :class:`~minikafka.Broker`; every one has a default.

    The topic-level fields are defaults for ``create_topic``; each topic
    records its own values in ``topic.json`` when it is created.
    """

    #: Default size of each preallocated segment file (16 MiB).
    segment_bytes: int = attrs.field(default=16 * MiB, validator=_segment_bytes)
    #: Default age (ms) at which a non-empty active segment rolls (7 days).
    segment_ms: int | None = attrs.field(
        default=7 * 24 * 3600 * 1000, validator=_optional_non_negative("segment_ms")
    )
    #: Default time retention (ms); None keeps records forever.
    retention_ms: int | None = attrs.field(default=None, validator=_optional_non_negative("retention_ms"))
    #: Default size retention per partition (bytes); None = unbounded.
    retention_bytes: int | None = attrs.field(
        default=None, validator=_optional_non_negative("retention_bytes")
    )
    #: Bytes of log between two sparse index entries.
    index_interval_bytes: int = attrs.field(
        default=4096, validator=_positive_int("index_interval_bytes")
    )
    #: msync every batch before it counts as written, and fsync group
    #: offset files: survives power loss, at the cost of a disk flush.
    fsync: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    #: Create unknown topics (one partition) on first ``send``.
    auto_create_topics: bool = attrs.field(
        default=False, validator=attrs.validators.instance_of(bool)
    )
    #: Where futexes are unavailable (not Linux), the longest sleep of a
    #: waiting reader between checks for records from other processes; it
    #: bounds the cross-process wake-up latency there. On Linux every append
    #: rings a futex doorbell that wakes readers at once (docs/concurrency.md).
    poll_interval: float = attrs.field(default=0.004)

    def topic_config(self, partitions: int, **overrides: Any) -> TopicConfig:
        values: dict[str, Any] = {
            "segment_bytes": self.segment_bytes,
            "segment_ms": self.segment_ms,
            "retention_ms": self.retention_ms,
            "retention_bytes": self.retention_bytes,
            "index_interval_bytes": self.index_interval_bytes,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return TopicConfig(partitions=partitions, **values)
