"""confluent-kafka errors as minikafka's.

``translate(exc, what)`` turns a ``KafkaException`` (or ``KafkaError``) into
the minikafka error a data directory would raise for the same mistake, its
message naming what was being done and the broker's own words.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import (
    GroupNotEmptyError,
    InvalidArgumentError,
    InvalidPartitionError,
    InvalidTopicError,
    MiniKafkaError,
    RecordTooLargeError,
    TimeoutError,
    TopicExistsError,
    TopicNotFoundError,
)

T = TypeVar("T")

__all__ = ["KafkaBackendError", "TimeoutError", "error_class", "make_client", "translate"]


class KafkaBackendError(MiniKafkaError):
    """The cluster refused or failed a request no other minikafka error describes."""


def _by_name() -> dict[int, type[MiniKafkaError]]:
    from confluent_kafka import KafkaError as E

    table: dict[str, type[MiniKafkaError]] = {
        "TOPIC_ALREADY_EXISTS": TopicExistsError,
        "UNKNOWN_TOPIC_OR_PART": TopicNotFoundError,
        "_UNKNOWN_TOPIC": TopicNotFoundError,
        "_UNKNOWN_PARTITION": InvalidPartitionError,
        "INVALID_TOPIC_EXCEPTION": InvalidTopicError,
        "INVALID_PARTITIONS": InvalidArgumentError,
        "INVALID_CONFIG": InvalidArgumentError,
        "INVALID_REPLICATION_FACTOR": InvalidArgumentError,
        "MSG_SIZE_TOO_LARGE": RecordTooLargeError,
        "_MSG_SIZE_TOO_LARGE": RecordTooLargeError,
        "RECORD_LIST_TOO_LARGE": RecordTooLargeError,
        "_TIMED_OUT": TimeoutError,
        "_TIMED_OUT_QUEUE": TimeoutError,
        "REQUEST_TIMED_OUT": TimeoutError,
        "_MSG_TIMED_OUT": TimeoutError,
        "_TRANSPORT": TimeoutError,  # no broker reachable within the timeout
        "_ALL_BROKERS_DOWN": TimeoutError,
        "_WAIT_COORD": TimeoutError,  # a commit found no group coordinator (within session.timeout.ms)
        # not acknowledged when close() gave up (KafkaRecordWriter purges them): maybe written
        "_PURGE_QUEUE": TimeoutError,
        "_PURGE_INFLIGHT": TimeoutError,
        "_INVALID_ARG": InvalidArgumentError,  # an unknown or bad client configuration property
        "NON_EMPTY_GROUP": GroupNotEmptyError,  # delete_group of a group with members (Apache Kafka)
        "GROUP_ID_NOT_FOUND": InvalidArgumentError,
    }
    return {getattr(E, name): cls for name, cls in table.items() if hasattr(E, name)}


_TABLE: dict[int, type[MiniKafkaError]] | None = None


def error_class(code: int) -> type[MiniKafkaError]:
    global _TABLE
    if _TABLE is None:
        _TABLE = _by_name()
    return _TABLE.get(code, KafkaBackendError)


def make_client(factory: Callable[[dict[str, Any]], T], config: dict[str, Any], what: str,
                log: Any = None) -> T:
    """``factory(config)``, a confluent-kafka client logging to ``log`` (a
    :class:`~minikafka.kafka.logs.ClientLog`, a new one if None) unless
    ``config`` names its own ``logger``; a configuration it refuses (an
    unknown property, a bad value: from the URL's query or the
    ``*_config`` dicts) raises InvalidArgumentError naming the property."""
    from .logs import ClientLog

    try:
        return factory({"logger": log if log is not None else ClientLog(), **config})
    except Exception as e:
        raise translate(e, f"configuring the Kafka {what}") from None


def translate(exc: Any, what: str) -> MiniKafkaError:
    """The minikafka error for ``exc`` (a KafkaException, KafkaError or other
    exception raised by confluent-kafka) while doing ``what``."""
    from confluent_kafka import KafkaError, KafkaException

    if isinstance(exc, MiniKafkaError):
        return exc
    err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else exc
    if isinstance(err, KafkaError):
        cls = error_class(err.code())
        return cls(f"{what}: {err.str()} ({err.name()})")
    if isinstance(exc, builtins.TimeoutError):
        return TimeoutError(f"{what}: timed out")
    return KafkaBackendError(f"{what}: {exc}")
