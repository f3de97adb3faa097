"""A consumer group's shared files, typed: ``state.json`` and the member
files. This is the only module that reads or writes them.

Files under ``groups/<encoded id>/`` (``offsets`` and ``lock``: offsets.py)::

    state.json    generation, members and their assignment; replaced whole
                  (write a temporary file, rename) under the group lock
    members/<id>  one per member; the member holds a flock on it for life.
                  24 bytes: last heartbeat (i64 ms), last poll (i64 ms),
                  the member's session timeout (i64 ms; files of 16 bytes,
                  from before it was kept, are judged by the reader's)
    owners/<topic>+<p>  partition ownership locks (never deleted)

``state.json`` (format 1)::

    {"format": 1, "generation": 7,
     "members": {"<member id>": {"topics": [...], "host": "...", "pid": 123, "joined_ms": ...}},
     "assignment": {"<member id>": [["topic", 0], ...]}}
"""

from __future__ import annotations

import fcntl
import json
import os
import struct
import time
from collections.abc import Iterable, Mapping
from typing import IO, Any

import attrs

from .errors import CorruptLogError
from .held_file import HeldFile
from .offsets import OffsetStore
from .records import TopicPartition
from .topic import validate_topic_name

STATE = "state.json"
STATE_VERSION = 1
MEMBERS = "members"
OWNERS = "owners"
HEARTBEAT = struct.Struct("<qq")  # heartbeat ms, last poll ms
SESSION = struct.Struct("<q")  # after HEARTBEAT: the member's own session timeout, ms
MEMBER_FILE_SIZE = HEARTBEAT.size + SESSION.size


def now_ms() -> int:
    return int(time.time() * 1000)


@attrs.frozen
class MemberState:
    """One member as ``state.json`` records it."""

    topics: tuple[str, ...]
    host: str = ""
    pid: int = 0
    joined_ms: int = 0


@attrs.frozen
class GroupState:
    """What ``state.json`` holds. Immutable: changes make a new state."""

    generation: int = 0
    members: Mapping[str, MemberState] = attrs.field(factory=dict)
    assignment: Mapping[str, tuple[TopicPartition, ...]] = attrs.field(factory=dict)

    def owned_by(self, member_id: str) -> set[TopicPartition]:
        return set(self.assignment.get(member_id, ()))

    def assigned(self) -> set[TopicPartition]:
        return {tp for tps in self.assignment.values() for tp in tps}

    def topics(self) -> list[str]:
        """Every topic some member subscribes to, sorted."""
        return sorted({t for m in self.members.values() for t in m.topics})

    def with_member(self, member_id: str, member: MemberState) -> GroupState:
        return attrs.evolve(self, members={**self.members, member_id: member})

    def without(self, member_ids: Iterable[str]) -> GroupState:
        gone = set(member_ids)
        return attrs.evolve(self, members={m: s for m, s in self.members.items() if m not in gone})

    def rebalanced(self, assignment: Mapping[str, Iterable[TopicPartition]]) -> GroupState:
        """The next generation, with ``assignment``."""
        return attrs.evolve(
            self, generation=self.generation + 1,
            assignment={m: tuple(tps) for m, tps in assignment.items()},
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": STATE_VERSION,
            "generation": self.generation,
            "members": {m: {"topics": list(s.topics), "host": s.host, "pid": s.pid,
                            "joined_ms": s.joined_ms} for m, s in self.members.items()},
            "assignment": {m: [list(tp) for tp in tps] for m, tps in self.assignment.items()},
        }

    @classmethod
    def from_json(cls, data: Any, path: str) -> GroupState:
        try:
            if data.get("format", 1) > STATE_VERSION:
                raise CorruptLogError(f"{path}: group state format {data['format']} is newer "
                                      f"than this minikafka reads ({STATE_VERSION})")
            members = {
                _member_id(m, path): MemberState(tuple(map(validate_topic_name, info.get("topics", ()))),
                                                 str(info.get("host", "")), int(info.get("pid", 0)),
                                                 int(info.get("joined_ms", 0)))
                for m, info in data.get("members", {}).items()
            }
            # Topic names become owner lock file names: a bad one is damage
            # (InvalidTopicError is a ValueError), never a path elsewhere.
            assignment = {
                str(m): tuple(TopicPartition(validate_topic_name(t), int(p)) for t, p in tps)
                for m, tps in data.get("assignment", {}).items()
            }
            return cls(int(data.get("generation", 0)), members, assignment)
        except (AttributeError, TypeError, ValueError) as e:
            raise CorruptLogError(f"{path}: malformed group state ({e})") from None


def _member_id(member_id: str, path: str) -> str:
    """``member_id`` if it names a file in ``members/``. A peer unlinks the
    member file of a member it finds dead: an id like ``../offsets`` in a
    damaged state file would have deleted the group's committed offsets."""
    if not member_id or member_id in (".", "..") or "/" in member_id or "\0" in member_id:
        raise CorruptLogError(f"{path}: malformed group state (member id {member_id!r})")
    return member_id


def _load(f: IO[bytes] | IO[str], path: str) -> GroupState:
    try:
        data = json.load(f)
    except ValueError as e:
        raise CorruptLogError(f"{path}: not valid JSON ({e})") from None
    return GroupState.from_json(data, path)


def read_state(group_dir: str) -> GroupState:
    path = os.path.join(group_dir, STATE)
    try:
        with open(path) as f:
            return _load(f, path)
    except FileNotFoundError:
        return GroupState()


