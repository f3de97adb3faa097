"""Every option of the library, validated one way: frozen attrs classes.

``BrokerOptions`` (a data directory), ``TopicConfig`` (one topic, saved in
``topic.json``), ``ProducerConfig`` and ``ConsumerConfig``. They share the
validators below: a wrong type raises ``TypeError`` and a bad value raises
``InvalidArgumentError``, both naming the option. The five per-topic
storage settings and their defaults are written once, in
:class:`TopicSettings`; the broker's defaults and each topic's config
inherit them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import attrs

from .errors import InvalidArgumentError
from .format import BATCH_HEADER_SIZE, SEGMENT_HEADER_SIZE, TRAILER_SIZE

MiB = 1 << 20
MIN_SEGMENT_BYTES = 4096
MAX_SEGMENT_BYTES = (1 << 32) - 1  # positions in the index are u32
AUTO_OFFSET_RESETS = ("earliest", "latest", "none")

Validator = Callable[[Any, Any, Any], None]


def _type_name(value: Any) -> str:
    return type(value).__name__


def integer(name: str, minimum: int = 0, maximum: int | None = None, optional: bool = False) -> Validator:
    """An int (never a bool) in ``minimum..maximum``; None too if ``optional``."""

    def check(_inst: Any, _attr: Any, value: Any) -> None:
        if value is None and optional:
            return
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int{' or None' if optional else ''}, not {_type_name(value)}")
        if maximum is not None and not minimum <= value <= maximum:
            raise InvalidArgumentError(f"{name} must be between {minimum} and {maximum}, got {value}")
        if value < minimum:
            raise InvalidArgumentError(f"{name} must be >= {minimum}, got {value}")

    return check


def wait_limit(timeout: Any) -> float | None:
    """A call's ``timeout`` argument, checked: the seconds it may wait, or
    None for no limit (None, or more than a lock's wait can take:
    ``threading.TIMEOUT_MAX``, ~49 days, OverflowError beyond). TypeError /
    InvalidArgumentError naming ``timeout`` for anything but a number >= 0
    or None — NaN too, which would wait for ever."""
    if timeout is None:
        return None
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool):
        raise TypeError(f"timeout must be a number or None, not {_type_name(timeout)}")
    if not timeout >= 0:
        raise InvalidArgumentError(f"timeout must be a number >= 0 or None, got {timeout!r}")
    return None if timeout >= threading.TIMEOUT_MAX else timeout


def number(name: str, positive: bool = False, optional: bool = False) -> Validator:
    """An int or float (never a bool), >= 0 (> 0 if ``positive``); None too
    if ``optional``."""

    def check(_inst: Any, _attr: Any, value: Any) -> None:
        if value is None and optional:
            return
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise TypeError(
                f"{name} must be a number{' or None' if optional else ''}, not {_type_name(value)}"
            )
        if not (value > 0 if positive else value >= 0):  # also rejects NaN
            raise InvalidArgumentError(f"{name} must be {'>' if positive else '>='} 0, got {value!r}")

    return check


def boolean(name: str) -> Validator:
    def check(_inst: Any, _attr: Any, value: Any) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool, not {_type_name(value)}")

    return check


def optional_callable(name: str) -> Validator:
    def check(_inst: Any, _attr: Any, value: Any) -> None:
        if value is not None and not callable(value):
            raise TypeError(f"{name} must be callable, not {_type_name(value)}")

    return check


def partitioner_option(_inst: Any, _attr: Any, value: Any) -> None:
    """None, a callable, or a key hash's name ("xxh3", "murmur2")."""
    if value is None or callable(value):
        return
    if not isinstance(value, str):
        raise TypeError(f"partitioner must be callable or a str, not {_type_name(value)}")
    if value not in KEY_HASH_NAMES:
        raise InvalidArgumentError(
            f"partitioner must be a callable or one of {', '.join(KEY_HASH_NAMES)}; got {value!r}")


