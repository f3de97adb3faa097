"""The consumer-group protocol, with no coordinator process: ``GroupMember``.

Every member of a group, in any thread or process on the data directory,
runs the same code over the group's files (group_state.py). Ownership is a
kernel lock, not a belief: a member reads and commits a partition only
while it holds that partition's owner flock, so two members never own one
partition at the same instant, whatever their views of the state file. A
dead process's flocks are released by the kernel at once, so its
partitions move as soon as a peer notices (every ``heartbeat_interval``) —
well within ``session_timeout``, which catches members that are alive but
frozen (their heartbeat stops). Each change of members or partitions bumps
the generation.

Partitions are given up in one place, :meth:`GroupMember.release`, whatever
the reason: the listener's ``revoking`` (the user's ``on_revoke``, then the
commit) runs while the owner lock is still held, so the next owner reads
the final commit.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from typing import Protocol

from .assignor import assign
from .errors import CommitFailedError, TimeoutError
from .files import unlink_quietly
from .group_state import (
    MEMBERS,
    OWNERS,
    GroupState,
    MemberState,
    StateCache,
    live_members,
    member_path,
    now_ms,
    orphan_member_files,
    owner_path,
    read_state,
    write_heartbeat,
    write_state,
)
from .locking import FileLock, Waker
from .offsets import OffsetStore
from .options import ConsumerConfig
from .records import TopicPartition

SYNC_INTERVAL = 0.05  # seconds between looks at the group's state file while polling
PARTITION_CHECK_EVERY = 5  # heartbeats between checks for created or deleted topics
log = logging.getLogger("minikafka")


class SyncPostponed(TimeoutError):
    """:meth:`GroupMember.sync` could not take the group lock in time;
    it changed nothing (a later sync tries again)."""


class MemberListener(Protocol):
    """What a member tells the consumer backend about its partitions."""

    def opening(self, partitions: set[TopicPartition]) -> set[TopicPartition]:
        """Start reading these (their owner locks are held); returns those
        that cannot be read: their topic was deleted (or has fewer
        partitions) since the assignment was computed."""

    def taken(self, partitions: set[TopicPartition]) -> None:
        """These partitions are ours now (opened, owner locks held)."""

    def revoking(self, partitions: set[TopicPartition], reason: str) -> None:
        """These are about to be given up: last chance to commit them."""

    def released(self, partitions: set[TopicPartition]) -> None:
        """These are no longer ours."""


class GroupMember:
    """This consumer's seat in a group.

    ``lock`` is the consumer's lock: the polling thread holds it around
    every call here, and the heartbeat thread takes it to release the
    partitions of a member that stopped polling. ``partition_count(topic)``
    gives a topic's partitions (None if it does not exist).
    """

    def __init__(self, store: OffsetStore, waker: Waker, partition_count: Callable[[str], int | None],
                 listener: MemberListener, lock: threading.RLock, config: ConsumerConfig,
                 stopped: Callable[[], bool]) -> None:
        self.store = store
        self.dir = store.dir
        self.waker = waker
        self.partition_count = partition_count
        self.listener = listener
        self.lock = lock
        self.config = config  # session_timeout, heartbeat_interval, max_poll_interval
        self.stopped = stopped  # true once the consumer or its broker is closed
        self.member_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.topics: tuple[str, ...] = ()
        self.generation = 0
        self.owned: dict[TopicPartition, FileLock] = {}  # owner flocks we hold
        self.pending: set[TopicPartition] = set()  # assigned to us, owner lock still held elsewhere
        self.last_poll = time.monotonic()
        self._member_lock: FileLock | None = None
        # Re-entrant: a consumer the garbage collector closes inside a heartbeat must not deadlock.
        self._heartbeat_lock = threading.RLock()
        # One cache per thread that reads the state: sync (polling thread)
        # must notice a change even after check (heartbeat thread) read it.
        self._sync_cache = StateCache(self.dir)
        self._check_cache = StateCache(self.dir)
        self._last_sync = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error: str | None = None  # the heartbeat thread's last error logged (repr)

    # -- joining and leaving ------------------------------------------------------------------

    def join(self, topics: Iterable[str]) -> None:
        """Enter the group (or change subscription), rebalance, and take
        our share."""
        self.topics = tuple(topics)
        self._enter()
        self.sync(force=True)
        if self._thread is None:
            self._stop = threading.Event()
            # The thread holds the member weakly: a consumer its user
            # dropped is collected (and closed) rather than kept alive here.
            self._thread = threading.Thread(target=_heartbeat_loop, name="minikafka-heartbeat",
                                            args=(weakref.ref(self), self._stop,
                                                  self.config.heartbeat_interval),
                                            daemon=True)
            self._thread.start()

    def _enter(self) -> None:
        os.makedirs(os.path.join(self.dir, MEMBERS), exist_ok=True)
        os.makedirs(os.path.join(self.dir, OWNERS), exist_ok=True)
        lock = self._member_lock
        if lock is not None and os.fstat(lock.fileno()).st_nlink == 0:
            # Peers dropped us (frozen past session_timeout) and unlinked our
            # member file: heartbeats to the old inode reach nobody, and
            # without a file every peer sees us dead again at once.
            self._drop_member_lock()
        if self._member_lock is None:
            path = member_path(self.dir, self.member_id)
            lock = FileLock(path)
            try:
                # Created just now, so nobody should hold it, but a peer's or an
                # admin call's liveness probe (a flock, then close) may have
                # opened it first: frozen in between, it held the join for ever.
                lock.acquire(timeout=self.store.default_timeout())
            except BaseException:
                lock.close()
                unlink_quietly(path)  # never ours: no file of a member that never was
                raise
            self._member_lock = lock
            self.heartbeat(now_ms())
        with self.store.locked():
            state = self._without_dead(read_state(self.dir))
            member = MemberState(self.topics, socket.gethostname(), os.getpid(), now_ms())
            self._rebalance(state.with_member(self.member_id, member))

    def leave(self) -> None:
        """Release every partition and leave; the others rebalance at once."""
        self._stop.set()
        try:
            self.release(set(self.owned), "leave")
        finally:
            self.pending = set()
            self._exit()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._thread = None
        self._sync_cache.close()
        self._check_cache.close()

    def _exit(self) -> None:
        if self._member_lock is None:
            return
        try:
            with self.store.locked():
                state = read_state(self.dir)
                if self.member_id in state.members:
                    self._rebalance(self._without_dead(state.without([self.member_id])))
        finally:
            # Gone even if the state could not be rewritten (damaged, or the
            # lock timed out): a member file left behind reads as live.
            try:
                os.unlink(member_path(self.dir, self.member_id))
            except FileNotFoundError:
                pass
            self._drop_member_lock()

    def abandon(self) -> None:
        """The broker is closed: nothing can be committed or rewritten. Drop
        our locks; peers see us as dead and rebalance."""
        self._stop.set()
        for lock in self.owned.values():
            lock.close()
        self.owned.clear()
        self.pending = set()
        self._drop_member_lock()
        self._sync_cache.close()  # the heartbeat thread may still read it once: it reopens
        self._check_cache.close()

    def _drop_member_lock(self) -> None:
        """Close the member file's lock, never while a heartbeat writes
        through it: a heartbeat that took the lock before it closed would
        reopen (and so recreate) the file after the member left."""
        with self._heartbeat_lock:
            lock, self._member_lock = self._member_lock, None
            if lock is not None:
                lock.close()

    # -- adopting the assignment ----------------------------------------------------------------

    def sync(self, force: bool = False) -> None:
        """Adopt the group's current assignment (caller holds ``lock``):
        release what is no longer ours, take what is ours once its owner
        lock is free."""
        now = time.monotonic()
        if not force and now - self._last_sync < SYNC_INTERVAL:
            return
        self._last_sync = now
        if not force and not self.pending and not self._sync_cache.changed():
            return
        state = self._sync_cache.get()
        if self.member_id not in state.members or set(self.owned) - state.owned_by(self.member_id):
            # Giving partitions up commits them and rejoining rewrites the
            # state: both take the group lock. Take it first, within the
            # caller's deadline (poll's timeout: OffsetStore.within), so a
            # timeout leaves nothing half done — no on_revoke without its
            # commit, no partitions let go uncommitted — and a later sync
            # tries again; the partitions stay ours (and read) meanwhile.
            with ExitStack() as held:
                try:
                    held.enter_context(self.store.locked())
                except TimeoutError as e:
                    self._sync_cache.forget()  # the next sync looks again, changed or not
                    raise SyncPostponed(str(e)) from None
                state = self._sync_cache.get()
                if self.member_id not in state.members:
                    # Dropped by the others (we looked dead or idle): start over.
                    self.release(set(self.owned), "dropped")
                    try:
                        self._enter()
                    except TimeoutError as e:  # our member file (see _enter): the next sync rejoins
                        self._sync_cache.forget()
                        raise SyncPostponed(str(e)) from None
                    state = self._sync_cache.get()
                self.release(set(self.owned) - state.owned_by(self.member_id), "revoked")
        self.generation = state.generation
        mine = state.owned_by(self.member_id)
        taken = set()
        for tp in sorted(mine - set(self.owned)):
            lock = FileLock(owner_path(self.dir, tp))
            if lock.acquire(blocking=False):
                self.owned[tp] = lock
                taken.add(tp)
            else:
                lock.close()
        if taken:
            # The assignment may name a topic deleted since: leave those
            # pending (retried at each sync) until a peer check reassigns.
            for tp in self.listener.opening(taken):
                self.owned.pop(tp).close()
                taken.discard(tp)
        self.pending = mine - set(self.owned)
        if taken:
            self.listener.taken(taken)

    def release(self, partitions: set[TopicPartition], reason: str) -> None:
        """Give up ``partitions``: the listener commits them while we still
        own them, then the owner locks go and the next owner is woken."""
        partitions = partitions & set(self.owned)
        if not partitions:
            return
        try:
            self.listener.revoking(set(partitions), reason)
        finally:
            for tp in partitions:
                self.owned.pop(tp).close()  # closing the fd releases the flock
            self.listener.released(set(partitions))
            self.waker.notify()  # the next owner, waiting for the lock, looks again

    def check_owned(self, partitions: Iterable[TopicPartition]) -> None:
        """CommitFailedError unless this member owns every one of ``partitions``."""
        foreign = sorted(set(partitions) - set(self.owned))
        if foreign:
            raise CommitFailedError(
                f"group {self.store.group_id!r}: this member does not own "
                f"{', '.join(f'{tp.topic}/{tp.partition}' for tp in foreign)} "
                f"(generation {self.generation}); its offsets were not committed"
            )

    # -- keeping the group right ------------------------------------------------------------------

    def heartbeat(self, last_poll_ms: int) -> None:
        with self._heartbeat_lock:  # see _drop_member_lock
            lock = self._member_lock
            if lock is not None:
                write_heartbeat(lock.fileno(), last_poll_ms, self.config.session_timeout)

    def _dead(self, state: GroupState) -> list[str]:
        alive = live_members(self.dir, state, self.config.session_timeout)
        return [m for m in state.members if m != self.member_id and m not in alive]

    def _without_dead(self, state: GroupState) -> GroupState:
        dead = self._dead(state)
        for m in dead + orphan_member_files(self.dir, state, self.config.session_timeout):
            try:
                os.unlink(member_path(self.dir, m))
            except FileNotFoundError:
                pass
        return state.without(dead)

    def _partitions(self, state: GroupState) -> set[TopicPartition]:
        out: set[TopicPartition] = set()
        for name in state.topics():
            n = self.partition_count(name)
            out.update(TopicPartition(name, p) for p in range(n or 0))
        return out

    def _rebalance(self, state: GroupState) -> None:
        """Assign, write the next generation (group lock held), wake members."""
        members = {m: info.topics for m, info in state.members.items()}
        result = assign(members, self._partitions(state), state.assignment)
        write_state(self.dir, state.rebalanced(result))
        # Members blocked in poll() look at the new assignment now, rather
        # than after their next timed wake-up.
        self.waker.notify()

    def check(self, partitions_too: bool) -> None:
        """Peer check: drop dead members; rebalance when members died or
        subscribed topics appeared or vanished."""
        state = self._check_cache.get()
        suspects = bool(self._dead(state))
        if not suspects and not (partitions_too and state.assigned() != self._partitions(state)):
            return
        # Wait for the group lock only about one heartbeat: this thread must
        # keep heartbeating while a peer holds the lock (or is frozen holding
        # it), or the others drop us as dead once they get it. The next
        # tick looks again.
        try:
            with self.store.locked(timeout=self.config.heartbeat_interval):
                self._check_locked()
        except TimeoutError:
            log.debug("group %r: peer check postponed, the group lock is held", self.store.group_id)

    def _check_locked(self) -> None:
        state = read_state(self.dir)
        if self.member_id not in state.members:
            return  # we were dropped; our poll thread rejoins
        alive = self._without_dead(state)
        if alive != state or state.assigned() != self._partitions(state):
            self._rebalance(alive)

    def _tick(self, ticks: int) -> bool:
        """One heartbeat-thread round: heartbeat, notice dead peers and new
        topics, and release everything if the application stopped polling.
        False once the thread should end."""
        stop = self._stop
        try:
            idle = time.monotonic() - self.last_poll
            if idle > self.config.max_poll_interval and self.owned:
                # leave() holds the lock while it joins this thread: wait
                # for the lock only as long as we are not being stopped.
                while not self.lock.acquire(timeout=SYNC_INTERVAL):
                    if stop.is_set():
                        return False
                try:
                    if stop.is_set():
                        return False
                    # The revoke's commit and leaving both take the group
                    # lock while we hold the consumer's, which every poll
                    # needs: wait for it only about one heartbeat, as check
                    # does (a process frozen holding it made poll(0.1) wait
                    # request_timeout twice). Held, nothing is done and the
                    # next tick tries again — unless a poll came meanwhile.
                    with ExitStack() as held:
                        try:
                            held.enter_context(self.store.locked(timeout=self.config.heartbeat_interval))
                        except TimeoutError:
                            log.debug("group %r: leaving for poll-timeout postponed, the group lock is "
                                      "held", self.store.group_id)
                            return True
                        log.warning("consumer %s did not poll for %.3g s: leaving group %r",
                                    self.member_id, idle, self.store.group_id)
                        try:
                            self.release(set(self.owned), "poll-timeout")
                        finally:
                            self._exit()
                finally:
                    self.lock.release()
                return True
            self.heartbeat(int((time.time() - idle) * 1000))
            self.check(partitions_too=ticks % PARTITION_CHECK_EVERY == 0)
            self._last_error = None
        except Exception as e:  # keep heartbeating through passing errors
            if self.stopped():
                return False
            # Once per distinct error, not every tick: a damaged state.json
            # stays damaged until repaired (10 tracebacks a second otherwise).
            if repr(e) != self._last_error:
                self._last_error = repr(e)
                log.exception("minikafka heartbeat of group %r failed", self.store.group_id)
        return True


def _heartbeat_loop(ref: weakref.ref[GroupMember], stop: threading.Event, interval: float) -> None:
    """The heartbeat thread: a ``_tick`` every ``interval`` until stopped or
    the member is gone (strong only during a tick)."""
    ticks = 0
    while not stop.wait(interval):
        member = ref()
        if member is None or not member._tick(ticks):
            return
        del member
        ticks += 1
