"""The Consumer: the facade users program against, and the half every
backend shares.

Here, once for every backend: option validation (``ConsumerConfig``),
argument checks, the listeners, iteration (a yielded record is consumed),
``stop_at_end`` / ``at_end()``, and the auto-commit policy. Where records
come from — assignment and the group, fetching, positions, commits, offset
lookups — is a :class:`~minikafka.consumer_backend.ConsumerBackend`: ``LocalConsumer`` (local_consumer.py)
for a data directory, or what ``broker.consumer_backend(config, hooks)``
returns (the Kafka backend). See docs/architecture.md.

Why one module of ~650 lines: it is one public class, whose methods are the
API (each a few lines of checks and policy over the backend) and share its
state; the backend-facing parts live in consumer_backend.py and the
backends' modules.
"""

from __future__ import annotations

import logging
import operator
import os
import re
import sys
import time
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .closeable import Closeable, close_in_thread
from .consumer_backend import ConsumerBackend
from .errors import ClosedError, CommitFailedError, InvalidArgumentError, TimeoutError
from .format import INT64_MAX
from .options import ConsumerConfig, make, wait_limit
from .records import Record, TopicPartition

if TYPE_CHECKING:
    from .broker import Broker

log = logging.getLogger("minikafka")
MAX_OFFSET = (1 << 63) - 1
ITERATION_WAIT = 0.1  # seconds an iterating consumer waits per poll (close() ends it sooner)
Listener = Callable[[set[TopicPartition]], Any]


def as_tp(tp: Any) -> TopicPartition:
    """``tp`` (a TopicPartition or a (topic, partition) pair) as a
    TopicPartition; TypeError naming a field of the wrong type (a NamedTuple
    checks none: partition '0' failed deep inside with "'<=' not supported",
    True opened the directory t/True)."""
    if not (isinstance(tp, tuple) and len(tp) == 2):
        raise TypeError(f"expected a TopicPartition, got {type(tp).__name__} {tp!r}")
    topic, partition = tp
    if not isinstance(topic, str):
        raise TypeError(f"{TopicPartition(*tp)!r}: topic must be a str, not {type(topic).__name__}")
    if not isinstance(partition, int) or isinstance(partition, bool):
        raise TypeError(f"{TopicPartition(*tp)!r}: partition must be an int, "
                        f"not {type(partition).__name__}")
    return tp if type(tp) is TopicPartition else TopicPartition(topic, partition)


def as_tps(tps: Any, what: str) -> list[TopicPartition]:
    """A list of partitions; a single one (a TopicPartition is a tuple, so
    it was taken apart: "expected a TopicPartition, got str 't'") or a
    non-iterable is a TypeError saying what to pass."""
    if isinstance(tps, TopicPartition):
        raise TypeError(f"{what} takes a list of TopicPartition, not a single one: pass [{tps!r}]")
    if isinstance(tps, str):
        raise TypeError(f"{what} takes a list of TopicPartition, not the str {tps!r}")
    try:
        items = list(tps)
    except TypeError:
        raise TypeError(f"{what} takes a list of TopicPartition, not {type(tps).__name__}") from None
    return [as_tp(tp) for tp in items]


def check_offset(offset: Any, what: str) -> int:
    if not isinstance(offset, int) or isinstance(offset, bool):
        raise TypeError(f"{what} must be an int, not {type(offset).__name__}")
    if offset < 0:
        raise InvalidArgumentError(f"{what} must be >= 0, got {offset}")
    if offset > MAX_OFFSET:  # offsets are int64 (in the offsets file as in Kafka)
        raise InvalidArgumentError(f"{what} must be < 2**63, got {offset}")
    return offset


class _Hooks:
    """The consumer's side of the backend's callbacks (kept off the public API).

    It refers to the consumer weakly: the backend (and its heartbeat
    thread) must not keep a consumer its user dropped alive, or nobody
    would ever close it and its group seat would be held until exit.
    ``closing`` holds it while ``Consumer.__del__`` closes it (the cycle
    collector clears weak references before it runs finalizers)."""

    __slots__ = ("_ref", "closing")

    def __init__(self, consumer: Consumer) -> None:
        self._ref = weakref.ref(consumer)
        self.closing: Consumer | None = None

    @property
    def consumer(self) -> Consumer | None:
        return self.closing or self._ref()

    def assigned(self, partitions: set[TopicPartition]) -> None:
        c = self.consumer
        if c is not None and c._on_assign is not None:
            c._on_assign(set(partitions))

    def revoking(self, partitions: set[TopicPartition], reason: str) -> None:
        c = self.consumer
        if c is None:
            return
        c._settle()
        if c._on_revoke is not None:
            c._on_revoke(set(partitions))
        if c._auto_commit:
            c._commit_positions(force=True, only=partitions)


