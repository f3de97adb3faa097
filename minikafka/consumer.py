"""The Consumer: reads partitions in offset order, tracks positions, and
commits them for its group.

Positions live in the consumer; committed offsets live in the group's
sidecar file (see group.py). A position that is unknown (no commit yet) or
outside the retained range is resolved by ``auto_offset_reset``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import attrs

from .errors import (
    ClosedError,
    CommitFailedError,
    InvalidArgumentError,
    InvalidPartitionError,
    NoOffsetError,
    TopicNotFoundError,
)
from .locking import FileLock
from .membership import Membership, read_state, state_key
from .options import ConsumerConfig, make
from .records import Record, TopicPartition

if TYPE_CHECKING:
    from .broker import Broker
    from .partition import Partition, PartitionReader

_SUBSCRIPTION_REFRESH = 0.5  # seconds between looks for newly created subscribed topics
_GROUP_SYNC = 0.05  # seconds between looks at the group's state file while polling
log = logging.getLogger("minikafka")
Listener = Callable[[set[TopicPartition]], Any]


class _Assigned:
    """Per assigned partition: its storage, read cursor and position."""

    __slots__ = ("part", "position", "reader", "ready")

    def __init__(self, part: Partition) -> None:
        self.part = part
        self.reader: PartitionReader = part.reader()
        self.position: int | None = None  # None: from the committed offset or the reset policy
        self.ready = False  # reader is positioned at ``position``


def _as_tp(tp: Any) -> TopicPartition:
    if isinstance(tp, TopicPartition):
        return tp
    if isinstance(tp, tuple) and len(tp) == 2 and isinstance(tp[0], str) and isinstance(tp[1], int):
        return TopicPartition(*tp)
    raise TypeError(f"expected a TopicPartition, got {type(tp).__name__} {tp!r}")


def _check_offset(offset: Any, what: str) -> int:
    if not isinstance(offset, int) or isinstance(offset, bool):
        raise TypeError(f"{what} must be an int, not {type(offset).__name__}")
    if offset < 0:
        raise InvalidArgumentError(f"{what} must be >= 0, got {offset}")
    return offset


class Consumer:
    """Reads records from a broker's topics.

    ``Consumer(broker, *topics, group_id=None, auto_offset_reset="latest",
    enable_auto_commit=True, auto_commit_interval=5.0, key_deserializer=None,
    value_deserializer=None, max_poll_records=500, consumer_timeout=None)``

    Topics given here are subscribed. ``consumer_timeout`` ends iteration
    after that many seconds without a record (None: iterate until close()).
    A consumer is meant for one thread at a time; ``close()`` may be called
    from another thread to end a blocked ``poll`` or iteration.

    With a ``group_id``, subscribing joins the group: all members with that
    id on the data directory, in any thread or process, share the
    partitions (see docs/concurrency.md). ``on_assign(partitions)`` and
    ``on_revoke(partitions)`` run in the polling thread when partitions
    arrive and before they are given up (commit there if you commit by
    hand). ``session_timeout`` (10 s): a member whose heartbeat stopped this
    long is dropped; a member whose process died is dropped within
    ``heartbeat_interval`` (0.1 s). ``max_poll_interval`` (300 s): a member
    that does not poll for this long leaves the group by itself.
    """

    def __init__(self, broker: Broker, *topics: str, config: ConsumerConfig | None = None,
                 **options: Any) -> None:
        from .broker import Broker

        if not isinstance(broker, Broker):
            raise TypeError(f"Consumer needs a minikafka.Broker, not {type(broker).__name__}")
        if config is None:
            config = make(ConsumerConfig, "Consumer", **options)
        elif options:
            config = attrs.evolve(config, **options)
        self.config = config
        group_id = config.group_id
        self._broker = broker
        self._group = broker.offset_store(group_id) if group_id is not None else None
        self.group_id = group_id
        self._reset = config.auto_offset_reset
        self._auto_commit = config.enable_auto_commit and group_id is not None
        self._auto_commit_interval = float(config.auto_commit_interval)
        self._key_deserializer = config.key_deserializer
        self._value_deserializer = config.value_deserializer
        self._max_poll_records = config.max_poll_records
        self._consumer_timeout = config.consumer_timeout
        self._assigned: dict[TopicPartition, _Assigned] = {}
        self._paused: set[TopicPartition] = set()
        self._subscription: tuple[str, ...] | None = None
        self._manual = False
        self._last_refresh = 0.0
        self._last_commit = time.monotonic()
        self._committed_positions: dict[TopicPartition, int] = {}
        self._rotate = 0
        self._lock = threading.RLock()
        self._closed = False
        # Group membership (subscribe with a group_id).
        self._on_assign = config.on_assign
        self._on_revoke = config.on_revoke
        self._session_timeout = float(config.session_timeout)
        self._heartbeat_interval = float(config.heartbeat_interval)
        self._max_poll_interval = float(config.max_poll_interval)
        self._membership: Membership | None = None
        self._owned: dict[TopicPartition, FileLock] = {}  # owner flocks we hold
        self._pending: set[TopicPartition] = set()  # assigned to us, owner lock still held elsewhere
        self._state_key: tuple[int, int, int] | None = None
        self._last_sync = 0.0
        self._last_poll = time.monotonic()
        self.generation = 0
        self._heartbeat_stop = threading.Event()
        self._heartbeat_thread: threading.Thread | None = None
        if topics:
            self.subscribe(topics)

    def __repr__(self) -> str:
        return f"<Consumer group={self.group_id!r} partitions={len(self._assigned)}>"

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("consumer is closed")

    # -- assignment -----------------------------------------------------------

    def subscribe(self, topics: Iterable[str], listener: Any = None) -> None:
        """Follow all partitions of ``topics`` (replacing any subscription);
        with a ``group_id``, join the group and get a share of them.

        Topics that do not exist yet are picked up once created.
        ``listener``: an object with ``on_partitions_assigned(set)`` /
        ``on_partitions_revoked(set)`` (kafka-python's names) or
        ``on_assign`` / ``on_revoke`` methods; it replaces the constructor's.
        """
        from .topic import validate_topic_name

        self._check_open()
        if isinstance(topics, str):
            topics = (topics,)
        names = tuple(dict.fromkeys(topics))
        for name in names:
            validate_topic_name(name)
        if listener is not None:
            assigned = getattr(listener, "on_partitions_assigned", None) or getattr(
                listener, "on_assign", None)
            revoked = getattr(listener, "on_partitions_revoked", None) or getattr(
                listener, "on_revoke", None)
            if not callable(assigned) and not callable(revoked):
                raise TypeError("listener needs on_partitions_assigned/on_partitions_revoked "
                                "(or on_assign/on_revoke) methods")
            self._on_assign, self._on_revoke = assigned, revoked
        with self._lock:
            if self._manual:
                raise InvalidArgumentError(
                    "subscribe() after assign(): call unsubscribe() first (a consumer "
                    "either subscribes to topics or is assigned partitions)"
                )
            self._subscription = names
            if self._group is None:
                self._refresh_subscription(force=True)
                return
            if self._membership is None:
                self._membership = Membership(self._broker, self._group, self._session_timeout)
            self._membership.join(names)
            self._sync_group(force=True)
            if self._heartbeat_thread is None:
                self._heartbeat_thread = threading.Thread(
                    target=self._heartbeat_loop, name="minikafka-heartbeat", daemon=True
                )
                self._heartbeat_thread.start()

    def unsubscribe(self) -> None:
        """Drop the subscription (leaving the group) or the manual assignment."""
        self._check_open()
        with self._lock:
            self._leave_group()
            self._set_assignment([])
            self._subscription = None
            self._manual = False

    def subscription(self) -> set[str]:
        return set(self._subscription or ())

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Read exactly these partitions (no group management)."""
        self._check_open()
        tps = [_as_tp(tp) for tp in partitions]
        for tp in tps:
            topic = self._broker.topic(tp.topic)
            if not 0 <= tp.partition < topic.partitions:
                raise InvalidPartitionError(
                    f"{tp.topic}/{tp.partition}: topic {tp.topic!r} has partitions "
                    f"0..{topic.partitions - 1}"
                )
        with self._lock:
            if self._subscription is not None:
                raise InvalidArgumentError(
                    "assign() after subscribe(): call unsubscribe() first"
                )
            self._manual = True
            self._set_assignment(tps)

    def assignment(self) -> set[TopicPartition]:
        """The partitions this consumer currently reads."""
        return set(self._assigned)

    def _set_assignment(self, tps: Iterable[TopicPartition]) -> None:
        new: dict[TopicPartition, _Assigned] = {}
        for tp in tps:
            state = self._assigned.pop(tp, None)
            if state is None:
                state = _Assigned(self._broker.topic(tp.topic).partition(tp.partition))
            new[tp] = state
        for tp, state in self._assigned.items():  # revoked
            state.reader.close()
            self._paused.discard(tp)
        self._assigned = new

    def _refresh_subscription(self, force: bool = False) -> None:
        """Assign every partition of the subscribed topics that exist."""
        if self._subscription is None:
            return
        if self._membership is not None:
            self._sync_group(force)
            return
        now = time.monotonic()
        if not force and now - self._last_refresh < _SUBSCRIPTION_REFRESH:
            return
        self._last_refresh = now
        tps: list[TopicPartition] = []
        for name in self._subscription:
            try:
                topic = self._broker.topic(name)
            except TopicNotFoundError:
                continue
            tps.extend(TopicPartition(name, p) for p in range(topic.partitions))
        if set(tps) != set(self._assigned):
            self._set_assignment(tps)

    # -- group membership -----------------------------------------------------

    def _sync_group(self, force: bool = False) -> None:
        """Adopt the group's current assignment (caller holds self._lock).

        Revoked partitions: ``on_revoke``, auto-commit, then release the
        owner lock — so the next owner reads the final commit. New ones are
        read only once their owner lock is ours.
        """
        m = self._membership
        if m is None:
            return
        now = time.monotonic()
        if not force and now - self._last_sync < _GROUP_SYNC:
            return
        self._last_sync = now
        key = state_key(m.dir)
        if not force and key == self._state_key and not self._pending:
            return
        self._state_key = key
        state = read_state(m.dir)
        if m.member_id not in state["members"]:
            # Dropped by the others (we looked dead or idle): start over.
            self._revoke(set(self._owned))
            m.join(self._subscription or ())
            self._state_key = state_key(m.dir)
            state = read_state(m.dir)
        self.generation = int(state["generation"])
        mine = {TopicPartition(*tp) for tp in state["assignment"].get(m.member_id, ())}
        self._revoke(set(self._owned) - mine)
        gained = set()
        for tp in sorted(mine - set(self._owned)):
            lock = m.owner_lock(tp)
            if lock is not None:
                self._owned[tp] = lock
                gained.add(tp)
        self._pending = mine - set(self._owned)
        if gained:
            self._set_assignment(list(self._owned))
            if self._on_assign is not None:
                self._on_assign(set(gained))

    def _revoke(self, tps: set[TopicPartition]) -> None:
        tps &= set(self._owned)
        if not tps:
            return
        try:
            if self._on_revoke is not None:
                self._on_revoke(set(tps))
            if self._auto_commit:
                positions = {
                    tp: s.position for tp, s in self._assigned.items()
                    if tp in tps and s.position is not None
                }
                if positions:
                    self._group.commit(positions)  # type: ignore[union-attr]
                    self._committed_positions.update(positions)
        finally:
            for tp in tps:
                self._owned.pop(tp).close()  # closing the fd releases the flock
            self._set_assignment(list(self._owned))
            self._broker.waker.notify()  # the next owner, waiting for the lock, looks again

    def _leave_group(self) -> None:
        m = self._membership
        if m is None:
            return
        self._heartbeat_stop.set()
        try:
            self._revoke(set(self._owned))
        finally:
            self._pending = set()
            m.leave()
            self._membership = None
        thread = self._heartbeat_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._heartbeat_thread = None
        self._heartbeat_stop = threading.Event()

    def _heartbeat_loop(self) -> None:
        """Background: heartbeat, notice dead peers and new topics, and
        leave the group if the application stopped polling."""
        stop = self._heartbeat_stop
        ticks = 0
        while not stop.wait(self._heartbeat_interval):
            m = self._membership
            if m is None:
                return
            try:
                idle = time.monotonic() - self._last_poll
                if idle > self._max_poll_interval and self._owned:
                    with self._lock:
                        log.warning("consumer %s did not poll for %.0f s: leaving group %r",
                                    m.member_id, idle, self.group_id)
                        for lock in self._owned.values():
                            lock.close()
                        self._owned.clear()
                        self._set_assignment([])
                        m.leave()
                    continue
                m.heartbeat(int((time.time() - idle) * 1000))
                m.check(partitions_too=ticks % 5 == 0)
            except Exception:  # keep heartbeating through passing errors
                if self._closed or self._broker.closed:
                    return
                log.exception("minikafka heartbeat of group %r failed", self.group_id)
            ticks += 1

    def _state(self, tp: Any) -> _Assigned:
        tp = _as_tp(tp)
        state = self._assigned.get(tp)
        if state is None:
            raise InvalidArgumentError(f"{tp.topic}/{tp.partition} is not assigned to this consumer")
        return state

    # -- positions ------------------------------------------------------------

    def _reset_offset(self, tp: TopicPartition, part: Partition, why: str) -> int:
        if self._reset == "earliest":
            return part.beginning_offset()
        if self._reset == "latest":
            return part.end_offset()
        raise NoOffsetError(f"{tp.topic}/{tp.partition}: {why} and auto_offset_reset='none'")

    def _ensure_ready(self, tp: TopicPartition, state: _Assigned) -> None:
        """Position the reader, resolving an unknown or out-of-range offset."""
        if state.ready:
            return
        part = state.part
        if state.position is None:
            committed = self._group.load().get(tp) if self._group is not None else None
            if committed is None:
                state.position = self._reset_offset(tp, part, "no committed offset")
            else:
                state.position = committed
        if not state.reader.seek(state.position):
            begin, end = part.beginning_offset(), part.end_offset()
            state.position = self._reset_offset(
                tp, part, f"offset {state.position} is outside the retained range {begin}..{end}"
            )
            if not state.reader.seek(state.position):
                raise NoOffsetError(f"{tp.topic}/{tp.partition}: cannot position at {state.position}")
        state.ready = True

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Make ``offset`` the next record ``poll`` returns for ``tp``."""
        self._check_open()
        state = self._state(tp)
        state.position = _check_offset(offset, "offset")
        state.ready = False

    def seek_to_beginning(self, *tps: TopicPartition) -> None:
        """Seek to the first retained offset (all assigned partitions if none given)."""
        self._check_open()
        for tp in tps or tuple(self._assigned):
            state = self._state(tp)
            state.position = state.part.beginning_offset()
            state.ready = False

    def seek_to_end(self, *tps: TopicPartition) -> None:
        """Seek past the last record (all assigned partitions if none given)."""
        self._check_open()
        for tp in tps or tuple(self._assigned):
            state = self._state(tp)
            state.position = state.part.end_offset()
            state.ready = False

    def position(self, tp: TopicPartition) -> int:
        """The offset of the next record this consumer will return for ``tp``."""
        self._check_open()
        tp = _as_tp(tp)
        state = self._state(tp)
        with self._lock:
            self._ensure_ready(tp, state)
        assert state.position is not None
        return state.position

    # -- reading --------------------------------------------------------------

    def poll(self, timeout: float | None = 0.0, max_records: int | None = None) -> list[Record]:
        """Records from the assigned partitions, each partition in offset
        order; waits up to ``timeout`` seconds (None: forever) for one."""
        self._check_open()
        if max_records is None:
            max_records = self._max_poll_records
        elif not isinstance(max_records, int) or isinstance(max_records, bool):
            raise TypeError(f"max_records must be an int, not {type(max_records).__name__}")
        elif max_records <= 0:
            raise InvalidArgumentError(f"max_records must be > 0, got {max_records}")
        if timeout is not None and (not isinstance(timeout, (int, float)) or timeout < 0):
            raise InvalidArgumentError(f"timeout must be a number >= 0 or None, got {timeout!r}")
        self._last_poll = time.monotonic()
        if self._auto_commit and self._last_poll - self._last_commit >= self._auto_commit_interval:
            self._commit_positions()
        waker = self._broker.waker
        start = time.monotonic()
        deadline = float("inf") if timeout is None else start + timeout
        while True:
            generation = waker.generation
            with self._lock:
                if self._closed:
                    return []  # closed by another thread while we waited
                self._refresh_subscription()
                records = self._fetch(max_records)
            if records:
                return records
            now = time.monotonic()
            if now >= deadline:
                return records
            wait = waker.backoff(start)
            if self._membership is not None:
                wait = min(wait, _GROUP_SYNC)  # a rebalance is noticed within _GROUP_SYNC
            waker.wait(generation, min(wait, deadline - now))

    def _fetch(self, max_records: int) -> list[Record]:
        out: list[Record] = []
        items = list(self._assigned.items())
        if not items:
            return out
        self._rotate = (self._rotate + 1) % len(items)
        kd, vd = self._key_deserializer, self._value_deserializer
        items = [(tp, s) for tp, s in items[self._rotate:] + items[: self._rotate]
                 if tp not in self._paused]
        # Position every partition before reading any, so that a
        # NoOffsetError comes before records are taken (as in Kafka).
        for tp, state in items:
            self._ensure_ready(tp, state)
        try:
            for tp, state in items:
                records = state.reader.read(max_records - len(out), kd, vd)
                if not records and state.reader.behind:
                    # Retention deleted what comes next: outside the retained
                    # range, so auto_offset_reset decides, as for a seek there.
                    state.ready = False
                    self._ensure_ready(tp, state)
                    records = state.reader.read(max_records - len(out), kd, vd)
                if records:
                    state.position = state.reader.offset
                    out += records
                    if len(out) >= max_records:
                        break
        except NoOffsetError:
            self._rewind(out)  # poll raises: the records read so far were never returned
            raise
        return out

    def __iter__(self) -> Iterator[Record]:
        """Yield records as they arrive until close() (or ``consumer_timeout``
        idle seconds). Positions advance only past records yielded."""
        idle_since = time.monotonic()
        limit = self._consumer_timeout
        while not self._closed:
            wait = 0.1 if limit is None else max(0.0, min(0.1, idle_since + limit - time.monotonic()))
            try:
                records = self.poll(timeout=wait)
            except ClosedError:
                return
            if not records:
                if limit is not None and time.monotonic() - idle_since >= limit:
                    return
                continue
            done = 0
            try:
                for record in records:
                    yield record
                    done += 1
                    if self._closed:
                        break
            finally:
                if done < len(records):
                    self._rewind(records[done:])
            idle_since = time.monotonic()

    def _rewind(self, unconsumed: list[Record]) -> None:
        """Put back records poll returned but the caller never saw."""
        first: dict[TopicPartition, int] = {}
        for r in unconsumed:
            tp = TopicPartition(r.topic, r.partition)
            first.setdefault(tp, r.offset)
        for tp, offset in first.items():
            state = self._assigned.get(tp)
            if state is not None:
                state.position, state.ready = offset, False

    # -- committing -----------------------------------------------------------

    def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        """Commit ``offsets`` (next offset to read per partition), or the
        current position of every assigned partition."""
        self._check_open()
        if self._group is None:
            raise InvalidArgumentError("commit() needs a consumer created with a group_id")
        if offsets is None:
            self._commit_positions(force=True)
            return
        if not isinstance(offsets, Mapping):
            raise TypeError(f"offsets must be a mapping of TopicPartition to int, not "
                            f"{type(offsets).__name__}")
        clean = {_as_tp(tp): _check_offset(o, f"offset for {tp}") for tp, o in offsets.items()}
        with self._lock:
            if self._membership is not None:
                foreign = sorted(set(clean) - set(self._owned))
                if foreign:
                    raise CommitFailedError(
                        f"group {self.group_id!r}: this member does not own "
                        f"{', '.join(f'{tp.topic}/{tp.partition}' for tp in foreign)} "
                        f"(generation {self.generation}); its offsets were not committed"
                    )
            self._group.commit(clean)
        self._committed_positions.update(clean)

    def _commit_positions(self, force: bool = False) -> None:
        self._last_commit = time.monotonic()
        if self._group is None:
            return
        with self._lock:
            positions = {
                tp: s.position for tp, s in self._assigned.items() if s.position is not None
            }
            if not force:
                positions = {
                    tp: o for tp, o in positions.items() if self._committed_positions.get(tp) != o
                }
            if positions:
                self._group.commit(positions)
                self._committed_positions.update(positions)

    def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed offset for ``tp`` (None if none or no group)."""
        self._check_open()
        tp = _as_tp(tp)
        if self._group is None:
            return None
        return self._group.load().get(tp)

    # -- offsets lookups --------------------------------------------------------

    def _part(self, tp: Any) -> Partition:
        tp = _as_tp(tp)
        state = self._assigned.get(tp)
        if state is not None:
            return state.part
        topic = self._broker.topic(tp.topic)
        if not 0 <= tp.partition < topic.partitions:
            raise InvalidPartitionError(
                f"{tp.topic}/{tp.partition}: topic has partitions 0..{topic.partitions - 1}"
            )
        return topic.partition(tp.partition)

    def beginning_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        self._check_open()
        return {_as_tp(tp): self._part(tp).beginning_offset() for tp in tps}

    def end_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        self._check_open()
        return {_as_tp(tp): self._part(tp).end_offset() for tp in tps}

    def offsets_for_times(
        self, timestamps: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, int | None]:
        """Per partition, the earliest offset whose timestamp is >= the
        given time (ms), or None if every record is older."""
        self._check_open()
        out = {}
        for tp, ts in timestamps.items():
            if not isinstance(ts, int) or isinstance(ts, bool):
                raise TypeError(f"timestamp for {tp} must be an int (ms), not {type(ts).__name__}")
            out[_as_tp(tp)] = self._part(tp).offset_for_time(ts)
        return out

    def pause(self, *tps: TopicPartition) -> None:
        """Stop returning records of these partitions until resume()."""
        self._check_open()
        for tp in tps:
            self._state(tp)
            self._paused.add(_as_tp(tp))

    def resume(self, *tps: TopicPartition) -> None:
        self._check_open()
        for tp in tps:
            self._state(tp)
            self._paused.discard(_as_tp(tp))

    def paused(self) -> set[TopicPartition]:
        return set(self._paused)

    def close(self) -> None:
        """Commit (with auto-commit on) and release the partitions."""
        with self._lock:
            if self._closed:
                return
            try:
                if self._auto_commit and not self._broker.closed:
                    self._commit_positions()
                if not self._broker.closed:
                    self._leave_group()
            finally:
                self._closed = True
                self._heartbeat_stop.set()
                if not self._broker.closed:
                    self._broker.waker.notify()  # a poll blocked in another thread returns now
                if self._membership is not None:
                    self._membership.abandon()
                for lock in self._owned.values():
                    lock.close()
                self._owned.clear()
                for state in self._assigned.values():
                    state.reader.close()
