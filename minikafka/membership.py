"""Consumer-group membership shared by every thread and process of a
data directory, with no coordinator process.

Files under ``groups/<encoded id>/``::

    lock          flock: serializes membership changes and commits
    state.json    generation, members and their assignment (replaced whole)
    members/<id>  one per member; the member holds a flock on it for life.
                  16 bytes: last heartbeat (i64 ms), last poll (i64 ms)
    owners/<topic>+<p>  partition ownership locks (never deleted)

Ownership is a kernel lock, not a belief: a member reads and commits a
partition only while it holds that partition's owner flock, so two members
never own one partition at the same instant, whatever their views of the
state file. A dead process's flocks are released by the kernel at once, so
its partitions move as soon as a peer notices (every ``heartbeat_interval``)
— well within ``session_timeout``, which catches members that are alive but
frozen (their heartbeat stops). Each change of members or partitions bumps
the generation; members compare generations to learn their view is stale.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import threading
import time
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs

from .assignor import assign
from .errors import TopicNotFoundError
from .locking import FileLock
from .records import TopicPartition

if TYPE_CHECKING:
    from .broker import Broker
    from .group import GroupStore

STATE = "state.json"
HEARTBEAT = struct.Struct("<qq")  # heartbeat ms, last poll ms


@attrs.frozen
class MemberDescription:
    """One member of a group, as recorded in its state file."""

    member_id: str
    host: str
    pid: int
    topics: tuple[str, ...]
    assignment: tuple[TopicPartition, ...]
    last_heartbeat_ms: int | None
    last_poll_ms: int | None


@attrs.frozen
class GroupDescription:
    """A group's generation, members and committed offsets."""

    group_id: str
    generation: int
    members: tuple[MemberDescription, ...]
    committed: dict[TopicPartition, int] = attrs.field(hash=False)


def _now_ms() -> int:
    return int(time.time() * 1000)


def empty_state() -> dict[str, Any]:
    return {"format": 1, "generation": 0, "members": {}, "assignment": {}}


def read_state(group_dir: str) -> dict[str, Any]:
    try:
        with open(os.path.join(group_dir, STATE)) as f:
            state = json.load(f)
    except FileNotFoundError:
        return empty_state()
    return state


