"""``LocalConsumer``: the consumer backend over a data directory.

It holds what is specific to reading local partitions: per partition a
reader and a position (None until resolved from the committed offset or
``auto_offset_reset``), fetching with the doorbell to wait on, seeks, the
offset lookups and commits to the group's offsets file. The group
protocol is delegated to :class:`~minikafka.membership.GroupMember`; what
every backend shares (validation, iteration, listeners, auto-commit) is
the facade's, in consumer.py. The interface is in docs/architecture.md.

Why one module of ~520 lines: it is one class whose state (assignment,
positions, subscription, member) one lock guards; split, each part would
reach into the others' fields under that lock.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

from .errors import (
    ClosedError,
    CommitFailedError,
    InvalidArgumentError,
    InvalidPartitionError,
    NoOffsetError,
    TopicNotFoundError,
)
from .group_state import live_member_files
from .membership import SYNC_INTERVAL, GroupMember, SyncPostponed
from .options import ConsumerConfig
from .records import Record, TopicPartition

if TYPE_CHECKING:
    from .broker import Broker
    from .consumer_backend import ConsumerHooks
    from .partition import Partition
    from .topic import Topic

log = logging.getLogger("minikafka")
SUBSCRIPTION_REFRESH = 0.5  # seconds between looks for newly created subscribed topics
RESET_ATTEMPTS = 64  # auto_offset_reset lookups raced by retention before giving up


class _Entry:
    """Per assigned partition: its storage, read cursor and position."""

    __slots__ = ("edge", "part", "position", "reader", "ready")

    def __init__(self, part: Partition) -> None:
        self.part = part
        self.reader = part.reader()
        self.position: int | None = None  # None: from the committed offset or the reset policy
        self.ready = False  # reader is positioned at ``position``
        # "earliest"/"latest": ``position`` came from seek_to_beginning/end;
        # if it is out of range when reading starts, that edge is looked up again.
        self.edge: str | None = None


class LocalConsumer:
    """Reads a broker's partitions for one :class:`~minikafka.Consumer`.

    Every method runs under one re-entrant lock, also taken by the group's
    heartbeat thread; a ``fetch`` waits for records without holding it.
    """

    def __init__(self, broker: Broker, config: ConsumerConfig, hooks: ConsumerHooks) -> None:
        if broker.closed:  # as on Kafka: a consumer of a closed broker is refused at once
            raise ClosedError(f"broker {str(broker.path)!r} is closed")
        self._broker = broker
        self._config = config
        self._hooks = hooks
        self._store = broker.offset_store(config.group_id) if config.group_id is not None else None
        self._lock = threading.RLock()
        self._assigned: dict[TopicPartition, _Entry] = {}
        self._paused: set[TopicPartition] = set()
        self._subscription: tuple[str, ...] | None = None
        self._pattern: re.Pattern[str] | None = None  # a pattern subscription: _subscription is its matches
        self._member: GroupMember | None = None
        self._last_refresh = 0.0
        self._rotate = 0
        self._closed = False
        self._leaving = False  # a member is leaving (close, unsubscribe): commits are still its own

    @property
    def member_id(self) -> str | None:
        return self._member.member_id if self._member is not None else None

    @property
    def generation(self) -> int:
        return self._member.generation if self._member is not None else 0

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("consumer is closed")
        if self._broker.closed:
            raise ClosedError(f"broker {str(self._broker.path)!r} is closed")

    # -- the group member's listener ----------------------------------------------------------

    def opening(self, partitions: set[TopicPartition]) -> set[TopicPartition]:
        missing: set[TopicPartition] = set()
        self._set_assignment([*self._assigned, *sorted(partitions - set(self._assigned))], missing)
        return missing

    def taken(self, partitions: set[TopicPartition]) -> None:
        self._hooks.assigned(set(partitions))

    def revoking(self, partitions: set[TopicPartition], reason: str) -> None:
        self._hooks.revoking(partitions, reason)

    def released(self, partitions: set[TopicPartition]) -> None:
        self._set_assignment([tp for tp in self._assigned if tp not in partitions])

    # -- assignment -----------------------------------------------------------------------------

    def subscribe(self, topics: tuple[str, ...], pattern: re.Pattern[str] | None = None) -> None:
        with self._lock:
            self._check_open()
            self._pattern = pattern
            if pattern is not None:
                topics = self._matching(pattern)
            self._subscription = topics
            if self._store is None:
                self._refresh(force=True)
                return
            if self._member is None:
                self._member = GroupMember(
                    self._store, self._broker.waker, self._partition_count, self, self._lock,
                    self._config, stopped=lambda: self._closed or self._broker.closed,
                )
            self._member.join(topics)

    def unsubscribe(self) -> None:
        with self._lock:
            self._check_open()
            member, self._member = self._member, None
            self._subscription = self._pattern = None
            if member is not None:
                self._leaving = True  # its on_revoke commit is a member's
                try:
                    member.leave()
                finally:
                    self._leaving = False
            self._set_assignment([])

    def assign(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._topic_of(tp)  # TopicNotFoundError / InvalidPartitionError before any change
        with self._lock:
            self._check_open()
            self._set_assignment(partitions)

    def subscription(self) -> tuple[str, ...]:
        return self._subscription or ()

    def assignment(self) -> set[TopicPartition]:
        return set(self._assigned)

    def rebalancing(self) -> bool:
        return self._member is not None and bool(self._member.pending)

    def _set_assignment(self, tps: Iterable[TopicPartition],
                        missing: set[TopicPartition] | None = None) -> None:
        """Read exactly ``tps``; all or nothing. A partition whose topic is
        gone (or has fewer partitions now) raises, or with ``missing`` given
        is left out and added to it (a group assignment, or a subscription,
        computed before another process deleted the topic)."""
        new: dict[TopicPartition, _Entry] = {}
        opened: list[_Entry] = []
        try:
            for tp in tps:
                entry = self._assigned.get(tp)
                if entry is None:
                    try:
                        entry = _Entry(self._topic_of(tp).partition(tp.partition))
                    except (TopicNotFoundError, InvalidPartitionError):
                        if missing is None:
                            raise
                        missing.add(tp)
                        continue
                    opened.append(entry)
                new[tp] = entry
        except BaseException:
            for entry in opened:
                entry.reader.close()
            raise
        for tp, entry in self._assigned.items():
            if tp not in new:  # no longer assigned
                entry.reader.close()
                self._paused.discard(tp)
        self._assigned = new

    def _partition_count(self, name: str) -> int | None:
        try:
            return self._broker.topic(name).partitions
        except TopicNotFoundError:
            return None

    def _refresh(self, force: bool = False) -> None:
        """Follow the subscription: the group's assignment, or else every
        partition of the subscribed topics that exist."""
        now = time.monotonic()
        due = force or now - self._last_refresh >= SUBSCRIPTION_REFRESH
        if due:
            self._last_refresh = now
            self._follow_recreated()
        if self._subscription is None:
            return
        if due and self._pattern is not None:
            self._rematch(self._pattern)
        if self._member is not None:
            self._member.sync(force)
            return
        if not due:
            return
        tps = [TopicPartition(name, p) for name in self._subscription
               for p in range(self._partition_count(name) or 0)]
        if set(tps) != set(self._assigned):
            self._set_assignment(tps, missing=set())  # a topic deleted meanwhile: the next refresh

    def _matching(self, pattern: re.Pattern[str]) -> tuple[str, ...]:
        return tuple(t for t in self._broker.list_topics() if pattern.fullmatch(t))

    def _rematch(self, pattern: re.Pattern[str]) -> None:
        """A pattern subscription follows the topics created and deleted:
        a group member rejoins with the new set (a rebalance); alone, the
        assignment below follows it."""
        names = self._matching(pattern)
        if names == self._subscription:
            return
        if self._member is not None:
            try:
                self._member.join(names)
            except TimeoutError as e:  # the group lock is busy: the next look tries again
                log.debug("group %r: rejoining for the topics %r matches postponed: %s",
                          self._config.group_id, pattern.pattern, e)
                return
        self._subscription = names

    def _follow_recreated(self) -> None:
        """A topic deleted and created again (by any process) is a new
        topic: read its partitions from the start of their new logs (as
        ``auto_offset_reset`` says), not the old files, which would stay
        silent forever."""
        for tp, entry in list(self._assigned.items()):
            try:
                part = self._topic_of(tp).partition(tp.partition)
            except (TopicNotFoundError, InvalidPartitionError):
                continue  # gone, or now too few partitions: the assignment drops it
            if part is not entry.part:
                log.info("topic %r was deleted and created again: %s/%d is read as a new partition",
                         tp.topic, tp.topic, tp.partition)
                entry.reader.close()
                self._assigned[tp] = _Entry(part)

    # -- reading --------------------------------------------------------------------------------

    def fetch(self, max_records: int, timeout: float | None) -> list[Record]:
        waker = self._broker.waker
        start = time.monotonic()
        deadline = float("inf") if timeout is None else start + timeout
        while True:
            generation = waker.generation
            with self._lock:
                if self._closed:
                    return []  # closed by another thread while we waited
                self._check_open()
                if self._member is not None:
                    # Waiting in poll counts as polling: max_poll_interval
                    # is for an application that stopped calling poll.
                    self._member.last_poll = time.monotonic()
                self._refresh_within(deadline)
                records = self._fetch(max_records)
            if records:
                return records
            now = time.monotonic()
            if now >= deadline:
                return records
            wait = waker.backoff(start)
            if self._member is not None:
                wait = min(wait, SYNC_INTERVAL)  # a rebalance is noticed within SYNC_INTERVAL
            waker.wait(generation, min(wait, deadline - now))

    def _refresh_within(self, deadline: float) -> None:
        """``_refresh`` waiting for the group lock (a rebalance's commit or
        rejoin) no longer than poll's ``deadline``; past it the rebalance
        step is left for a later look (sync does nothing half) and the
        partitions still owned are read meanwhile."""
        if self._store is None:
            self._refresh()
            return
        left = None if deadline == float("inf") else max(0.0, deadline - time.monotonic())
        try:
            with self._store.within(left):
                self._refresh()
        except SyncPostponed as e:
            log.debug("group %r: rebalance step postponed: %s", self._store.group_id, e)

    def _fetch(self, max_records: int) -> list[Record]:
        out: list[Record] = []
        items = list(self._assigned.items())
        if not items:
            return out
        self._rotate = (self._rotate + 1) % len(items)
        kd, vd = self._config.key_deserializer, self._config.value_deserializer
        # Position every partition before reading any, so that a
        # NoOffsetError comes before records are taken (as in Kafka) —
        # paused ones too: a partition paused from its assignment on starts
        # where auto_offset_reset put it then, not where "latest" is when
        # it is resumed (which skipped what was written meanwhile).
        gone: set[TopicPartition] = set()
        for tp, entry in items:
            try:
                self._ensure_ready(tp, entry)
            except ClosedError:
                if self._broker.closed:
                    raise
                # Its topic was deleted (by any process) since the last
                # refresh: nothing to read; the next refresh drops it.
                gone.add(tp)
                self._last_refresh = 0.0
        items = [(tp, s) for tp, s in items[self._rotate:] + items[: self._rotate]
                 if tp not in self._paused and tp not in gone]
        taken: list[tuple[_Entry, int]] = []
        try:
            for tp, entry in items:
                records = entry.reader.read(max_records - len(out), kd, vd)
                if not records and entry.reader.behind:
                    # Retention deleted what comes next: outside the retained
                    # range, so auto_offset_reset decides, as for a seek there.
                    entry.ready = False
                    self._ensure_ready(tp, entry)
                    records = entry.reader.read(max_records - len(out), kd, vd)
                if records:
                    taken.append((entry, records[0].offset))
                    entry.position = entry.reader.offset
                    out += records
                    if len(out) >= max_records:
                        break
        except NoOffsetError:
            for entry, first in taken:  # fetch raises: the records read so far were never returned
                entry.position, entry.ready = first, False
            raise
        return out

    def wakeup(self) -> None:
        if not self._broker.closed:
            self._broker.waker.notify()

    # -- positions ------------------------------------------------------------------------------

    def _entry(self, tp: TopicPartition) -> _Entry:
        entry = self._assigned.get(tp)
        if entry is None:
            raise InvalidArgumentError(f"{tp.topic}/{tp.partition} is not assigned to this consumer")
        return entry

    def _reset_offset(self, tp: TopicPartition, part: Partition, why: str,
                      reset: str | None = None) -> int:
        reset = reset or self._config.auto_offset_reset
        if reset == "earliest":
            return part.beginning_offset()
        if reset == "latest":
            return part.end_offset()
        raise NoOffsetError(f"{tp.topic}/{tp.partition}: {why} and auto_offset_reset='none'")

    def _seek_reset(self, tp: TopicPartition, entry: _Entry, why: str, reset: str | None = None) -> None:
        """Position at ``auto_offset_reset``'s offset (or ``reset``'s). Retention in another
        process may delete the head between looking the offset up and
        seeking to it; each miss means the head moved on, so look again."""
        for _ in range(RESET_ATTEMPTS):
            entry.position = self._reset_offset(tp, entry.part, why, reset)
            if entry.reader.seek(entry.position):
                return
        raise NoOffsetError(f"{tp.topic}/{tp.partition}: cannot position at {entry.position} "
                            f"(the log moved under {RESET_ATTEMPTS} tries)")

    def _ensure_ready(self, tp: TopicPartition, entry: _Entry) -> None:
        """Position the reader, resolving an unknown or out-of-range offset."""
        if entry.ready:
            return
        part = entry.part
        if entry.position is None:
            committed = self._store.load().get(tp) if self._store is not None else None
            if committed is None:
                self._seek_reset(tp, entry, "no committed offset")
                entry.ready = True
                return
            entry.position = committed
        if not entry.reader.seek(entry.position):
            begin, end = part.beginning_offset(), part.end_offset()
            self._seek_reset(tp, entry, f"offset {entry.position} is outside the retained range "
                                        f"{begin}..{end}", entry.edge)
        entry.ready, entry.edge = True, None

    def seek(self, tp: TopicPartition, offset: int, edge: str | None = None) -> None:
        with self._lock:
            entry = self._entry(tp)
            entry.position, entry.ready, entry.edge = offset, False, edge

    def position(self, tp: TopicPartition) -> int:
        with self._lock:
            entry = self._entry(tp)
            self._ensure_ready(tp, entry)
            assert entry.position is not None
            return entry.position

    def positions(self) -> dict[TopicPartition, int]:
        with self._lock:
            return {tp: s.position for tp, s in self._assigned.items() if s.position is not None}

    def pause(self, tps: list[TopicPartition]) -> None:
        with self._lock:
            for tp in tps:
                self._entry(tp)
            self._paused.update(tps)

    def resume(self, tps: list[TopicPartition]) -> None:
        with self._lock:
            for tp in tps:
                self._entry(tp)
            self._paused.difference_update(tps)

    def paused(self) -> set[TopicPartition]:
        return set(self._paused)

    # -- committed offsets ----------------------------------------------------------------------

    def commit(self, offsets: dict[TopicPartition, int]) -> None:
        with self._lock:
            self._check_open()
            if self._store is None:
                raise InvalidArgumentError("commit() needs a consumer created with a group_id")
            if self._member is not None:
                self._member.check_owned(offsets)
            else:
                for tp in offsets:  # a partition that does not exist: say which, store nothing
                    if tp not in self._assigned:
                        self._topic_of(tp)
                if not self._leaving and offsets:
                    with self._store.locked():  # no member joins meanwhile
                        self._refuse_while_members_run()
                        self._store.update(lambda current: {**current, **offsets})
                    return
            self._store.commit(offsets)

    def _refuse_while_members_run(self) -> None:
        """A consumer outside the group (``assign()``) commits only while
        no member runs, as Kafka's coordinator takes a commit without a
        generation only from an empty group: else it would overwrite the
        progress of partitions a member owns."""
        assert self._store is not None
        live = live_member_files(self._store.dir)
        if live:
            raise CommitFailedError(
                f"group {self._store.group_id!r} has {len(live)} running member(s): a consumer outside "
                f"the group (assign()) may commit only while none runs; offsets not committed")

    def committed(self, tp: TopicPartition) -> int | None:
        self._check_open()
        return self._store.load().get(tp) if self._store is not None else None

    # -- lookups ----------------------------------------------------------------------------------

    def _topic_of(self, tp: TopicPartition) -> Topic:
        topic = self._broker.topic(tp.topic)
        if not 0 <= tp.partition < topic.partitions:
            raise InvalidPartitionError(
                f"{tp.topic}/{tp.partition}: topic {tp.topic!r} has partitions 0..{topic.partitions - 1}"
            )
        return topic

    def _part(self, tp: TopicPartition) -> Partition:
        entry = self._assigned.get(tp)
        return entry.part if entry is not None else self._topic_of(tp).partition(tp.partition)

    def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        self._check_open()
        return {tp: self._part(tp).beginning_offset() for tp in tps}

    def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        self._check_open()
        return {tp: self._part(tp).end_offset() for tp in tps}

    def seen_end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {}  # end_offsets reads the files: nothing cheaper to offer

    def offsets_for_times(self, times: dict[TopicPartition, int]) -> dict[TopicPartition, int | None]:
        self._check_open()
        return {tp: self._part(tp).offset_for_time(ts) for tp, ts in times.items()}

    def within(self, timeout: float | None) -> AbstractContextManager[None]:
        """One deadline for this thread's group-lock waits inside (OffsetStore.within)."""
        return self._store.within(timeout) if self._store is not None else nullcontext()

    def close(self) -> None:
        """Leave the group (releasing partitions through the listener) and
        close the readers; with the broker closed, just drop the locks."""
        with self._lock:
            if self._closed:
                return
            member, self._member = self._member, None
            self._leaving = member is not None  # its on_revoke commit is a member's
            try:
                if member is not None:
                    if self._broker.closed:
                        member.abandon()
                    else:
                        member.leave()
            finally:
                if member is not None:
                    member.abandon()  # whatever leave() could not release
                self._closed = True
                self.wakeup()  # a fetch blocked in another thread returns now
                for entry in self._assigned.values():
                    entry.reader.close()
                self._assigned.clear()
