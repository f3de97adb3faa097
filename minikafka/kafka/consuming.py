"""KafkaConsumerBackend: where records come from on a Kafka cluster.

Implements the consumer backend interface of docs/architecture.md
("Consumer backend interface") over confluent-kafka's ``Consumer``:

- Positions are resolved here (committed offset at assignment, else
  ``auto_offset_reset``), so ``position()`` is known and ``seek()`` works
  right after ``assign``/``subscribe`` — a librdkafka consumer reports -1001
  and refuses seeks until its first fetch (KAFKA.md). "latest" is the high
  watermark read by :class:`~minikafka.kafka.offsets.OffsetProbe` (right
  on Tansu too) at the next ``position()`` or ``fetch()``, as a directory
  reads it, and only then given to librdkafka. With "none" and nothing
  committed a partition is assigned all the same, with no start
  (``UNKNOWN``): ``position()`` and ``fetch()`` raise ``NoOffsetError``
  until a seek gives it one, as on a directory.
- A seek is checked against the retained range at the next ``position()``
  or ``fetch()`` (``auto_offset_reset`` if outside), as a directory does:
  librdkafka would keep the offset until a fetch answered
  OFFSET_OUT_OF_RANGE, which Tansu 0.6 never sends.
- Group assignment uses the cooperative-sticky assignor, so listeners see
  only the partitions that move, as on a data directory.
- Offsets are committed synchronously, and only for partitions this member
  owns (``CommitFailedError`` otherwise — safer than Kafka's coordinator,
  which accepts them).
- Errors are minikafka's, never confluent-kafka's.

Why one module of ~990 lines: it is one class over one confluent-kafka
``Consumer``, and its parts (rebalance callbacks, positions and pending
seeks, the message-to-Record fast path that checks them) share that
state; the offset requests it needs are in ``offsets.py``.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from itertools import compress, islice, repeat
from operator import itemgetter, lt, ne
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import (
    ClosedError,
    CommitFailedError,
    InvalidArgumentError,
    InvalidPartitionError,
    MiniKafkaError,
    NoOffsetError,
)
from ..records import Record, TopicPartition
from .bounded import BoundedCaller
from .errors import TimeoutError, make_client, translate
from .logs import ClientLog
from .offsets import earliest_offsets

if TYPE_CHECKING:
    from .admin import KafkaBroker

#: Longest single wait inside ``fetch``, so ``wakeup`` and ``close`` are seen promptly.
SLICE = 0.1
#: Batches of fewer messages are built record by record: there the whole-list
#: passes of ``_records`` cost more than they save (per record, 2 messages:
#: 2.2 against 0.95 µs; 32: 0.56 against 0.53 µs). A consumer that keeps up
#: with a slow producer gets one message a fetch: ~2.5 µs instead of ~7.
VECTOR_MIN = 32
#: Seconds between looks at the cluster's metadata by a subscription
#: without a group, for topics created and partitions added since.
FOLLOW_INTERVAL = 1.0
#: The position of a partition with no start yet (auto_offset_reset="none",
#: nothing committed, no seek): never a real offset, and below every one.
UNKNOWN = -1


make = tuple.__new__  # make(Record, fields): a Record without Record.__new__'s Python frame
_second = itemgetter(1)


def _message_methods() -> tuple[Any, ...]:
    from confluent_kafka import Message

    return (Message.error, Message.topic, Message.partition, Message.offset, Message.timestamp,
            Message.key, Message.value, Message.headers)


# Unbound Message methods, for map() over a batch.
_error, _topic, _partition, _offset, _timestamp, _key, _value, _headers = _message_methods()


class Hooks(Protocol):
    """What the Consumer facade gives its backend (``consumer.ConsumerHooks``)."""

    def assigned(self, partitions: set[TopicPartition]) -> None: ...
    def revoking(self, partitions: set[TopicPartition], reason: str) -> None: ...


class Settings(Protocol):
    """The fields of ``options.ConsumerConfig`` this backend reads."""

    group_id: str | None
    auto_offset_reset: str
    key_deserializer: Callable[[bytes], Any] | None
    value_deserializer: Callable[[bytes], Any] | None
    session_timeout: float
    heartbeat_interval: float
    max_poll_interval: float


def client_config(broker_config: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """librdkafka settings for one consumer: the broker's, then minikafka's
    options; commits and offset resets are driven by minikafka."""
    config = {
        "group.id": settings.group_id or f"minikafka-assign-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        # Out of range: librdkafka resets (minikafka resolves every other start itself).
        "auto.offset.reset": {"none": "error"}.get(settings.auto_offset_reset,
                                                   settings.auto_offset_reset),
        "partition.assignment.strategy": "cooperative-sticky",
        "session.timeout.ms": int(settings.session_timeout * 1000),
        "heartbeat.interval.ms": max(1, int(settings.heartbeat_interval * 1000)),
        "max.poll.interval.ms": int(settings.max_poll_interval * 1000),
    }
    return {**config, **broker_config, "group.id": config["group.id"],
            "enable.auto.commit": False, "enable.auto.offset.store": False,
            "enable.partition.eof": True}


class KafkaConsumerBackend:
    """One confluent-kafka consumer behind a minikafka Consumer."""

    def __init__(self, broker: KafkaBroker, settings: Settings, hooks: Hooks,
                 extra_config: dict[str, Any] | None = None) -> None:
        from confluent_kafka import Consumer

        self._broker = broker
        self._settings = settings
        self._hooks = hooks
        self._group = settings.group_id is not None
        self._timeout = broker.request_timeout
        self._key_de = settings.key_deserializer
        self._value_de = settings.value_deserializer
        config = client_config({**broker.config, **broker.consumer_config, **(extra_config or {})},
                               settings)
        self._log = ClientLog()
        self._consumer = make_client(Consumer, config, "consumer", self._log)
        self._lock = threading.RLock()
        self._caller = BoundedCaller("minikafka-kafka-call")  # sync commit, close
        self._within = threading.local()  # .until: this thread's close deadline (within())
        self._positions: dict[TopicPartition, int] = {}
        self._seeks: dict[TopicPartition, int] = {}  # wished, not yet applied to librdkafka
        # Sought by the application, not yet checked against the retained
        # range (the edge of seek_to_beginning/end, else None): resolved by
        # position() and fetch() as a directory does, not left to
        # OFFSET_OUT_OF_RANGE (which Tansu never sends).
        self._unchecked: dict[TopicPartition, str | None] = {}
        # Assigned with no start yet (UNKNOWN in _positions: nothing
        # committed, and auto_offset_reset="none" until a seek, or "latest"
        # until the next position()/fetch() reads the end) and so not given
        # to librdkafka yet.
        self._unplaced: set[TopicPartition] = set()
        # Started at assignment (a committed offset, or "earliest") but not
        # read yet by a fetch, position() or a seek: not a position to
        # commit, as a directory (which reads the start then) and Kafka's
        # Java client commit only positions that were read.
        self._unread: set[TopicPartition] = set()
        self._paused: set[TopicPartition] = set()
        self._subscribed = False  # a librdkafka (group) subscription
        self._following: tuple[str, ...] | None = None  # the topics of one without a group
        self._pattern: re.Pattern[str] | None = None  # a pattern subscription, matched at each follow
        self._names: tuple[str, ...] = ()  # the subscribed topics (a pattern's last matches)
        self._followed_at = 0.0
        self._joined = False  # the first assignment of a subscription has arrived
        self._subscribed_at = 0.0  # time.monotonic() of the last subscribe
        self._assignments = 0
        self._wake = threading.Event()
        self._closed = False
        self._error: BaseException | None = None  # raised by a rebalance callback
        self._topics_ever: set[str] = set()  # every topic assigned or subscribed to
        #: The one topic, while this consumer never had another: its messages' topic.
        self._one_topic: str | None = None

    # -- assignment -------------------------------------------------------------

    def subscribe(self, topics: tuple[str, ...], pattern: re.Pattern[str] | None = None) -> None:
        self._check_open()
        with self._lock:
            self._pattern = pattern
            if pattern is not None:
                # Matched here, not by librdkafka's own regex subscription:
                # Python's re dialect and fullmatch, as on a directory, and
                # new topics seen within FOLLOW_INTERVAL, not librdkafka's
                # metadata refresh (5 minutes).
                topics = self._matching(self._broker.metadata(self._timeout), pattern)
            self._names = topics
            self._had_topics(topics)
            if not self._group:
                self._following = topics
                self._follow(self._timeout)
                return
            self._forget(set(self._positions))
            self._joined = False
            self._group_subscribe(topics)
            self._followed_at = self._subscribed_at = time.monotonic()

    def _group_subscribe(self, topics: tuple[str, ...]) -> None:
        """Subscribe the group member to ``topics`` (again: librdkafka
        rebalances, keeping what stays subscribed, cooperative-sticky);
        none (a pattern that matches nothing yet): leave the group."""
        try:
            if topics:
                self._consumer.subscribe(list(topics), on_assign=self._on_assign,
                                         on_revoke=self._on_revoke, on_lost=self._on_lost)
                if not self._subscribed:
                    self._subscribed, self._subscribed_at = True, time.monotonic()
            elif self._subscribed:
                self._consumer.unsubscribe()  # runs on_revoke in this thread
                self._subscribed = self._joined = False
        except Exception as e:
            raise translate(e, f"subscribing to {', '.join(topics)}") from None

    @staticmethod
    def _matching(meta: dict[str, Any], pattern: re.Pattern[str]) -> tuple[str, ...]:
        """Topics of ``meta`` that ``pattern`` matches, internal ones left out
        (as ``list_topics`` and the Java client's ``exclude.internal.topics``)."""
        return tuple(sorted(t for t, m in meta.items()
                            if not t.startswith("__") and m.error is None and pattern.fullmatch(t)))

    def subscription(self) -> tuple[str, ...]:
        return self._names

    def assign(self, partitions: list[TopicPartition]) -> None:
        from confluent_kafka import TopicPartition as KTP

        self._check_open()
        with self._lock:
            self._following = self._pattern = None
            self._names = ()
            if self._subscribed:
                self._consumer.unsubscribe()
                self._subscribed = False
            wanted = list(dict.fromkeys(partitions))
            self._had_topics(tp.topic for tp in wanted)
            self._forget(set(self._positions) - set(wanted))
            fresh = [tp for tp in wanted if tp not in self._positions]
            with self._named_partitions(wanted):
                starts = self._start_offsets(fresh)
            if any(tp in self._unchecked for tp in fresh):  # "latest", not read yet: does it exist?
                self._check_partitions(fresh)
            self._positions.update(starts)
            self._unread.update(tp for tp, o in starts.items() if o != UNKNOWN)
            placed = [tp for tp in wanted if self._positions[tp] != UNKNOWN]
            try:
                self._consumer.assign([KTP(tp.topic, tp.partition, self._positions[tp]) for tp in placed])
                self._consumer.pause([KTP(tp.topic, tp.partition) for tp in placed if tp in self._paused])
            except Exception as e:
                raise translate(e, "assigning partitions") from None
            self._unplaced = set(wanted) - set(placed)
            self._seeks.clear()

    def _had_topics(self, topics: Iterable[str]) -> None:
        self._topics_ever.update(topics)
        self._one_topic = next(iter(self._topics_ever)) if len(self._topics_ever) == 1 else None

    def unsubscribe(self) -> None:
        self._check_open()
        with self._lock:
            try:
                if self._subscribed:
                    self._consumer.unsubscribe()  # runs on_revoke in this thread
                else:
                    self._consumer.unassign()
            except Exception as e:
                raise translate(e, "leaving the assignment") from None
            self._subscribed = self._joined = False
            self._following = self._pattern = None
            self._names = ()
            self._forget(set(self._positions))

    def _follow(self, timeout: float) -> None:
        """A subscription without a group: every partition of its topics
        that exist, from the cluster's metadata, as on a directory (and in
        aiokafka) — not a join of a throwaway group, which takes a join
        round (5 s on Tansu, 3 s or more on Kafka) before the first record.
        Looked at again every FOLLOW_INTERVAL by ``fetch``."""
        from confluent_kafka import TopicPartition as KTP

        self._followed_at = time.monotonic()
        # The broker's admin connection: on the consumer's own, the request
        # waits behind a fetch in flight (up to fetch.wait.max.ms on Tansu).
        meta = self._broker.metadata(timeout)
        if self._pattern is not None:
            names = self._matching(meta, self._pattern)
            if self._group:
                if names != self._names:
                    self._had_topics(names)
                    self._group_subscribe(names)
                    self._names = names
                return
            self._names = self._following = names
            self._had_topics(names)
        assert self._following is not None
        wanted = {TopicPartition(t, p) for t in self._following
                  if (m := meta.get(t)) is not None and m.error is None for p in m.partitions}
        gone = set(self._positions) - wanted  # a topic deleted
        new = sorted(wanted - set(self._positions))
        try:
            if gone:
                self._consumer.incremental_unassign(
                    [KTP(tp.topic, tp.partition) for tp in gone - self._unplaced])
                self._forget(gone)
            if new:
                self._place(self._start_offsets(new))
        except MiniKafkaError:
            raise
        except Exception as e:
            raise translate(e, "assigning partitions") from None

    def assignment(self) -> set[TopicPartition]:
        return set(self._positions)

    def rebalancing(self) -> bool:
        """A subscription whose first assignment has not arrived yet;
        ``TimeoutError`` once that has lasted ``request_timeout`` plus
        ``session_timeout`` (a join round can take about a session
        timeout): ``at_end``, and so ``stop_at_end`` iteration, would
        otherwise wait for a cluster it cannot reach forever."""
        if not self._subscribed or self._joined:
            return False
        if self._timeout is not None:
            limit = self._timeout + self._settings.session_timeout
            if time.monotonic() - self._subscribed_at > limit:
                raise self._log.explain(TimeoutError(
                    f"group {self._settings.group_id!r}: no assignment within {limit:g} s of "
                    f"subscribing (is the cluster reachable?)"), since=self._subscribed_at)
        return True

    def _forget(self, tps: set[TopicPartition]) -> None:
        for tp in tps:
            self._positions.pop(tp, None)
            self._seeks.pop(tp, None)
            self._unchecked.pop(tp, None)
            self._paused.discard(tp)
            self._unplaced.discard(tp)
            self._unread.discard(tp)

    def _place(self, starts: dict[TopicPartition, int]) -> None:
        """Add ``starts`` to the assignment; those with an UNKNOWN start
        are left out of librdkafka's (a seek places them)."""
        from confluent_kafka import TopicPartition as KTP

        self._positions.update(starts)
        self._unplaced.update(tp for tp, o in starts.items() if o == UNKNOWN)
        self._unread.update(tp for tp, o in starts.items() if o != UNKNOWN)
        self._consumer.incremental_assign(
            [KTP(tp.topic, tp.partition, o) for tp, o in starts.items() if o != UNKNOWN])

    # Rebalance callbacks run inside consume()/close() in the calling thread.
    @property
    def member_id(self) -> str | None:
        """The id the group coordinator gave this member (None outside a group)."""
        if not self._group or not self._subscribed:
            return None
        return self._consumer.memberid() or None

    @property
    def generation(self) -> int:
        """Assignments received in the group (librdkafka does not expose the
        coordinator's generation id); 0 outside a group."""
        return self._assignments

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        self._assignments += 1
        try:
            new = [TopicPartition(k.topic, k.partition) for k in partitions]
            self._had_topics(tp.topic for tp in new)  # a subscribed pattern's topics too
            self._place(self._start_offsets(new))
            self._joined = True
            self._hooks.assigned(set(new))
        except BaseException as e:  # re-raised by fetch(); librdkafka swallows it
            self._error = e

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        self._give_up(consumer, partitions, "leave" if self._closed else "revoked")

    def _on_lost(self, consumer: Any, partitions: list[Any]) -> None:
        self._give_up(consumer, partitions, "dropped")

    def _give_up(self, consumer: Any, partitions: list[Any], reason: str) -> None:
        gone = {TopicPartition(k.topic, k.partition) for k in partitions}
        try:
            if gone & set(self._positions):
                self._hooks.revoking(gone & set(self._positions), reason)
        except BaseException as e:  # re-raised by fetch()
            self._error = e
        finally:
            placed = [k for k in partitions if TopicPartition(k.topic, k.partition) not in self._unplaced]
            self._forget(gone)
            try:
                consumer.incremental_unassign(placed)
            except Exception:  # closing: the assignment goes anyway
                pass

    def _start_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        """Where reading starts: committed offset, else ``auto_offset_reset``
        (one request for each, on this consumer's own connections)."""
        if not tps:
            return {}
        out = self._committed(tps) if self._group else {}
        rest = [tp for tp in tps if tp not in out]
        if rest:
            reset = self._settings.auto_offset_reset
            if reset == "earliest":
                out.update(earliest_offsets(self._consumer, rest, self._timeout))
            else:
                # "none": NoOffsetError from position() and fetch() until a
                # seek. "latest": the end at the next position() or fetch(),
                # as a directory reads it, not now — records written in
                # between are not read on either backend.
                out.update(dict.fromkeys(rest, UNKNOWN))
                if reset == "latest":
                    self._unchecked.update(dict.fromkeys(rest, "latest"))
        return out

    # -- records ------------------------------------------------------------------

    def fetch(self, max_records: int, timeout: float | None) -> list[Record]:
        from confluent_kafka import KafkaError

        self._check_open()
        self._wake.clear()
        deadline = None if timeout is None else time.monotonic() + timeout
        consume = self._consumer.consume
        while True:
            with self._lock:
                if ((self._following is not None or self._pattern is not None)
                        and time.monotonic() - self._followed_at >= FOLLOW_INTERVAL):
                    budget = self._timeout if deadline is None else min(
                        self._timeout, max(0.02, deadline - time.monotonic()))
                    try:  # within this fetch's timeout; a cluster that does not answer: next time
                        self._follow(budget)
                    except TimeoutError:
                        pass
                if self._unchecked:
                    self._check_seeks(list(self._unchecked))
                if self._unplaced:  # before any record, as a directory
                    unknown = sorted(tp for tp in self._unplaced if tp not in self._seeks)
                    if unknown:
                        self._no_offset(unknown[0])
                if self._seeks:
                    self._apply_seeks()
                left = SLICE if deadline is None else min(SLICE, max(0.0, deadline - time.monotonic()))
                try:
                    # consume(n, t) waits for n messages or t: take what is queued,
                    # else wait for one message, then take what came with it.
                    messages = consume(max_records, 0)
                    if not messages and left > 0:
                        messages = consume(1, left)
                        if messages and max_records > 1:
                            messages += consume(max_records - 1, 0)
                except Exception as e:
                    raise translate(e, "fetching records") from None
                # A fetch reads every assigned start, paused ones and those an
                # assignment inside consume() placed too (their records are here).
                self._unread.clear()
                if self._error is not None:
                    error, self._error = self._error, None
                    raise error
                records = self._records_or_rewind(messages, KafkaError._PARTITION_EOF) if messages else []
            if records or self._wake.is_set() or self._closed:
                return records
            if deadline is not None and time.monotonic() >= deadline:
                return records

    def _records_or_rewind(self, messages: list[Any], eof_code: int) -> list[Record]:
        """Records of ``messages``; if building them fails (a deserializer
        raised), no record of the batch is lost: every partition goes back
        to where the batch started and is fetched again. (The fast path
        empties ``messages``, and names the batch's partitions in ``fetched``
        before it does.)
        """
        before = dict(self._positions)
        fetched: set[TopicPartition] = set()
        try:
            if len(messages) < VECTOR_MIN:
                return self._records_one_by_one(messages, eof_code)
            return self._records(messages, eof_code, fetched)
        except BaseException:
            if messages:
                fetched = {TopicPartition(m.topic(), m.partition()) for m in messages}
            for tp in fetched:
                if tp in before and self._positions.get(tp) is not None:
                    self._positions[tp] = before[tp]
                    self._seeks[tp] = before[tp]
            raise

    def _records(self, messages: list[Any], eof_code: int,
                 fetched: set[TopicPartition] | None = None) -> list[Record]:
        """Records of ``messages``, positions moved past them; partition-EOF
        events dropped, other error events raised.

        The fast path takes each field of every message as a column, adds
        the batch's partitions to ``fetched``, then empties ``messages``
        before it deserializes or makes a Record. Messages and Records are
        both objects the garbage collector tracks: holding 500 of each at
        once passes its threshold (700) on every batch, and its collections
        were a third of the consumer's CPU per record (docs/performance.md).
        """
        # Every per-message step is a map() of a Message method, run in C
        # without a bytecode loop; the checks (error events, runs per
        # partition, positions, offset order) are whole-list passes.
        # Anything unusual goes one by one.
        n = len(messages)
        if not n:
            return []
        if any(map(_error, messages)):
            return self._records_with_events(messages, eof_code, fetched)
        parts = list(map(_partition, messages))
        offsets = list(map(_offset, messages))
        # A consumer that only ever had one topic knows every message's topic.
        one = self._one_topic
        topics: list[str] = [] if one is not None else list(map(_topic, messages))
        one_topic = one is not None or topics.count(topics[0]) == n
        # librdkafka queues messages in runs per partition: where each run ends
        if one_topic and parts.count(parts[0]) == n:
            ends = [n]
        else:
            runs = parts if one_topic else list(zip(topics, parts, strict=True))
            ends = [*compress(range(1, n), map(ne, runs, islice(runs, 1, None))), n]
        positions = self._positions
        plan: list[tuple[TopicPartition, int, int]] = []  # (partition, start, end) of runs to return
        after: dict[TopicPartition, int] = {}  # positions once the planned runs are returned
        s = 0
        for e in ends:
            tp = TopicPartition(one if one is not None else topics[s], parts[s])
            expected = after.get(tp, positions.get(tp, -1))
            if expected >= 0:  # else fetched before a revoke: not ours to return
                offs = offsets if e - s == n else offsets[s:e]
                if offs[0] < expected or not all(map(lt, offs, islice(offs, 1, None))):
                    # fetched before a seek (or out of order): record by record
                    return self._records_one_by_one(messages, eof_code)
                plan.append((tp, s, e))
                after[tp] = offs[-1] + 1
            s = e
        stamps = list(map(_second, map(_timestamp, messages)))
        keys = list(map(_key, messages))
        values = list(map(_value, messages))
        headers: list[Any] = list(map(_headers, messages))  # None where a message has none
        if fetched is not None:
            fetched.update(tp for tp, _s, _e in plan)
        messages.clear()
        key_de, value_de = self._key_de, self._value_de
        out: list[Record] = []
        for tp, s, e in plan:
            k = e - s
            whole = k == n
            hs: Any = headers if whole else headers[s:e]
            hs = [tuple(h) if h else () for h in hs] if any(hs) else repeat((), k)
            ks = keys if whole else keys[s:e]
            vs = values if whole else values[s:e]
            # Only the records returned are deserialized, as one by one; a
            # deserializer that raises leaves positions as they were.
            if key_de is not None:
                ks = [x if x is None else key_de(x) for x in ks]
            if value_de is not None:
                vs = [x if x is None else value_de(x) for x in vs]
            fields = zip(repeat(tp.topic, k), repeat(tp.partition, k),
                         offsets if whole else offsets[s:e], stamps if whole else stamps[s:e],
                         ks, vs, hs, strict=True)
            # tuple.__new__(Record, fields) called by map itself: ~30 ns a record less than a partial
            out += map(make, repeat(Record), fields)
        positions.update(after)
        return out

    def _records_with_events(self, messages: list[Any], eof_code: int,
                             fetched: set[TopicPartition] | None) -> list[Record]:
        """``_records`` of a batch with error events: partition-EOF events
        dropped; any other error raised (record by record)."""
        if not all(m.error() is None or m.error().code() == eof_code for m in messages):
            return self._records_one_by_one(messages, eof_code)  # raises, after what precedes it
        rest = [m for m in messages if m.error() is None]
        eofs = [(m.topic(), m.partition(), m.offset()) for m in messages if m.error() is not None]
        if not rest:
            self._skip_to_eof(eofs)
            return []
        if fetched is not None:  # the whole batch's partitions, as _records_or_rewind would take them
            fetched.update(TopicPartition(m.topic(), m.partition()) for m in messages)
        messages.clear()  # the Messages live on in ``rest`` only, which _records empties
        out = self._records(rest, eof_code, fetched)
        self._skip_to_eof(eofs)
        return out

    def _skip_to_eof(self, eofs: list[tuple[str, int, int]]) -> None:
        """Positions moved up to where partition-EOF events say the fetch
        reached: offsets that hold no record for the application (a
        transaction's commit or abort marker, aborted records) would
        otherwise keep a position below the end offset for ever, and
        ``at_end`` (so a mirror, ``stop_at_end``) would never be true.
        The EOF event follows every message of its partition before it
        (librdkafka drops events of a fetch older than a seek)."""
        positions = self._positions
        for topic, partition, offset in eofs:
            tp = TopicPartition(topic, partition)
            at = positions.get(tp, -1)
            if 0 <= at < offset and tp not in self._seeks:
                positions[tp] = offset

    def _records_one_by_one(self, messages: list[Any], eof_code: int) -> list[Record]:
        # Messages come in runs per partition, so the TopicPartition and its
        # position are looked up once per run.
        out: list[Record] = []
        append = out.append
        positions = self._positions
        key_de, value_de = self._key_de, self._value_de
        plain = key_de is None and value_de is None
        make = tuple.__new__
        tp: TopicPartition | None = None
        topic, part, expected = "", -1, -1
        eofs: list[tuple[str, int, int]] = []
        for m in messages:
            err = m.error()
            if err is not None:
                if err.code() == eof_code:
                    eofs.append((m.topic(), m.partition(), m.offset()))
                    continue
                raise _consume_error(err, TopicPartition(m.topic(), m.partition()))
            if m.partition() != part or m.topic() != topic or tp is None:
                if tp is not None and expected >= 0:
                    positions[tp] = expected
                topic, part = m.topic(), m.partition()
                tp = TopicPartition(topic, part)
                expected = positions.get(tp, -1)
            offset = m.offset()
            if expected < 0 or offset < expected:
                continue  # fetched before a seek or a revoke: not ours to return
            key, value = m.key(), m.value()
            if not plain:
                if key_de is not None and key is not None:
                    key = key_de(key)
                if value_de is not None and value is not None:
                    value = value_de(value)
            headers = m.headers()
            append(make(Record, (topic, part, offset, m.timestamp()[1], key, value,
                                 tuple(headers) if headers else ())))
            expected = offset + 1
        if tp is not None and expected >= 0:
            positions[tp] = expected
        if eofs:
            self._skip_to_eof(eofs)
        return out

    def _apply_seeks(self) -> None:
        from confluent_kafka import KafkaException
        from confluent_kafka import TopicPartition as KTP

        seeks, self._seeks = self._seeks, {}
        placing = [tp for tp in seeks if tp in self._unplaced]
        if placing:  # their first start: given to librdkafka now
            try:
                self._consumer.incremental_assign([KTP(tp.topic, tp.partition, seeks[tp]) for tp in placing])
                self._consumer.pause([KTP(tp.topic, tp.partition) for tp in placing if tp in self._paused])
            except Exception as e:
                raise translate(e, "seeking") from None
            self._unplaced.difference_update(placing)
        stuck = []
        for tp, offset in seeks.items():
            if tp in placing:
                continue
            try:
                self._consumer.seek(KTP(tp.topic, tp.partition, offset))
            except KafkaException:
                stuck.append(KTP(tp.topic, tp.partition, offset))  # not fetching yet (_STATE)
        if stuck:
            try:
                if self._subscribed:
                    self._consumer.incremental_unassign(stuck)
                    self._consumer.incremental_assign(stuck)
                else:
                    placed = [KTP(tp.topic, tp.partition, o) for tp, o in self._positions.items()
                              if tp not in self._unplaced]
                    self._consumer.assign(placed)
                    self._consumer.pause([k for k in placed
                                          if TopicPartition(k.topic, k.partition) in self._paused])
            except Exception as e:
                raise translate(e, "seeking") from None

    def wakeup(self) -> None:
        self._wake.set()

    # -- positions ------------------------------------------------------------------

    def _assigned(self, tp: TopicPartition) -> None:
        if tp not in self._positions:
            raise InvalidArgumentError(f"{tp.topic}/{tp.partition} is not assigned to this consumer")

    def seek(self, tp: TopicPartition, offset: int, edge: str | None = None) -> None:
        with self._lock:
            self._assigned(tp)
            self._positions[tp] = offset
            self._seeks[tp] = offset
            self._unchecked[tp] = edge
            self._unread.discard(tp)

    def position(self, tp: TopicPartition) -> int:
        with self._lock:
            self._assigned(tp)
            if tp in self._unchecked:
                self._check_seeks([tp])
            if self._positions[tp] == UNKNOWN:
                self._no_offset(tp)
            self._unread.discard(tp)
            return self._positions[tp]

    def positions(self) -> dict[TopicPartition, int]:
        unread = self._unread
        return {tp: o for tp, o in self._positions.items() if o != UNKNOWN and tp not in unread}

    def _no_offset(self, tp: TopicPartition) -> None:
        raise NoOffsetError(f"{tp.topic}/{tp.partition}: no committed offset and auto_offset_reset='none'")

    def _check_seeks(self, tps: list[TopicPartition]) -> None:
        """Positions sought outside the retained range moved where the
        seek's edge, else ``auto_offset_reset``, says (NoOffsetError for
        "none", until another seek), as a directory does when it reads:
        librdkafka keeps the offset sought until a fetch answers
        OFFSET_OUT_OF_RANGE, and Tansu 0.6 never does (the consumer
        stalled). Offsets within the watermarks of the last fetch need no
        request (a put-back after iteration)."""
        from confluent_kafka import TopicPartition as KTP

        ask = []
        for tp in tps:
            try:
                lo, hi = self._consumer.get_watermark_offsets(KTP(tp.topic, tp.partition), cached=True)
            except Exception:  # not fetched yet
                lo = hi = -1
            if 0 <= lo <= self._positions[tp] <= hi:
                del self._unchecked[tp]
            else:
                ask.append(tp)
        if not ask:
            return
        probe = self._broker.probe()
        # An UNKNOWN position here is a "latest" left for now (_start_offsets): its end is all it needs.
        sought = [tp for tp in ask if self._positions[tp] != UNKNOWN]
        begins = probe.beginning_offsets(sought, self._timeout) if sought else {}
        ends = probe.end_offsets(ask, self._timeout)
        for tp in ask:
            offset, end = self._positions[tp], ends[tp]
            if offset == UNKNOWN or not begins[tp] <= offset <= end:
                reset = self._unchecked[tp] or self._settings.auto_offset_reset
                if reset == "none":
                    raise NoOffsetError(f"{tp.topic}/{tp.partition}: offset {offset} is outside the "
                                        f"retained range {begins[tp]}..{end} and auto_offset_reset='none'")
                self._positions[tp] = self._seeks[tp] = begins[tp] if reset == "earliest" else end
            del self._unchecked[tp]

    def pause(self, tps: list[TopicPartition]) -> None:
        self._flow(tps, pause=True)

    def resume(self, tps: list[TopicPartition]) -> None:
        self._flow(tps, pause=False)

    def _flow(self, tps: list[TopicPartition], pause: bool) -> None:
        from confluent_kafka import TopicPartition as KTP

        with self._lock:
            for tp in tps:
                self._assigned(tp)
            ktps = [KTP(tp.topic, tp.partition) for tp in tps if tp not in self._unplaced]
            try:
                if pause:
                    self._consumer.pause(ktps)
                    self._paused.update(tps)
                else:
                    self._consumer.resume(ktps)
                    self._paused.difference_update(tps)
                    # librdkafka may have dropped what it had fetched: read on from our positions.
                    self._seeks.update({tp: self._positions[tp] for tp in tps
                                        if tp not in self._unplaced})
            except Exception as e:
                raise translate(e, "pausing" if pause else "resuming") from None

    def paused(self) -> set[TopicPartition]:
        return set(self._paused)

    # -- committed offsets --------------------------------------------------------------

    def commit(self, offsets: dict[TopicPartition, int]) -> None:
        from confluent_kafka import TopicPartition as KTP

        self._check_open()
        with self._lock:
            if self._subscribed:
                foreign = sorted(set(offsets) - set(self._positions))
                if foreign:
                    raise CommitFailedError(
                        f"group {self._settings.group_id!r}: this member does not own "
                        f"{', '.join(f'{tp.topic}/{tp.partition}' for tp in foreign)}; "
                        f"its offsets were not committed")
            if not offsets:
                return
            # Tansu 0.6 stores offsets of partitions that do not exist: check
            # those this consumer was never given, as a directory does.
            self._check_partitions([tp for tp in offsets if tp not in self._positions])
            kafka_offsets = [KTP(tp.topic, tp.partition, o) for tp, o in offsets.items()]
            try:
                self._bounded(lambda: self._consumer.commit(offsets=kafka_offsets, asynchronous=False),
                              f"committing offsets of group {self._settings.group_id!r} "
                              f"(finding and asking its coordinator)",
                              "they may be committed or not")
            except TimeoutError:
                # Already explained by _bounded; _explain's poll would wait
                # behind the commit still running in the worker thread.
                raise
            except Exception as e:
                error = translate(e, f"committing offsets of group {self._settings.group_id!r}")
                if "REBALANCE" in str(error) or "ILLEGAL_GENERATION" in str(error) \
                        or "UNKNOWN_MEMBER_ID" in str(error):
                    raise CommitFailedError(str(error)) from None
                if isinstance(error, TimeoutError):
                    error = self._explain(error)
                raise error from None

    def _explain(self, error: TimeoutError) -> TimeoutError:
        """``error`` with the cause librdkafka logged during the call. Its
        log lines arrive when the client is polled: done here only while
        it has no partitions, where a poll returns no message."""
        if not self._subscribed and not self._consumer.assignment():
            self._consumer.poll(0)
        return self._log.explain(error, since=time.monotonic() - self._timeout - 1)

    def committed(self, tp: TopicPartition) -> int | None:
        self._check_open()
        return self._committed([tp]).get(tp)

    def _committed(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        """The group's committed offsets of ``tps`` (those that have one), in one request."""
        from confluent_kafka import TopicPartition as KTP

        try:
            got = self._consumer.committed([KTP(tp.topic, tp.partition) for tp in tps], timeout=self._timeout)
        except Exception as e:
            where = ", ".join(f"{tp.topic}/{tp.partition}" for tp in tps)
            error = translate(e, f"reading the committed offset of {where}")
            if isinstance(error, TimeoutError):
                error = self._explain(error)
            raise error from None
        return {TopicPartition(k.topic, k.partition): k.offset for k in got if k.offset >= 0}

    # -- lookups ---------------------------------------------------------------------------

    def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        with self._named_partitions(tps):
            return self._broker.probe().beginning_offsets(tps, self._timeout)

    def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        with self._named_partitions(tps):
            return self._broker.probe().end_offsets(tps, self._timeout)

    @contextmanager
    def _named_partitions(self, tps: Iterable[TopicPartition]) -> Iterator[None]:
        """librdkafka says "Unknown partition" for a topic that does not
        exist too: a directory raises TopicNotFoundError then, so look the
        topics up (only after such a failure) to raise what it would."""
        try:
            yield
        except InvalidPartitionError as e:
            self._check_partitions(tps)
            raise e from None

    def _check_partitions(self, tps: Iterable[TopicPartition]) -> None:
        """TopicNotFoundError / InvalidPartitionError, as a directory's, for
        the first of ``tps`` the cluster's metadata does not have."""
        counts: dict[str, int] = {}
        for tp in tps:
            if tp.topic not in counts:
                counts[tp.topic] = self._broker.topic(tp.topic).partitions  # TopicNotFoundError
            if not 0 <= tp.partition < counts[tp.topic]:
                raise InvalidPartitionError(f"{tp.topic}/{tp.partition}: topic {tp.topic!r} has "
                                            f"partitions 0..{counts[tp.topic] - 1}")

    def within(self, timeout: float | None) -> AbstractContextManager[None]:
        """With ``timeout`` None (``close``: the final commit, then leaving),
        one ``request_timeout`` for every bounded call this thread makes
        inside, not one each. A given ``timeout`` (poll's auto-commit) is not
        applied: a network commit cannot be tried for no time, and each call
        has its own bound."""
        return self._deadline() if timeout is None else nullcontext()

    @contextmanager
    def _deadline(self) -> Iterator[None]:
        before = getattr(self._within, "until", None)
        until = time.monotonic() + self._timeout
        self._within.until = until if before is None else min(before, until)
        try:
            yield
        finally:
            self._within.until = before

    def seen_end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        """The high watermark of each partition's last fetch response, where
        librdkafka has one: no request, and never past the true end."""
        from confluent_kafka import TopicPartition as KTP

        self._check_open()
        out = {}
        watermarks = self._consumer.get_watermark_offsets
        for tp in tps:
            try:
                got = watermarks(KTP(tp.topic, tp.partition), cached=True)
            except Exception:  # not fetched yet (or gone): nothing seen
                continue
            if got is not None and got[1] >= 0:
                out[tp] = int(got[1])
        return out

    def offsets_for_times(self, times: dict[TopicPartition, int]) -> dict[TopicPartition, int | None]:
        from confluent_kafka import TopicPartition as KTP

        self._check_open()
        if not times:
            return {}
        with self._named_partitions(times):
            try:
                got = self._consumer.offsets_for_times(
                    [KTP(tp.topic, tp.partition, ts) for tp, ts in times.items()], timeout=self._timeout)
            except Exception as e:
                raise translate(e, "looking up offsets by time") from None
        return {TopicPartition(k.topic, k.partition): (k.offset if k.offset >= 0 else None) for k in got}

    def close(self) -> None:
        """Leave the group and close the client, waiting at most
        ``request_timeout`` (see :meth:`_bounded`); closed either way."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._wake.set()

        def close() -> None:
            with self._lock:
                try:
                    self._consumer.close()  # leaves the group (on_revoke runs with reason "leave")
                finally:
                    self._positions.clear()

        try:
            self._bounded(close, "closing the consumer",
                          "it goes on leaving the group in the background")
        finally:
            self._caller.stop()

    def _bounded(self, fn: Callable[[], Any], what: str, after: str) -> Any:
        """``fn()`` (a librdkafka call with no timeout of its own), waited
        for at most ``request_timeout`` (bounded.py); TimeoutError saying
        ``after`` (what became of the call) and the cluster's last error."""
        started = time.monotonic()
        timeout = self._timeout
        until = getattr(self._within, "until", None)
        if until is not None:
            timeout = max(0.0, min(timeout, until - started))
        try:
            return self._caller.call(fn, timeout, what)
        except TimeoutError as e:
            message = str(e)
            if timeout < self._timeout:  # what the calls before it left: "within 0 s" would mislead
                message = (f"{what}: not done within request_timeout ({self._timeout:g} s), "
                           f"shared with the calls before it")
            raise self._log.explain(TimeoutError(f"{message}; {after}"), started) from None

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("consumer is closed")


def _consume_error(err: Any, tp: TopicPartition) -> BaseException:
    from confluent_kafka import KafkaError

    if err.code() == KafkaError._AUTO_OFFSET_RESET:
        return NoOffsetError(f"{tp.topic}/{tp.partition}: position out of range and "
                             f"auto_offset_reset='none' ({err.str()})")
    return translate(err, f"fetching from {tp.topic}/{tp.partition}")


__all__ = ["Hooks", "KafkaConsumerBackend", "Settings", "TimeoutError", "client_config"]