def compile_pattern(pattern: Any) -> re.Pattern[str]:
    """A subscription ``pattern`` as a compiled regular expression of
    topic names; a bad one is named."""
    if isinstance(pattern, re.Pattern):
        if not isinstance(pattern.pattern, str):
            raise TypeError(f"pattern must match str topic names, not bytes: {pattern.pattern!r}")
        return pattern
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a str or re.Pattern, not {type(pattern).__name__}")
    try:
        return re.compile(pattern)
    except re.error as e:
        raise InvalidArgumentError(f"pattern {pattern!r} is not a regular expression: {e}") from None


class Consumer(Closeable):
    """Reads records from a broker's topics.

    ``Consumer(broker, *topics, **options)``: the options are the fields of
    :class:`~minikafka.ConsumerConfig` (or pass ``config=ConsumerConfig(...)``):
    ``group_id=None``, ``auto_offset_reset="latest"``,
    ``enable_auto_commit=True``, ``auto_commit_interval=5.0``,
    ``key_deserializer``/``value_deserializer``, ``max_poll_records=500``,
    ``consumer_timeout=None``, ``stop_at_end=False``, ``on_assign``/``on_revoke``,
    ``session_timeout=10.0``, ``heartbeat_interval=0.1``, ``max_poll_interval=300.0``.

    Topics given here are subscribed. ``consumer_timeout`` ends iteration
    after that many seconds without a record (None: iterate until close());
    ``stop_at_end`` ends it once every assigned partition is read to its
    end. A consumer is meant for one thread at a time; ``close()`` may be
    called from another thread to end a blocked ``poll`` or iteration.

    With a ``group_id``, subscribing joins the group: all members with that
    id on the data directory, in any thread or process, share the
    partitions (see docs/concurrency.md). ``on_assign(partitions)`` and
    ``on_revoke(partitions)`` run in the polling thread when partitions
    arrive and before they are given up (commit there if you commit by
    hand). Topics given here are joined before the constructor returns, so
    the first ``on_assign`` runs in it: a callback that uses the consumer
    object (``seek`` in ``on_assign``) needs ``subscribe()`` after
    construction. If the constructor raises (an ``on_assign`` that
    raised), it leaves the group first. A member that did not poll for
    ``max_poll_interval`` gives its partitions up from its heartbeat
    thread, running ``on_revoke`` there.
    ``session_timeout``: a member whose heartbeat stopped this long is
    dropped; a member whose process died is dropped within
    ``heartbeat_interval``.

    Attributes: ``config`` (the :class:`ConsumerConfig` in use), ``group_id``.
    """

    #: Dropped without close(), close in a thread of its own, not in the one
    #: that dropped it (set by AsyncConsumer: that thread runs an event loop).
    _drop_closes_in_thread = False

    def __init__(self, broker: Broker, *topics: str, config: ConsumerConfig | None = None,
                 **options: Any) -> None:
        from .broker import Broker

        if config is None:
            config = make(ConsumerConfig, "Consumer", **options)
        elif not isinstance(config, ConsumerConfig):
            raise TypeError(f"config must be a ConsumerConfig, not {type(config).__name__}")
        elif options:
            config = attrs.evolve(config, **options)
        self.config = config
        self.group_id = config.group_id
        self._on_assign: Listener | None = config.on_assign
        self._on_revoke: Listener | None = config.on_revoke
        self._auto_commit = config.enable_auto_commit and config.group_id is not None
        self._last_commit = time.monotonic()
        self._committed_positions: dict[TopicPartition, int] = {}
        self._subscription: tuple[str, ...] | None = None
        self._manual = False
        self._closed = False
        # The batch iteration is yielding, and its list iterator: what the
        # iterator has not reached is fetched but not yet consumed.
        self._batch: list[Record] = []
        self._cursor: Any = None
        self._hooks = _Hooks(self)
        self._pid = os.getpid()  # a forked child's copy is the parent's to close
        if isinstance(broker, Broker):
            from .local_consumer import LocalConsumer

            self._backend: ConsumerBackend = LocalConsumer(broker, config, self._hooks)
        else:
            factory = getattr(broker, "consumer_backend", None)
            if not callable(factory):
                raise TypeError(f"Consumer needs a minikafka.Broker (or what minikafka.connect "
                                f"returns), not {type(broker).__name__}")
            self._backend = factory(config, self._hooks)
        if topics:
            # One request_timeout for the join and, if it fails, the close
            # (each waited that long: a constructor took twice it).
            with self._backend.within(None):
                try:
                    self.subscribe(topics)
                except BaseException:
                    # No consumer reaches the caller, so nobody could close it:
                    # its group seat and owner locks would be held until exit.
                    try:
                        self.close()
                    except Exception as e:
                        log.debug("closing the consumer whose subscribe failed: %s", e)
                    raise

    def __repr__(self) -> str:
        if self._closed:
            return f"<Consumer group={self.group_id!r} closed>"
        return f"<Consumer group={self.group_id!r} partitions={len(self._backend.assignment())}>"

    def __del__(self, _finalizing: Callable[[], bool] = sys.is_finalizing) -> None:
        # Dropped without close(), as an unclosed file: warn, and close, so
        # the group rebalances its partitions to the other members now. Not
        # at interpreter shutdown (modules are torn down): the process ends,
        # and the kernel drops its locks. Nor in a forked child: its copy
        # would leave the group for its parent.
        if (getattr(self, "_closed", True) or "_backend" not in self.__dict__ or _finalizing()
                or self._pid != os.getpid()):
            return
        warnings.warn(f"unclosed {self!r}: closed when garbage-collected; "
                      f"call close() or use 'with'",
                      ResourceWarning, stacklevel=2, source=self)
        if self._drop_closes_in_thread:
            close_in_thread(self._close_dropped)  # the thread holds it until closed
        else:
            self._close_dropped()

    def _close_dropped(self) -> None:
        """``close()`` of a consumer dropped without it (``__del__``)."""
        self._hooks.closing = self  # listeners and the final commit run as in close()
        try:
            self.close()
        except Exception as e:
            log.warning("closing a garbage-collected consumer of group %r failed: %s",
                        self.group_id, e)
        finally:
            self._hooks.closing = None

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("consumer is closed")

    @property
    def member_id(self) -> str | None:
        """This consumer's id in its group (None outside a group)."""
        return self._backend.member_id

    @property
    def generation(self) -> int:
        """The group generation this member last adopted (0 outside a group)."""
        return self._backend.generation

    # -- assignment -----------------------------------------------------------------------------

    def subscribe(self, topics: Iterable[str] = (), listener: Any = None, *,
                  pattern: str | re.Pattern[str] | None = None) -> None:
        """Follow all partitions of ``topics`` (replacing any subscription);
        with a ``group_id``, join the group and get a share of them.

        Topics that do not exist yet are picked up once created.
        ``pattern`` (instead of ``topics``, as in kafka-python and
        aiokafka): every topic whose whole name matches this regular
        expression (``re.fullmatch``, as Kafka's Java client), now and as
        topics matching it are created or deleted (looked for twice a
        second on a directory, every second on Kafka).
        ``listener``: an object with ``on_partitions_assigned(set)`` /
        ``on_partitions_revoked(set)`` (kafka-python's names) or
        ``on_assign`` / ``on_revoke`` methods; it replaces the constructor's.
        """
        from .topic import validate_topic_name

        self._check_open()
        if pattern is not None:
            regex = compile_pattern(pattern)
            if isinstance(topics, str) or any(True for _ in topics):
                raise InvalidArgumentError("subscribe() takes topics or a pattern, not both")
            self._subscribe((), listener, regex)
            return
        if isinstance(topics, str):
            topics = (topics,)
        try:
            given = list(topics)
        except TypeError:
            raise TypeError(
                f"topics must be an iterable of topic names, not {type(topics).__name__}") from None
        for name in given:
            if isinstance(name, (list, tuple, set, frozenset)):
                raise TypeError(f"topics must be topic names (str), not a {type(name).__name__}: "
                                f"Consumer(broker, 't1', 't2') takes each topic as its own argument")
            validate_topic_name(name)
        self._subscribe(tuple(dict.fromkeys(given)), listener, None)

    def _subscribe(self, names: tuple[str, ...], listener: Any, pattern: re.Pattern[str] | None) -> None:
        if self._manual:  # before the listener is taken: a refused call changes nothing
            raise InvalidArgumentError(
                "subscribe() after assign(): call unsubscribe() first (a consumer "
                "either subscribes to topics or is assigned partitions)"
            )
        if listener is not None:
            assigned = getattr(listener, "on_partitions_assigned", None) or getattr(
                listener, "on_assign", None)
            revoked = getattr(listener, "on_partitions_revoked", None) or getattr(
                listener, "on_revoke", None)
            if not callable(assigned) and not callable(revoked):
                raise TypeError("listener needs on_partitions_assigned/on_partitions_revoked "
                                "(or on_assign/on_revoke) methods")
            self._on_assign, self._on_revoke = assigned, revoked
        self._subscription = names
        with self._backend.within(None):  # joining, then the revoke's commit: one request_timeout
            self._backend.subscribe(names, pattern)

    def unsubscribe(self) -> None:
        """Drop the subscription (leaving the group) or the manual assignment."""
        self._check_open()
        self._settle()
        # One request_timeout in all: the revoke's commit and leaving the
        # group each take the group lock (as in close).
        try:
            with self._backend.within(None):
                self._backend.unsubscribe()
        finally:
            self._subscription = None
            self._manual = False

    def subscription(self) -> set[str]:
        """The subscribed topic names (empty without a subscription); of a
        ``pattern``, the existing topics it matched at the last look."""
        self._check_open()
        return set(self._backend.subscription()) if self._subscription is not None else set()

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Read exactly these partitions (no group management)."""
        self._check_open()
        tps = as_tps(partitions, "assign()")
        if self._subscription is not None:
            raise InvalidArgumentError("assign() after subscribe(): call unsubscribe() first")
        self._settle()
        self._backend.assign(tps)
        self._manual = True

    def assignment(self) -> set[TopicPartition]:
        """The partitions this consumer currently reads."""
        self._check_open()
        return self._backend.assignment()

    def _assigned(self, tps: Iterable[Any]) -> list[TopicPartition]:
        """``tps`` as TopicPartitions, each assigned (InvalidArgumentError otherwise)."""
        out = [as_tp(tp) for tp in tps]
        assigned = self._backend.assignment()
        for tp in out:
            if tp not in assigned:
                raise InvalidArgumentError(f"{tp.topic}/{tp.partition} is not assigned to this consumer"
                                           f"{self._join_pending()}")
        return out

    def _join_pending(self) -> str:
        """What to do while a group's first assignment is still to come (on
        Kafka ``subscribe`` returns before it): for error messages."""
        try:
            pending = self._backend.rebalancing()
        except TimeoutError:
            pending = False
        return (" (the group has not assigned its partitions yet: seek in on_assign, "
                "or poll until assignment() has it)") if pending else ""

    # -- positions ------------------------------------------------------------------------------

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Make ``offset`` the next record ``poll`` returns for ``tp``."""
        self._check_open()
        (tp,) = self._assigned([tp])
        check_offset(offset, "offset")
        self._settle()
        self._backend.seek(tp, offset)

    def seek_to_beginning(self, *tps: TopicPartition) -> None:
        """Seek to the first retained offset (all assigned partitions if none given)."""
        self._seek_to(self._backend.beginning_offsets, tps, "earliest")

    def seek_to_end(self, *tps: TopicPartition) -> None:
        """Seek past the last record (all assigned partitions if none given)."""
        self._seek_to(self._backend.end_offsets, tps, "latest")

    def _seek_to(self, lookup: Callable[[list[TopicPartition]], dict[TopicPartition, int]],
                 tps: tuple[TopicPartition, ...], edge: str) -> None:
        self._check_open()
        targets = self._assigned(tps) if tps else sorted(self._backend.assignment())
        self._settle()
        for tp, offset in lookup(targets).items():
            self._backend.seek(tp, offset, edge=edge)  # offset gone by then: the edge again

    def position(self, tp: TopicPartition) -> int:
        """The offset of the next record this consumer will return for ``tp``."""
        self._check_open()
        self._settle()
        return self._backend.position(as_tp(tp))

    def at_end(self) -> bool:
        """Whether every assigned partition has been read up to its end
        offset (an empty assignment is at its end unless a group
        assignment is still being taken over)."""
        self._check_open()
        self._settle()
        if self._backend.rebalancing():
            return False
        tps = sorted(self._backend.assignment())
        positions = {tp: self._backend.position(tp) for tp in tps}
        # A partition whose last fetch saw records past the position is not
        # at its end: no request (a Kafka broker's end offsets cost a round
        # trip, which stop_at_end iteration would pay on every batch).
        seen = self._backend.seen_end_offsets(tps)
        if any(positions[tp] < end for tp, end in seen.items()):
            return False
        ends = self._backend.end_offsets(tps)
        return all(positions[tp] >= ends[tp] for tp in tps)

    # -- reading --------------------------------------------------------------------------------

    def poll(self, timeout: float | None = 0.0, max_records: int | None = None) -> list[Record]:
        """Records from the assigned partitions, each partition in offset
        order; waits up to ``timeout`` seconds (None: forever) for one."""
        self._check_open()
        if max_records is None:
            max_records = self.config.max_poll_records
        elif not isinstance(max_records, int) or isinstance(max_records, bool):
            raise TypeError(f"max_records must be an int, not {type(max_records).__name__}")
        elif max_records <= 0:
            raise InvalidArgumentError(f"max_records must be > 0, got {max_records}")
        timeout = wait_limit(timeout)
        self._settle()
        if self._auto_commit and time.monotonic() - self._last_commit >= self.config.auto_commit_interval:
            started = time.monotonic()
            self._auto_commit_now(timeout)
            if timeout is not None:
                timeout = max(0.0, timeout - (time.monotonic() - started))
        return self._backend.fetch(max_records, timeout)

    def _auto_commit_now(self, timeout: float | None) -> None:
        """poll's periodic commit, within poll's ``timeout``: with the group
        lock held elsewhere (a peer committing, or frozen holding it) it is
        left for the next poll instead of waiting ``request_timeout``."""
        try:
            with self._backend.within(timeout):
                self._commit_positions()
        except TimeoutError as e:
            self._last_commit = 0.0  # due again at the next poll
            log.debug("auto-commit of group %r postponed: %s", self.group_id, e)
        except CommitFailedError as e:
            if not self._manual:
                raise
            # assign() with the id of a group whose members run: as Kafka's
            # clients, a failed auto-commit is logged, not raised by poll.
            log.warning("auto-commit of group %r failed: %s", self.group_id, e)

    def __iter__(self) -> Iterator[Record]:
        """Yield records as they arrive until close() (or ``consumer_timeout``
        idle seconds, or the end with ``stop_at_end``). A yielded record is
        consumed: its partition's position is past it. ClosedError if the
        consumer is closed already (not a loop over nothing)."""
        self._check_open()
        return self._iterate()

    def _iterate(self) -> Iterator[Record]:
        idle_since = time.monotonic()
        idle_limit = self.config.consumer_timeout
        while not self._closed:
            try:
                if self.config.stop_at_end and self.at_end():
                    return
                wait = ITERATION_WAIT if idle_limit is None else max(
                    0.0, min(ITERATION_WAIT, idle_since + idle_limit - time.monotonic()))
                records = self.poll(timeout=wait)
            except ClosedError:
                return
            if not records:
                if idle_limit is not None and time.monotonic() - idle_since >= idle_limit:
                    return
                continue
            cursor = iter(records)
            self._batch, self._cursor = records, cursor
            try:
                # _settle() exhausts the cursor, and so does close(): no
                # check per record (yield from: ~35 ns a record, not ~65).
                yield from cursor
            finally:
                if self._cursor is cursor:
                    self._settle()
            idle_since = time.monotonic()
            # Let the batch go before the next poll: it and the next batch's
            # messages alive at once would pass the garbage collector's
            # threshold on every batch (KafkaConsumerBackend._records).
            del records, cursor

    def _settle(self, put_back: bool = True) -> None:
        """Put back the records iteration fetched but has not yielded: seek
        each partition to its first unyielded record (``put_back=False``:
        only stop the iteration's batch, as close() does with nothing to
        commit)."""
        cursor, records = self._cursor, self._batch
        if cursor is None:
            return
        self._cursor, self._batch = None, []
        # Settling from another thread (a poll-interval expiry) while the
        # iterator advances can at worst put back a record that is also
        # yielded: delivered twice, never lost.
        remaining = operator.length_hint(cursor)
        cursor.__setstate__(len(records))  # exhausted: the iterator polls again
        if not remaining or not put_back:
            return
        unyielded = records[len(records) - remaining:]
        first: dict[TopicPartition, int] = {}
        for r in unyielded:
            first.setdefault(TopicPartition(r.topic, r.partition), r.offset)
        assigned = self._backend.assignment()
        for tp, offset in first.items():
            if tp in assigned:
                self._backend.seek(tp, offset)

    # -- committing -----------------------------------------------------------------------------

    def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        """Commit ``offsets`` (next offset to read per partition), or the
        current position of every assigned partition that has one: read by
        a poll, ``position()`` or a seek (a start nothing has read yet is not
        committed, as in Kafka's Java client)."""
        self._check_open()
        if self.group_id is None:
            raise InvalidArgumentError("commit() needs a consumer created with a group_id")
        if offsets is None:
            self._settle()
            self._commit_positions(force=True)
            return
        if not isinstance(offsets, Mapping):
            raise TypeError(f"offsets must be a mapping of TopicPartition to int, not "
                            f"{type(offsets).__name__}")
        clean = {as_tp(tp): check_offset(o, f"offset for {tp}") for tp, o in offsets.items()}
        self._backend.commit(clean)
        self._committed_positions.update(clean)

    def _commit_positions(self, force: bool = False, only: set[TopicPartition] | None = None) -> None:
        """Commit the known positions (``only`` these partitions; unless
        ``force``, only those that changed since their last commit)."""
        self._last_commit = time.monotonic()
        if self.group_id is None:
            return
        positions = self._backend.positions()
        if only is not None:
            positions = {tp: o for tp, o in positions.items() if tp in only}
        if not force:
            positions = {tp: o for tp, o in positions.items() if self._committed_positions.get(tp) != o}
        if positions:
            self._backend.commit(positions)
            self._committed_positions.update(positions)

    def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed offset for ``tp`` (None if none or no group)."""
        self._check_open()
        tp = as_tp(tp)
        return self._backend.committed(tp) if self.group_id is not None else None

    # -- offsets lookups ------------------------------------------------------------------------

    def beginning_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The first retained offset of each partition (assigned or not):
        where ``seek_to_beginning`` goes."""
        self._check_open()
        return self._backend.beginning_offsets(as_tps(tps, "beginning_offsets()"))

    def end_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The offset the next record written to each partition will get
        (assigned or not): where ``seek_to_end`` goes."""
        self._check_open()
        return self._backend.end_offsets(as_tps(tps, "end_offsets()"))

    def offsets_for_times(self, timestamps: Mapping[TopicPartition, int]) -> dict[TopicPartition, int | None]:
        """Per partition, the earliest offset whose timestamp is >= the
        given time (ms), or None if every record is older."""
        self._check_open()
        if not isinstance(timestamps, Mapping):
            raise TypeError(f"timestamps must be a mapping of TopicPartition to ms, not "
                            f"{type(timestamps).__name__}")
        for tp, ts in timestamps.items():
            if not isinstance(ts, int) or isinstance(ts, bool):
                raise TypeError(f"timestamp for {tp} must be an int (ms), not {type(ts).__name__}")
            if not 0 <= ts <= INT64_MAX:  # Kafka would read -1 / -2 as "latest" / "earliest"
                raise InvalidArgumentError(f"timestamp for {tp} must be from 0 to 2**63 - 1 "
                                           f"(ms since the epoch), got {ts}")
        return self._backend.offsets_for_times({as_tp(tp): ts for tp, ts in timestamps.items()})

    def pause(self, *tps: TopicPartition) -> None:
        """Stop returning records of these partitions until resume()."""
        self._check_open()
        self._backend.pause(self._assigned(tps))

    def resume(self, *tps: TopicPartition) -> None:
        """Return records of these paused partitions again, from their positions."""
        self._check_open()
        self._backend.resume(self._assigned(tps))

    def paused(self) -> set[TopicPartition]:
        """The assigned partitions that are paused."""
        self._check_open()
        return self._backend.paused()

    def close(self) -> None:
        """Commit (with auto-commit on) and release the partitions."""
        if self._closed:
            return
        # One request_timeout for the whole close: the final commit, the
        # revoke's commit and leaving the group each take the group lock.
        with self._backend.within(None):
            try:
                self._settle(put_back=self._auto_commit)  # an iteration under way stops at once
                if self._auto_commit:
                    try:
                        self._commit_positions()
                    except (ClosedError, CommitFailedError) as e:  # broker closed, or partitions moved on
                        log.debug("final commit of group %r skipped: %s", self.group_id, e)
            finally:
                try:
                    self._backend.close()  # on_revoke may still read positions here
                finally:
                    self._closed = True