def write_state(group_dir: str, state: GroupState) -> None:
    """Replace state.json atomically (the caller holds the group lock)."""
    tmp = os.path.join(group_dir, f"{STATE}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(state.to_json(), f, sort_keys=True)
    os.replace(tmp, os.path.join(group_dir, STATE))


class StateCache:
    """state.json of one group, parsed again only when it was replaced
    (:class:`~minikafka.held_file.HeldFile`: why the file is held open)."""

    def __init__(self, group_dir: str) -> None:
        self.dir = group_dir
        self._file: HeldFile[GroupState] = HeldFile(os.path.join(group_dir, STATE), _load)

    def changed(self) -> bool:
        return self._file.changed()

    def forget(self) -> None:
        """Parse again at the next get(), changed or not."""
        self._file.key = None

    def get(self) -> GroupState:
        state = self._file.get()
        return GroupState() if state is None else state

    def close(self) -> None:
        self._file.close()


# -- member files -------------------------------------------------------------------------------


def member_path(group_dir: str, member_id: str) -> str:
    return os.path.join(group_dir, MEMBERS, member_id)


def owner_path(group_dir: str, tp: TopicPartition) -> str:
    return os.path.join(group_dir, OWNERS, f"{tp.topic}+{tp.partition}")


def write_heartbeat(fd: int, last_poll_ms: int, session_timeout: float) -> None:
    os.pwrite(fd, HEARTBEAT.pack(now_ms(), last_poll_ms) + SESSION.pack(round(session_timeout * 1000)), 0)


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


def member_alive(path: str, session_timeout: float, now: int) -> bool:
    """A member is alive while its flock is held and its heartbeat is fresh
    by its own session timeout (as a Kafka coordinator judges each member by
    the timeout it joined with); ``session_timeout`` is for files that do
    not say theirs."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # held: the process is alive
        else:
            return False  # nobody holds it: the member is gone
        data = os.pread(fd, MEMBER_FILE_SIZE, 0)
    finally:
        os.close(fd)  # also drops the probe's flock, if it got one
    if len(data) < HEARTBEAT.size:
        return True  # just created, heartbeat not written yet
    heartbeat: int = HEARTBEAT.unpack_from(data)[0]
    limit_ms: float = SESSION.unpack_from(data, HEARTBEAT.size)[0] if len(data) == MEMBER_FILE_SIZE \
        else session_timeout * 1000
    return now - heartbeat <= limit_ms


def live_members(group_dir: str, state: GroupState, session_timeout: float) -> set[str]:
    """The members of ``state`` that are alive (see :func:`member_alive`)."""
    now = now_ms()
    return {m for m in state.members if member_alive(member_path(group_dir, m), session_timeout, now)}


def orphan_member_files(group_dir: str, state: GroupState, session_timeout: float) -> list[str]:
    """Member files the state does not name, of members that died before
    they were written into it (killed inside their first join). Only files
    unchanged for ``session_timeout``: a joining member creates its file a
    moment before it takes the flock, and must not lose it in between."""
    try:
        names = os.listdir(os.path.join(group_dir, MEMBERS))
    except FileNotFoundError:
        return []
    now = now_ms()
    out = []
    for m in names:
        if m in state.members:
            continue  # judged by live_members
        path = member_path(group_dir, m)
        try:
            mtime_ms = os.stat(path).st_mtime_ns // 1_000_000
        except FileNotFoundError:
            continue
        if now - mtime_ms > session_timeout * 1000 and not member_alive(path, session_timeout, now):
            out.append(m)
    return out


#: How old the heartbeat of a member whose file does not say its own session
#: timeout (written before it was kept) may be, for administration and for a
#: commit from outside the group: the consumers' default session_timeout.
LIVE_SESSION_TIMEOUT = 10.0


def live_member_files(group_dir: str, session_timeout: float = LIVE_SESSION_TIMEOUT) -> set[str]:
    """Every member alive by its member file, without reading ``state.json``:
    a live member holds its file whatever the state says, and a damaged
    state must not stop administration (``delete_group``) of the group."""
    try:
        names = os.listdir(os.path.join(group_dir, MEMBERS))
    except FileNotFoundError:
        return set()
    now = now_ms()
    return {m for m in names if member_alive(member_path(group_dir, m), session_timeout, now)}


# -- describe_group -----------------------------------------------------------------------------


@attrs.frozen
class MemberDescription:
    """One member of a group, as recorded in its state file."""

    #: The member's id in the group (``Consumer.member_id``).
    member_id: str
    #: Host name of the member's process.
    host: str
    #: Process id of the member.
    pid: int
    #: The topics it subscribed to.
    topics: tuple[str, ...]
    #: The partitions assigned to it in the current generation.
    assignment: tuple[TopicPartition, ...]
    #: When it last heartbeat (ms since the epoch); None if never recorded.
    last_heartbeat_ms: int | None
    #: When it last polled (ms since the epoch); None if never recorded.
    last_poll_ms: int | None


@attrs.frozen
class GroupDescription:
    """A group's generation, members and committed offsets."""

    #: The group's id.
    group_id: str
    #: The generation: raised by each rebalance.
    generation: int
    #: The members, by member id.
    members: tuple[MemberDescription, ...]
    #: The committed offset (next to read) of each partition with one.
    committed: dict[TopicPartition, int] = attrs.field(hash=False)


def describe(store: OffsetStore) -> GroupDescription:
    state = read_state(store.dir)
    members = []
    for m, info in sorted(state.members.items()):
        hb = read_heartbeat(member_path(store.dir, m))
        members.append(MemberDescription(
            member_id=m, host=info.host, pid=info.pid, topics=info.topics,
            assignment=state.assignment.get(m, ()),
            last_heartbeat_ms=hb[0] if hb else None, last_poll_ms=hb[1] if hb else None,
        ))
    return GroupDescription(store.group_id, state.generation, tuple(members), store.load())