#: The key hashes a Producer's ``partitioner`` may name (partitioners.py).
KEY_HASH_NAMES = ("xxh3", "murmur2")


def one_of(name: str, choices: tuple[str, ...]) -> Validator:
    def check(_inst: Any, _attr: Any, value: Any) -> None:
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str, not {_type_name(value)}")
        if value not in choices:
            raise InvalidArgumentError(f"{name} must be one of {', '.join(choices)}; got {value!r}")

    return check


def optional_name(name: str) -> Validator:
    """None or a non-empty str."""

    def check(_inst: Any, _attr: Any, value: Any) -> None:
        if value is None:
            return
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str or None, not {_type_name(value)}")
        if not value:
            raise InvalidArgumentError(f"{name} must not be empty")
        try:
            value.encode()
        except UnicodeEncodeError as e:
            raise InvalidArgumentError(f"{name} {value!r} is not valid Unicode ({e.reason})") from None

    return check


def make(cls: type, owner: str, **kwargs: Any) -> Any:
    """``cls(**kwargs)``, with an unknown keyword reported as ``owner``'s."""
    try:
        return cls(**kwargs)
    except TypeError as e:
        if "unexpected keyword" in str(e):
            raise TypeError(f"{owner}: {e}") from None
        raise


@attrs.frozen
class TopicSettings:
    """The storage settings of a topic, with their defaults (the one place
    they are written). ``BrokerOptions`` holds the defaults for new topics;
    ``TopicConfig`` what one topic uses."""

    #: Size of each preallocated segment file (16 MiB). A segment rolls when full.
    segment_bytes: int = attrs.field(
        default=16 * MiB, validator=integer("segment_bytes", MIN_SEGMENT_BYTES, MAX_SEGMENT_BYTES)
    )
    #: Roll the active segment once it is this old (ms), if it holds data (7 days).
    #: At least 1, as Kafka's ``segment.ms``; each roll preallocates a whole
    #: ``segment_bytes`` file, so a small value costs disk per batch.
    segment_ms: int | None = attrs.field(
        default=7 * 24 * 3600 * 1000, validator=integer("segment_ms", 1, optional=True)
    )
    #: Delete closed segments whose newest record is older than this (ms); None keeps them.
    retention_ms: int | None = attrs.field(default=None, validator=integer("retention_ms", optional=True))
    #: Delete the oldest closed segments while a partition exceeds this; None = unbounded.
    retention_bytes: int | None = attrs.field(
        default=None, validator=integer("retention_bytes", optional=True)
    )
    #: Bytes of log between two sparse index entries.
    index_interval_bytes: int = attrs.field(default=4096, validator=integer("index_interval_bytes", 1))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The names of the topic settings, in definition order."""
        return tuple(f.name for f in attrs.fields(TopicSettings))

    def settings(self) -> dict[str, Any]:
        """The topic settings alone (for a subclass: without its own fields)."""
        return {name: getattr(self, name) for name in TopicSettings.names()}


#: Most partitions of one topic in a data directory. Each is a directory
#: with its own files, locks and mappings (10 000 take seconds to create);
#: a mistyped count (-p 100000000000) must fail at once, not run until the
#: disk is full.
MAX_PARTITIONS = 10_000


@attrs.frozen
class TopicConfig(TopicSettings):
    """How one topic stores its partitions; saved in ``topic.json``."""

    #: Number of partitions (fixed when the topic is created), at most
    #: MAX_PARTITIONS.
    partitions: int = attrs.field(default=1, validator=integer("partitions", 1, MAX_PARTITIONS),
                                  kw_only=True)

    @property
    def max_batch_bytes(self) -> int:
        """The largest batch one segment can hold."""
        return self.segment_bytes - SEGMENT_HEADER_SIZE - TRAILER_SIZE

    @property
    def max_record_bytes(self) -> int:
        """The largest encoded record one segment can hold."""
        return self.max_batch_bytes - BATCH_HEADER_SIZE

    def to_json(self) -> dict[str, Any]:
        """Every field by name: what ``topic.json`` stores."""
        return attrs.asdict(self)


@attrs.frozen
class BrokerOptions(TopicSettings):
    """Options of one :class:`~minikafka.Broker`; every one has a default.

    The topic settings (inherited from :class:`TopicSettings`) are defaults
    for ``create_topic``; each topic records its own values in
    ``topic.json`` when it is created.
    """

    #: msync every batch before it counts as written, and fsync group
    #: offset files: survives power loss, at the cost of a disk flush.
    fsync: bool = attrs.field(default=False, validator=boolean("fsync"))
    #: Create unknown topics (one partition) on first ``send``.
    auto_create_topics: bool = attrs.field(
        default=False, validator=boolean("auto_create_topics")
    )
    #: Where futexes are unavailable (not Linux), the longest sleep of a
    #: waiting reader between checks for records from other processes; it
    #: bounds the cross-process wake-up latency there. On Linux every append
    #: rings a futex doorbell that wakes readers at once (docs/concurrency.md).
    poll_interval: float = attrs.field(
        default=0.004, validator=number("poll_interval", positive=True)
    )

    #: Longest wait (s) of a call that takes no timeout of its own (the
    #: constructors, subscribe, commit, close, a group join) for a lock held
    #: by another thread or process; past it they raise
    #: :class:`~minikafka.TimeoutError` naming what they waited for.
    request_timeout: float = attrs.field(
        default=30.0, validator=number("request_timeout", positive=True)
    )

    def topic_config(self, partitions: int, **overrides: Any) -> TopicConfig:
        """The config of a new topic: these defaults, then ``overrides``
        (topic settings; None means "the default")."""
        unknown = sorted(set(overrides) - set(TopicSettings.names()))
        if unknown:
            raise TypeError(f"create_topic() got an unexpected keyword argument {unknown[0]!r}")
        values = self.settings()
        values.update({k: v for k, v in overrides.items() if v is not None})
        return TopicConfig(partitions=partitions, **values)


@attrs.frozen
class ProducerConfig:
    """Options of a :class:`~minikafka.Producer` (keywords of its constructor)."""

    #: Applied to every non-None key before it is written.
    key_serializer: Callable[[Any], Any] | None = attrs.field(
        default=None, validator=optional_callable("key_serializer")
    )
    #: Applied to every non-None value before it is written.
    value_serializer: Callable[[Any], Any] | None = attrs.field(
        default=None, validator=optional_callable("value_serializer")
    )
    #: ``partitioner(key, num_partitions) -> int`` for records without an explicit
    #: partition, or the key hash of keyed ones: ``"xxh3"`` (the default) or
    #: ``"murmur2"`` (the Java client's).
    partitioner: Callable[[bytes | None, int], int] | str | None = attrs.field(
        default=None, validator=partitioner_option
    )
    #: Longest time (ms) a record waits for its batch to fill; 0 writes every send at once.
    linger_ms: float = attrs.field(default=5, validator=number("linger_ms"))
    #: Bytes of records per partition batch.
    batch_size: int = attrs.field(default=16384, validator=integer("batch_size", 1))
    #: Largest record accepted (never more than one segment holds).
    max_record_bytes: int = attrs.field(default=MiB, validator=integer("max_record_bytes", 1))


#: Longest heartbeat interval (s): Kafka's ``heartbeat.interval.ms`` is an int32
#: of milliseconds, and much longer waits overflow the thread's timed wait.
MAX_HEARTBEAT_INTERVAL = (2**31 - 1) / 1000
#: Shortest heartbeat interval (s): one of Kafka's milliseconds. Shorter ones
#: only spin the heartbeat thread (1 ns took ~40% of a core).
MIN_HEARTBEAT_INTERVAL = 0.001


def heartbeat_option(inst: Any, _attr: Any, value: float) -> None:
    """``heartbeat_interval`` below ``session_timeout``, and from
    :data:`MIN_HEARTBEAT_INTERVAL` to :data:`MAX_HEARTBEAT_INTERVAL`."""
    if value < MIN_HEARTBEAT_INTERVAL:
        raise InvalidArgumentError(
            f"heartbeat_interval must be at least {MIN_HEARTBEAT_INTERVAL} s (1 ms), got {value!r}"
        )
    if value > MAX_HEARTBEAT_INTERVAL:
        raise InvalidArgumentError(
            f"heartbeat_interval must be at most {MAX_HEARTBEAT_INTERVAL} s, got {value!r}"
        )
    if not value < inst.session_timeout:
        raise InvalidArgumentError(
            f"heartbeat_interval ({value!r} s) must be less than session_timeout "
            f"({inst.session_timeout!r} s): a member's peers would drop it between two heartbeats"
        )


@attrs.frozen
class ConsumerConfig:
    """Options of a :class:`~minikafka.Consumer` (keywords of its
    constructor); see its docstring and docs/api.md for their meaning."""

    #: The consumer group to join on subscribe (and commit offsets for); None: no group.
    group_id: str | None = attrs.field(default=None, validator=optional_name("group_id"))
    #: Where a partition without a committed offset starts: "earliest" (the
    #: first retained record), "latest" (the end) or "none" (NoOffsetError).
    auto_offset_reset: str = attrs.field(
        default="latest", validator=one_of("auto_offset_reset", AUTO_OFFSET_RESETS)
    )
    #: Commit the positions every ``auto_commit_interval`` s, on rebalance and on close (groups only).
    enable_auto_commit: bool = attrs.field(default=True, validator=boolean("enable_auto_commit"))
    #: Seconds between automatic commits of the positions (checked in poll).
    auto_commit_interval: float = attrs.field(default=5.0, validator=number("auto_commit_interval"))
    #: Applied to every non-None key as records are read.
    key_deserializer: Callable[[bytes], Any] | None = attrs.field(
        default=None, validator=optional_callable("key_deserializer")
    )
    #: Applied to every non-None value as records are read.
    value_deserializer: Callable[[bytes], Any] | None = attrs.field(
        default=None, validator=optional_callable("value_deserializer")
    )
    #: Most records one ``poll`` returns.
    max_poll_records: int = attrs.field(default=500, validator=integer("max_poll_records", 1))
    #: Iteration ends after this many seconds without a record; None: until close().
    consumer_timeout: float | None = attrs.field(
        default=None, validator=number("consumer_timeout", optional=True)
    )
    #: ``on_assign(partitions)``: runs in the polling thread when partitions arrive.
    on_assign: Callable[[set[Any]], Any] | None = attrs.field(
        default=None, validator=optional_callable("on_assign")
    )
    #: ``on_revoke(partitions)``: runs before partitions are given up (commit there by hand).
    on_revoke: Callable[[set[Any]], Any] | None = attrs.field(
        default=None, validator=optional_callable("on_revoke")
    )
    #: A member whose heartbeat stopped this long (s) is dropped from its group.
    session_timeout: float = attrs.field(default=10.0, validator=number("session_timeout", positive=True))
    #: Seconds between heartbeats (and checks for dead peers); less than
    #: ``session_timeout`` (as in Kafka), or members drop each other between beats.
    heartbeat_interval: float = attrs.field(
        default=0.1, validator=[number("heartbeat_interval", positive=True), heartbeat_option]
    )
    #: A member that does not poll for this long (s) leaves its group.
    max_poll_interval: float = attrs.field(
        default=300.0, validator=number("max_poll_interval", positive=True)
    )
    #: Iteration ends once every assigned partition is read to its end offset.
    stop_at_end: bool = attrs.field(default=False, validator=boolean("stop_at_end"))
