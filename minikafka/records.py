"""The immutable values users see: topic-partitions, records, metadata.

They are ``NamedTuple`` classes rather than attrs classes because one is
built per record on the hot paths; a tuple is the cheapest object Python
can create, and it is ordered, hashable and immutable as the API requires.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class TopicPartition(NamedTuple):
    """One partition of one topic; ordered and hashable."""

    #: The topic's name.
    topic: str
    #: The partition number, from 0.
    partition: int


class RecordMetadata(NamedTuple):
    """Where a produced record was written."""

    #: The topic's name.
    topic: str
    #: The partition number, from 0.
    partition: int
    #: The record's offset in its partition.
    offset: int
    #: The record's timestamp (ms since the epoch).
    timestamp: int


class Record(NamedTuple):
    """A consumed record. ``key``/``value`` are deserialized when a
    deserializer is set, ``bytes`` (or ``None``) otherwise."""

    #: The topic's name.
    topic: str
    #: The partition number, from 0.
    partition: int
    #: The record's offset in its partition.
    offset: int
    #: The record's timestamp (ms since the epoch), as given to ``send`` or the time of sending.
    timestamp: int
    #: The key (None: no key).
    key: Any
    #: The value (None: a tombstone or no value).
    value: Any
    #: (name, value) pairs in the order sent; names may repeat.
    headers: tuple[tuple[str, bytes | None], ...]

    @property
    def topic_partition(self) -> TopicPartition:
        """The record's topic and partition as a TopicPartition."""
        return TopicPartition(self.topic, self.partition)
