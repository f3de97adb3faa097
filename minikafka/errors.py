"""Every error minikafka raises derives from :class:`MiniKafkaError`."""

from __future__ import annotations

import builtins


class MiniKafkaError(Exception):
    """Base class of all errors raised by minikafka."""


class TopicExistsError(MiniKafkaError):
    """``create_topic`` named a topic that already exists."""


class TopicNotFoundError(MiniKafkaError):
    """A topic was named that does not exist in the data directory."""


class InvalidArgumentError(MiniKafkaError, ValueError):
    """An argument had the right type but a value that cannot be used."""


class InvalidTopicError(InvalidArgumentError):
    """A topic name breaks the naming rules (1-249 of ``[A-Za-z0-9._-]``)."""


class InvalidPartitionError(InvalidArgumentError):
    """A partition number outside ``0 .. partitions - 1`` of its topic."""


class RecordTooLargeError(MiniKafkaError):
    """A record is larger than ``max_record_bytes`` or than a segment can hold."""


class NoOffsetError(MiniKafkaError):
    """No valid position and ``auto_offset_reset="none"``."""


class CorruptLogError(MiniKafkaError):
    """A file on disk failed validation where no recovery rule applies."""


class ClosedError(MiniKafkaError):
    """A call was made on an object that has been closed."""


class CommitFailedError(MiniKafkaError):
    """A commit named a partition this group member does not own (it was
    reassigned in a rebalance, or never assigned): fenced off."""


class GroupNotEmptyError(MiniKafkaError):
    """An administrative change (reset offsets, delete) of a consumer group
    that has live members: stop its consumers first, as Kafka requires."""


class TimeoutError(MiniKafkaError, builtins.TimeoutError):
    """A call waited longer than its timeout (for a lock another process
    holds, or is frozen while holding, for a write, a flush). The message
    names what it waited for and, where known, who holds it."""