def state_key(group_dir: str) -> tuple[int, int, int] | None:
    """Changes whenever state.json is replaced: one stat, no read."""
    try:
        st = os.stat(os.path.join(group_dir, STATE))
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def write_state(group_dir: str, state: dict[str, Any]) -> None:
    """Replace state.json atomically (the caller holds the group lock)."""
    tmp = os.path.join(group_dir, f"{STATE}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(state, f, sort_keys=True)
    os.replace(tmp, os.path.join(group_dir, STATE))


def read_heartbeat(path: str) -> tuple[int, int] | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        data = os.pread(fd, HEARTBEAT.size, 0)
    finally:
        os.close(fd)
    return HEARTBEAT.unpack(data) if len(data) == HEARTBEAT.size else None


def member_alive(path: str, session_timeout: float, now_ms: int) -> bool:
    """A member is alive while its flock is held and its heartbeat is fresh."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # held: the process is alive
        else:
            return False  # nobody holds it: the member is gone
        data = os.pread(fd, HEARTBEAT.size, 0)
    finally:
        os.close(fd)  # also drops the probe's flock, if it got one
    if len(data) < HEARTBEAT.size:
        return True  # just created, heartbeat not written yet
    heartbeat, _ = HEARTBEAT.unpack(data)
    return now_ms - heartbeat <= session_timeout * 1000


def owner_lock_name(tp: TopicPartition) -> str:
    return f"{tp.topic}+{tp.partition}"


class Membership:
    """This consumer's seat in a group."""

    def __init__(self, broker: Broker, store: GroupStore, session_timeout: float) -> None:
        self.broker = broker
        self.store = store
        self.dir = store.dir
        self.session_timeout = session_timeout
        self.member_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.members_dir = os.path.join(self.dir, "members")
        self.owners_dir = os.path.join(self.dir, "owners")
        self.topics: tuple[str, ...] = ()
        self._member_lock: FileLock | None = None
        self._write_lock = threading.Lock()
        self._state_cache: tuple[tuple[int, int, int] | None, dict[str, Any]] = (None, {})

    @property
    def member_path(self) -> str:
        return os.path.join(self.members_dir, self.member_id)

    # -- joining and leaving --------------------------------------------------

    def join(self, topics: Iterable[str]) -> None:
        """Enter the group (or change subscription) and rebalance."""
        self.topics = tuple(topics)
        os.makedirs(self.members_dir, exist_ok=True)
        os.makedirs(self.owners_dir, exist_ok=True)
        if self._member_lock is None:
            lock = FileLock(self.member_path)
            lock.acquire()
            self._member_lock = lock
            self.heartbeat(_now_ms())
        with self.store.locked():
            state = read_state(self.dir)
            self._drop_dead(state)
            state["members"][self.member_id] = {
                "topics": list(self.topics),
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "joined_ms": _now_ms(),
            }
            self._rebalance(state)

    def leave(self) -> None:
        """Leave the group; the others rebalance at once."""
        if self._member_lock is None:
            return
        with self.store.locked():
            state = read_state(self.dir)
            if self.member_id in state["members"]:
                del state["members"][self.member_id]
                self._drop_dead(state)
                self._rebalance(state)
        try:
            os.unlink(self.member_path)
        except FileNotFoundError:
            pass
        self._member_lock.close()
        self._member_lock = None

    def abandon(self) -> None:
        """Drop our member lock without touching the state (the broker is
        closed): peers see us as dead and rebalance."""
        if self._member_lock is not None:
            self._member_lock.close()
            self._member_lock = None

    def heartbeat(self, last_poll_ms: int) -> None:
        lock = self._member_lock
        if lock is None:
            return
        with self._write_lock:
            fd = lock._open()
            os.pwrite(fd, HEARTBEAT.pack(_now_ms(), last_poll_ms), 0)

    # -- keeping the group right ----------------------------------------------

    def _drop_dead(self, state: dict[str, Any]) -> bool:
        now = _now_ms()
        dead = [
            m for m in state["members"]
            if m != self.member_id
            and not member_alive(os.path.join(self.members_dir, m), self.session_timeout, now)
        ]
        for m in dead:
            del state["members"][m]
            try:
                os.unlink(os.path.join(self.members_dir, m))
            except FileNotFoundError:
                pass
        return bool(dead)

    def _partitions(self, state: dict[str, Any]) -> list[TopicPartition]:
        topics = sorted({t for m in state["members"].values() for t in m["topics"]})
        out: list[TopicPartition] = []
        for name in topics:
            try:
                n = self.broker.topic(name).partitions
            except TopicNotFoundError:
                continue
            out.extend(TopicPartition(name, p) for p in range(n))
        return out

    def _rebalance(self, state: dict[str, Any]) -> None:
        previous = {m: [TopicPartition(*tp) for tp in tps] for m, tps in state["assignment"].items()}
        members = {m: info["topics"] for m, info in state["members"].items()}
        result = assign(members, self._partitions(state), previous)
        state["assignment"] = {m: [list(tp) for tp in tps] for m, tps in result.items()}
        state["generation"] = int(state.get("generation", 0)) + 1
        write_state(self.dir, state)
        # Members blocked in poll() look at the new assignment now, rather
        # than after their next timed wake-up.
        self.broker.waker.notify()

    def _cached_state(self) -> dict[str, Any]:
        """state.json, parsed again only when it was replaced."""
        key = state_key(self.dir)
        if key is None or key != self._state_cache[0]:
            self._state_cache = (key, read_state(self.dir))
        return self._state_cache[1]

    def check(self, partitions_too: bool) -> None:
        """Peer check (heartbeat thread): drop dead members; rebalance when
        members died or subscribed topics appeared or vanished."""
        state = self._cached_state()
        now = _now_ms()
        suspects = any(
            m != self.member_id
            and not member_alive(os.path.join(self.members_dir, m), self.session_timeout, now)
            for m in state["members"]
        )
        stale_parts = False
        if partitions_too and not suspects:
            assigned = {TopicPartition(*tp) for tps in state["assignment"].values() for tp in tps}
            stale_parts = assigned != set(self._partitions(state))
        if not (suspects or stale_parts):
            return
        with self.store.locked():
            state = read_state(self.dir)
            if self.member_id not in state["members"]:
                return  # we were dropped; our poll thread rejoins
            changed = self._drop_dead(state)
            assigned = {TopicPartition(*tp) for tps in state["assignment"].values() for tp in tps}
            if changed or assigned != set(self._partitions(state)):
                self._rebalance(state)

    def owner_lock(self, tp: TopicPartition) -> FileLock | None:
        """The owner flock of ``tp`` if free now, else None."""
        lock = FileLock(os.path.join(self.owners_dir, owner_lock_name(tp)))
        if lock.acquire(blocking=False):
            return lock
        lock.close()
        return None


def describe(broker: Broker, store: GroupStore) -> GroupDescription:
    state = read_state(store.dir)
    members = []
    for m, info in sorted(state["members"].items()):
        hb = read_heartbeat(os.path.join(store.dir, "members", m))
        members.append(
            MemberDescription(
                member_id=m,
                host=info.get("host", ""),
                pid=int(info.get("pid", 0)),
                topics=tuple(info.get("topics", ())),
                assignment=tuple(TopicPartition(*tp) for tp in state["assignment"].get(m, ())),
                last_heartbeat_ms=hb[0] if hb else None,
                last_poll_ms=hb[1] if hb else None,
            )
        )
    return GroupDescription(
        group_id=store.group_id,
        generation=int(state.get("generation", 0)),
        members=tuple(members),
        committed=store.load(),
    )
