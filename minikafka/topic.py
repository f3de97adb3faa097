"""A topic: its name rules, its metadata file and its partitions."""

from __future__ import annotations

import json
import math
import os
import re
import threading
import uuid
from typing import IO, TYPE_CHECKING, Any

import attrs

from .errors import ClosedError, CorruptLogError, InvalidTopicError, MiniKafkaError, TopicNotFoundError
from .files import unlink_quietly
from .format import TOPIC_META_VERSION
from .held_file import HeldFile
from .locking import FileLock
from .options import TopicConfig, number
from .partition import Partition
from .partitioners import partition_for

if TYPE_CHECKING:
    from .locking import Waker

_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
METADATA = "topic.json"
HASH_NAME = "xxh3_64"


def validate_topic_name(name: object) -> str:
    """Return ``name`` if it is a legal topic name; raise otherwise.

    The rules (Kafka's) also make every name a safe single path component.
    """
    if not isinstance(name, str):
        raise TypeError(f"topic name must be a str, not {type(name).__name__}")
    if not _NAME.fullmatch(name) or name in (".", ".."):
        raise InvalidTopicError(
            f"invalid topic name {name[:300]!r}: use 1-249 characters of "
            f"[A-Za-z0-9._-], not '.' or '..'"
        )
    return name


def new_topic_id() -> int:
    """A random non-zero u64 naming one incarnation of a topic (0 is "no
    id": a topic created before ids existed)."""
    return int.from_bytes(os.urandom(8), "little") or 1


def _topic_id_of(f: IO[bytes], _path: str) -> int | None:
    """The id in a topic.json: 0 if it has none (an older topic), None if
    the file is not one."""
    try:
        meta = json.loads(f.read())
    except ValueError:
        return None
    if not isinstance(meta, dict):
        return None
    topic_id = meta.get("id", 0)
    return topic_id if isinstance(topic_id, int) and not isinstance(topic_id, bool) else None


class TopicIds:
    """The ids of the topics under ``topics_dir``, from their topic.json read
    without any broker lock (the group lock may be held), each parsed again
    only once its topic.json was replaced (:class:`~minikafka.held_file.HeldFile`):
    every commit checks the ids of the topics it names (a recreated topic's
    offsets are stale), and parsing topic.json each time took most of a
    commit's time."""

    def __init__(self, topics_dir: str) -> None:
        self._dir = topics_dir
        self._lock = threading.Lock()  # commits of several groups, in threads
        self._files: dict[str, HeldFile[int | None]] = {}

    def get(self, name: str) -> int | None:
        """The id of topic ``name`` now; None: no such topic (or unreadable)."""
        if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
            return None
        with self._lock:
            held = self._files.get(name)
            if held is None:
                held = self._files[name] = HeldFile(os.path.join(self._dir, name, METADATA), _topic_id_of)
            try:
                return held.get()
            except OSError:
                held.close()
                return None

    def close(self) -> None:
        with self._lock:
            files, self._files = self._files, {}
        for held in files.values():
            held.close()


