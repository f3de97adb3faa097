"""Helpers for testing code that uses minikafka: small brokers and reading a topic back.

- :func:`read_topic`: every retained record of a topic, without committing.
- :func:`small_broker` and :data:`TEST_SEGMENT_BYTES`: a Broker sized for
  tests (64 KiB segments instead of 16 MiB), for use outside pytest.
- ``minikafka.testing.plugin``: the pytest plugin (fixture
  ``minikafka_broker``), registered when minikafka is installed.
- ``minikafka.testing.strategies``: hypothesis strategies (imports
  hypothesis, which minikafka does not require).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from ..broker import Broker
from ..consumer import Consumer
from ..errors import InvalidArgumentError
from ..errors import TimeoutError as MiniKafkaTimeoutError
from ..records import Record, TopicPartition

#: Segment size for tests: each partition preallocates 64 KiB instead of
#: 16 MiB, so 40 partitions cost a few MB, not 643 MiB (docs/testing.md).
#: A record must fit in one segment: raise it for records over ~60 KiB.
TEST_SEGMENT_BYTES = 64 * 1024

__all__ = ["TEST_SEGMENT_BYTES", "read_topic", "small_broker"]


def small_broker(path: str | os.PathLike[str], **options: Any) -> Broker:
    """A :class:`~minikafka.Broker` on ``path`` with test-sized segments
    (``segment_bytes=TEST_SEGMENT_BYTES`` unless given, as a keyword or in
    an ``options=BrokerOptions(...)`` object, which is then used as is)."""
    if options.get("options") is None:
        options.setdefault("segment_bytes", TEST_SEGMENT_BYTES)
    return Broker(path, **options)


def read_topic(broker: Any, topic: str, partition: int | None = None, *, timeout: float = 10.0,
               key_deserializer: Callable[[bytes], Any] | None = None,
               value_deserializer: Callable[[bytes], Any] | None = None) -> list[Record]:
    """Every retained record of ``topic`` (or of one ``partition``), in
    partition then offset order, as of the call: records appended to any of
    its partitions while it reads are left out. Uses a group-less consumer,
    so nothing is committed. Raises :class:`minikafka.TimeoutError` (also
    the builtin ``TimeoutError``) when, ``timeout`` s after the call, records
    before the end are still not readable; reading what is readable never
    times out, so on a data directory ``timeout=0`` reads everything already
    there (a Kafka cluster needs time to fetch: give it a timeout).
    """
    if not isinstance(broker, Broker) and not callable(getattr(broker, "consumer_backend", None)):
        # e.g. a path: say so, not "'str' object has no attribute 'topic'"
        raise TypeError(f"read_topic needs a minikafka.Broker (or what minikafka.connect returns), "
                        f"not {type(broker).__name__}")
    if partition is not None and (not isinstance(partition, int) or isinstance(partition, bool)):
        raise TypeError(f"partition must be an int or None, not {type(partition).__name__}")
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool):
        raise TypeError(f"timeout must be a number of seconds, not {type(timeout).__name__}")
    if not timeout >= 0:  # NaN too, which would never expire
        raise InvalidArgumentError(f"timeout must be a number of seconds >= 0, got {timeout!r}")
    count = broker.topic(topic).partitions
    numbers = range(count) if partition is None else [partition]
    deadline = time.monotonic() + timeout
    out: list[Record] = []
    with Consumer(broker, auto_offset_reset="earliest", enable_auto_commit=False,
                  key_deserializer=key_deserializer, value_deserializer=value_deserializer) as consumer:
        tps = [TopicPartition(topic, number) for number in numbers]
        ends = consumer.end_offsets(tps)  # all at once: "as of the call" for every partition
        for tp in tps:
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            while consumer.position(tp) < ends[tp]:
                # Poll before checking the deadline and give up only on an empty
                # poll, so timeout=0 still reads everything that is readable now.
                remaining = max(0.0, deadline - time.monotonic())
                got = consumer.poll(timeout=min(remaining, 0.1))
                out += [r for r in got if r.offset < ends[tp]]
                if not got and consumer.position(tp) < ends[tp] and time.monotonic() >= deadline:
                    raise MiniKafkaTimeoutError(f"read_topic: {tp.topic}/{tp.partition} not read to "
                                                f"offset {ends[tp]} within {timeout} s")
    return out
