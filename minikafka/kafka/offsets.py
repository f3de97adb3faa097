"""Beginning and end offsets of Kafka partitions, read so they are right on
every Kafka-protocol broker.

ListOffsets "latest" is the end offset on Apache Kafka, but Tansu 0.6
answers the last batch's base offset + 1 (KAFKA.md). The high watermark in
a Fetch response is right everywhere, so the end is confirmed by fetching
from one before the ListOffsets answer up to the partition-EOF event and
reading the cached high watermark: one short fetch per call.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any

from ..records import TopicPartition
from .errors import TimeoutError, make_client, translate
from .logs import ClientLog


def _remaining(deadline: float, what: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(f"{what}: timed out")
    return left


def earliest_offsets(consumer: Any, tps: list[TopicPartition], timeout: float) -> dict[TopicPartition, int]:
    """First retained offset of each of ``tps``, through ``consumer`` (any
    confluent-kafka Consumer): ListOffsets "earliest" (``OFFSET_BEGINNING``
    asked as a timestamp) for all of them at once, one round trip, where
    ``get_watermark_offsets`` makes one per partition."""
    from confluent_kafka import OFFSET_BEGINNING
    from confluent_kafka import TopicPartition as KTP

    if not tps:
        return {}
    what = f"reading the offsets of {', '.join(f'{tp.topic}/{tp.partition}' for tp in tps)}"
    try:
        got = consumer.offsets_for_times([KTP(tp.topic, tp.partition, OFFSET_BEGINNING) for tp in tps],
                                         timeout=timeout)
    except Exception as e:
        raise translate(e, what) from None
    out = {}
    for k in got:
        if k.error is not None:
            raise translate(k.error, f"reading the offsets of {k.topic}/{k.partition}")
        if k.offset < 0:
            raise TimeoutError(f"reading the offsets of {k.topic}/{k.partition}: no answer")
        out[TopicPartition(k.topic, k.partition)] = k.offset
    return out


class OffsetProbe:
    """A private confluent-kafka consumer (never commits, never joins a
    group) that reads watermarks and committed offsets. Thread-safe.

    ``fetched`` names the topics it has fetched from. A fetch can still be
    in flight after ``unassign()`` returns, and if its topic is deleted
    meanwhile, its reply crashed librdkafka 2.16 on Tansu (SIGSEGV on a
    NULL topic name under ``rd_kafka_metadata_update_op``, which applies a
    reply's leader-change tags; docs/scaling.md). So the broker closes a
    probe that fetched a topic before deleting that topic: closing
    destroys the handle, and no reply reaches it.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        from confluent_kafka import Consumer

        self._log = ClientLog()
        self._consumer = make_client(Consumer, {
            **config,
            "group.id": f"minikafka-probe-{uuid.uuid4().hex}",  # required, never joined
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 10,
        }, "offset reader", self._log)
        self._lock = threading.Lock()
        self.fetched: set[str] = set()

    def _explain(self, error: TimeoutError, since: float) -> TimeoutError:
        """``error`` with the cause librdkafka logged since ``since`` (called
        unassigned, where ``poll`` serves only the log and events)."""
        self._consumer.poll(0)
        return self._log.explain(error, since)

    def beginning_offsets(self, tps: Iterable[TopicPartition], timeout: float) -> dict[TopicPartition, int]:
        since = time.monotonic()
        with self._lock:
            try:
                return earliest_offsets(self._consumer, list(tps), timeout)
            except TimeoutError as e:
                raise self._explain(e, since) from None

    def end_offsets(self, tps: Iterable[TopicPartition], timeout: float) -> dict[TopicPartition, int]:
        from confluent_kafka import KafkaError
        from confluent_kafka import TopicPartition as KTP

        since = time.monotonic()
        deadline = since + timeout
        out: dict[TopicPartition, int] = {}
        probe: dict[tuple[str, int], TopicPartition] = {}
        with self._lock:
            for tp in tps:
                try:
                    lo, hi = self._watermarks(tp, deadline)
                except TimeoutError as e:
                    raise self._explain(e, since) from None
                out[tp] = hi
                if hi > lo:
                    probe[(tp.topic, tp.partition)] = tp
            if not probe:
                return out
            c = self._consumer
            self.fetched.update(t for t, _p in probe)
            c.assign([KTP(t, p, out[tp] - 1) for (t, p), tp in probe.items()])
            try:
                left = set(probe)
                while left:
                    msg = c.poll(min(0.1, _remaining(deadline, "reading end offsets")))
                    if msg is None:
                        continue
                    err = msg.error()
                    if err is None or err.code() == KafkaError._PARTITION_EOF:
                        key = (msg.topic(), msg.partition())
                        if err is not None:
                            left.discard(key)
                    else:
                        raise translate(err, f"reading the end offset of {msg.topic()}/{msg.partition()}")
                for (t, p), tp in probe.items():
                    _lo, hi = c.get_watermark_offsets(KTP(t, p), cached=True)
                    if hi >= 0:
                        out[tp] = max(out[tp], hi)
            except TimeoutError as e:
                raise self._log.explain(e, since) from None  # poll above served the log
            finally:
                c.unassign()
        return out

    def _watermarks(self, tp: TopicPartition, deadline: float) -> tuple[int, int]:
        from confluent_kafka import TopicPartition as KTP

        what = f"reading the offsets of {tp.topic}/{tp.partition}"
        try:
            got = self._consumer.get_watermark_offsets(KTP(tp.topic, tp.partition),
                                                       timeout=_remaining(deadline, what))
        except Exception as e:
            raise translate(e, what) from None
        if got is None:
            raise TimeoutError(f"{what}: timed out")
        return int(got[0]), int(got[1])

    def close(self) -> None:
        with self._lock:
            self._consumer.close()