def write_metadata(directory: str, name: str, config: TopicConfig, created_ms: int) -> None:
    meta: dict[str, Any] = {"format": TOPIC_META_VERSION, "name": name, "hash": HASH_NAME,
                            "id": new_topic_id()}
    meta.update(config.to_json())
    meta["created_ms"] = created_ms
    with open(os.path.join(directory, METADATA), "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write("\n")


def update_metadata(directory: str, name: str, changes: dict[str, Any], timeout: float | None) -> None:
    """Set ``changes`` in topic.json (``alter_topic``), replacing the file
    atomically. Read, change and replace happen under partition 0's writer
    lock, which every process's update (and ``delete_topic``) takes, waiting
    at most ``timeout`` s: two at once would each write back the other's old
    value. ``TopicNotFoundError`` if the topic is deleted meanwhile."""
    meta_path = os.path.join(directory, METADATA)
    gone = TopicNotFoundError(f"topic {name!r} does not exist (deleted meanwhile)")
    lock = FileLock(os.path.join(directory, "0", "writer.lock"))
    try:
        lock.acquire(timeout=timeout)
    except FileNotFoundError:
        lock.close()
        raise gone from None
    try:
        if os.fstat(lock.fileno()).st_nlink == 0:
            raise gone
        try:
            with open(meta_path) as f:
                meta = json.load(f)
        except FileNotFoundError:
            raise gone from None
        meta.update(changes)
        tmp = f"{meta_path}.{os.getpid()}.{uuid.uuid4().hex}.tmp"  # unique: Brokers of one process too
        try:
            with open(tmp, "w") as f:
                json.dump(meta, f, indent=2, sort_keys=True)
                f.write("\n")
            os.replace(tmp, meta_path)
        except BaseException:
            unlink_quietly(tmp)
            raise
    finally:
        lock.close()  # before apply_retention, which takes it through its own descriptor


def read_metadata(directory: str, name: str) -> TopicConfig:
    """The topic's config from its topic.json."""
    return load_metadata(directory, name)[0]


def file_stamp(st: os.stat_result) -> tuple[int, int]:
    """What tells one topic.json from the next: its inode and mtime (an
    inode number alone is reused once the old file is deleted)."""
    return st.st_ino, st.st_mtime_ns


def load_metadata(directory: str, name: str) -> tuple[TopicConfig, int, tuple[int, int]]:
    """(config, topic id, ``file_stamp`` of the topic.json read): the id
    tells a topic deleted and created again from one whose retention was
    altered."""
    path = os.path.join(directory, METADATA)
    try:
        with open(path) as f:
            stamp = file_stamp(os.fstat(f.fileno()))
            meta = json.load(f)
    except FileNotFoundError:
        raise TopicNotFoundError(f"topic {name!r} does not exist") from None
    except ValueError as e:
        raise CorruptLogError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise CorruptLogError(f"{path}: topic metadata must be a JSON object, not {type(meta).__name__}")
    version = meta.get("format", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version > TOPIC_META_VERSION:
        raise CorruptLogError(f"{path}: unknown topic metadata format {version!r}")
    if meta.get("hash", HASH_NAME) != HASH_NAME:
        raise CorruptLogError(f"{path}: unknown partition hash {meta['hash']!r}")
    fields = {f.name for f in TopicConfig.__attrs_attrs__}
    if meta.get("segment_ms") == 0:  # accepted before the minimum of 1; it rolls just the same
        meta["segment_ms"] = 1
    try:
        config = TopicConfig(**{k: v for k, v in meta.items() if k in fields})
    except (TypeError, ValueError) as e:  # InvalidArgumentError is a ValueError
        raise CorruptLogError(f"{path}: damaged topic metadata ({e})") from None
    topic_id = meta.get("id", 0)
    if not isinstance(topic_id, int) or isinstance(topic_id, bool):
        raise CorruptLogError(f"{path}: topic id must be an int, not {topic_id!r}")
    return config, topic_id, stamp


class Topic:
    """A topic of one data directory. Obtain it from ``Broker.topic`` or
    ``Broker.create_topic``; one object per name and broker.

    Attributes: ``name``; ``config``, its :class:`TopicConfig` (as saved in
    ``topic.json`` when the topic was created)."""

    def __init__(self, name: str, directory: str, config: TopicConfig, waker: Waker, fsync: bool,
                 request_timeout: float | None = None) -> None:
        self.name = name
        self.request_timeout = request_timeout  # the broker's: the longest wait for a lock
        self.dir = directory
        self.config = config
        self._waker = waker
        self._fsync = fsync
        self._lock = threading.Lock()
        self._parts: list[Partition | None] = [None] * config.partitions
        self.closed = False
        self.meta_stamp = (0, 0)  # file_stamp of the topic.json read: changes on alter_topic or recreation
        self.topic_id = 0  # identity of this incarnation (topic.json's "id")

    def __repr__(self) -> str:
        return f"<Topic {self.name!r} partitions={self.partitions}>"

    @property
    def partitions(self) -> int:
        """Number of partitions."""
        return self.config.partitions

    def partition_for(self, key: bytes) -> int:
        """The partition a record with this (serialized) key goes to."""
        return partition_for(key, self.config.partitions)

    def partition(self, number: int) -> Partition:
        """The storage of one partition (internal; shared by this process)."""
        part = self._parts[number]
        if part is None:
            with self._lock:
                if self.closed:
                    raise ClosedError(f"topic {self.name!r} is closed or was deleted")
                part = self._parts[number]
                if part is None:
                    part = Partition(
                        self.name, number, os.path.join(self.dir, str(number)),
                        self.config, self._waker, self._fsync, self._mark_deleted,
                        self.refresh,
                    )
                    self._parts[number] = part
        return part

    def opened(self, number: int) -> Partition | None:
        """Partition ``number`` if this process has it open, else None (internal: delete_topic)."""
        part = self._parts[number] if 0 <= number < len(self._parts) else None
        return part if part is not None and not part.closed else None

    def refresh(self, force: bool = False) -> bool:
        """Take a retention that ``alter_topic`` (in any process) wrote to
        topic.json into this object and its partitions, keeping them (and
        so every producer's and consumer's state); False if topic.json is
        gone, unreadable or names another incarnation (deleted and created
        again), which the caller handles as a new topic. ``force``: compare
        the topic id even if the file looks unchanged."""
        try:
            if not force and file_stamp(os.stat(os.path.join(self.dir, METADATA))) == self.meta_stamp:
                return True
            config, topic_id, stamp = load_metadata(self.dir, self.name)
        except (OSError, MiniKafkaError):
            return False
        if topic_id != self.topic_id or config.partitions != self.partitions:
            return False
        # Only retention changes (alter_topic); the storage settings are written once.
        new = attrs.evolve(self.config, retention_ms=config.retention_ms,
                           retention_bytes=config.retention_bytes)
        with self._lock:
            self.config = new
            self.meta_stamp = stamp
            for part in self._parts:
                if part is not None:
                    part.config = new
        return True

    def _mark_deleted(self) -> None:
        # Another process deleted the topic: users of this object (a
        # producer's cache) must look the name up again.
        self.closed = True

    def beginning_offsets(self) -> dict[int, int]:
        """Partition -> first retained offset; ``TopicNotFoundError`` if the
        topic was deleted since this object was looked up."""
        self._check_current()
        return {p: self.partition(p).beginning_offset() for p in range(self.partitions)}

    def end_offsets(self) -> dict[int, int]:
        """Partition -> the offset the next record will get;
        ``TopicNotFoundError`` if the topic was deleted since this object
        was looked up."""
        self._check_current()
        return {p: self.partition(p).end_offset() for p in range(self.partitions)}

    def _check_current(self) -> None:
        """TopicNotFoundError unless this topic's topic.json is still its own
        (deleted, or deleted and created again: another topic's offsets)."""
        if not self.refresh(force=True):
            self.closed = True
            raise TopicNotFoundError(
                f"topic {self.name!r} was deleted (or deleted and created again) since this "
                f"Topic was looked up: look it up again with broker.topic()")

    def apply_retention(self, timeout: float | None = None) -> None:
        """Delete the closed segments that ``retention_ms`` / ``retention_bytes``
        no longer keep (also runs when a segment rolls and when a broker opens).
        Waits at most ``timeout`` seconds (default: the broker's
        ``request_timeout``) for each partition's writer lock, then raises
        :class:`~minikafka.TimeoutError`; ``TopicNotFoundError`` if the topic
        was deleted since this object was looked up; ``TypeError`` /
        ``InvalidArgumentError`` naming ``timeout`` for anything but a number
        >= 0 or None (``math.inf``: no limit)."""
        number("timeout", optional=True)(None, None, timeout)
        if timeout is None:
            timeout = self.request_timeout
        elif timeout == math.inf:
            timeout = None  # no limit (too large for a lock's wait)
        self._check_current()  # its old retention would delete another topic's segments
        for p in range(self.partitions):
            self.partition(p).apply_retention(timeout)

    def close(self) -> None:
        """Unmap this topic's partitions in this process (``Broker.close`` does it)."""
        with self._lock:
            self.closed = True
            for part in self._parts:
                if part is not None:
                    part.close()
