"""The immutable values users see: topic-partitions, records, metadata.

They are ``NamedTuple`` classes rather than attrs classes because one is
built per record on the hot paths; a tuple is the cheapest object Python
can create, and it is ordered, hashable and immutable as the API requires.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class TopicPartition(NamedTuple):
    """One partition of one topic; ordered and hashable."""

    topic: str
    partition: int


class RecordMetadata(NamedTuple):
    """Where a produced record was written."""

    topic: str
    partition: int
    offset: int
    timestamp: int


class Record(NamedTuple):
    """A consumed record. ``key``/``value`` are deserialized when a
    deserializer is set, ``bytes`` (or ``None``) otherwise."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: Any
    value: Any
    headers: tuple[tuple[str, bytes | None], ...]

    @property
    def topic_partition(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)
