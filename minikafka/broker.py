"""The Broker: one data directory of topics and consumer groups.

Layout::

    <data>/minikafka.json              format marker
    <data>/topics/<name>/topic.json    partitions, hash, segment size, retention
    <data>/topics/<name>/<p>/          segments, indexes, writer.lock
    <data>/groups/<encoded id>/        offsets, lock
    <data>/tmp/                        topics being created or deleted

There is no server: every process that opens the directory is a peer, and
the files are the only shared state.

Why one module of ~540 lines: it is the public Broker surface, each
method a few checks over the topic, group and offsets modules that hold
the formats; topic and group administration share its locks and caches.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import uuid
import weakref
from collections.abc import Mapping
from contextlib import ExitStack, closing
from pathlib import Path
from types import EllipsisType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import attrs

from .closeable import Closeable, wait_for_closes
from .data_dir import open_data_dir
from .doorbell import open_doorbell
from .errors import (
    ClosedError,
    CorruptLogError,
    GroupNotEmptyError,
    InvalidArgumentError,
    InvalidPartitionError,
    TimeoutError,
    TopicExistsError,
    TopicNotFoundError,
)
from .group_state import STATE, GroupDescription, describe, live_member_files
from .locking import FileLock, Waker
from .offsets import OffsetStore, decode_group_id, is_group_dir_name
from .options import BrokerOptions, make
from .records import TopicPartition
from .topic import (
    METADATA,
    Topic,
    TopicIds,
    file_stamp,
    load_metadata,
    update_metadata,
    validate_topic_name,
    write_metadata,
)

if TYPE_CHECKING:
    from .local_producer import LocalProducer

log = logging.getLogger("minikafka")
DOORBELL = "doorbell"  # futex word that wakes readers in every process (doorbell.py)
#: What a data directory holds besides its marker.
OWN_ENTRIES = frozenset({"topics", "groups", "tmp", DOORBELL})


class Broker(Closeable):
    """A data directory opened by this process.

    ``Broker(path, **options)`` takes :class:`BrokerOptions` fields as
    keywords (or ``options=BrokerOptions(...)``). It is safe to share
    between threads; every process that opens the same path sees the same
    topics, records and committed offsets.

    Attributes: ``path`` (absolute), ``options`` (its :class:`BrokerOptions`).
    """

    def __init__(self, path: str | os.PathLike[str], options: BrokerOptions | None = None,
                 **kwargs: Any) -> None:
        raw = os.fspath(path) if isinstance(path, os.PathLike) else path
        if not isinstance(raw, str):  # bytes, or a path-like giving bytes
            raise TypeError(f"path must be a str or path-like, not {type(path).__name__}")
        if raw == "":  # Path("") is the current directory: never meant
            raise InvalidArgumentError("path must not be empty (name the data directory)")
        if "\x00" in raw:  # the OS would say only "embedded null byte"
            raise InvalidArgumentError(f"path {raw!r} contains a NUL character")
        if options is not None and not isinstance(options, BrokerOptions):
            raise TypeError(f"options must be a BrokerOptions (or give keywords: Broker(path, "
                            f"segment_bytes=...)), not {type(options).__name__}")
        if options is None:
            options = make(BrokerOptions, "Broker", **kwargs)
        elif kwargs:
            options = make(BrokerOptions, "Broker", **{**attrs.asdict(options), **kwargs})
        self.options = options
        self.path = Path(path).absolute()
        self._topics_dir = str(self.path / "topics")
        self._topic_ids = TopicIds(self._topics_dir)  # without the broker lock: callers hold a group lock
        self._groups_dir = str(self.path / "groups")
        self._tmp_dir = str(self.path / "tmp")
        open_data_dir(self.path, OWN_ENTRIES)
        for d in (self._topics_dir, self._groups_dir, self._tmp_dir):
            os.makedirs(d, exist_ok=True)
        self._clean_tmp()
        self._lock = threading.RLock()
        self._topics: dict[str, Topic] = {}
        self._groups: dict[str, OffsetStore] = {}
        # Producers open on this broker, whose held records close() writes first.
        self._producers: weakref.WeakSet[LocalProducer] = weakref.WeakSet()
        self.waker = Waker(options.poll_interval, open_doorbell(str(self.path / DOORBELL)))
        self._closed = False
        for name in self.list_topics():
            try:
                self.topic(name).apply_retention(timeout=0)
            except (TopicNotFoundError, ClosedError):
                pass  # deleted by another process meanwhile
            except TimeoutError as e:
                # A writer holds the lock (or is frozen holding it): it applies
                # retention itself when it next rolls; opening must not wait.
                log.info("retention of topic %r left for its writer: %s", name, e)
            except CorruptLogError as e:
                # One damaged topic must not make the others unusable: it
                # raises when used; retention of it waits for a repair.
                log.warning("topic %r skipped at open: %s", name, e)

    def _clean_tmp(self, older_than: float = 600.0) -> None:
        """Remove what a process that died mid-create or mid-delete left in
        tmp/ (anything young may still be in use by a live process)."""
        now = time.time()
        for name in os.listdir(self._tmp_dir):
            path = os.path.join(self._tmp_dir, name)
            try:
                if now - os.stat(path).st_mtime > older_than:
                    shutil.rmtree(path, ignore_errors=True)
            except FileNotFoundError:
                pass

    def __repr__(self) -> str:
        return f"<Broker {str(self.path)!r}{' closed' if self._closed else ''}>"

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"broker {str(self.path)!r} is closed")

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called (every later call raises ClosedError)."""
        return self._closed

    # -- topics ---------------------------------------------------------------

    def create_topic(self, name: str, partitions: int = 1, **settings: int | None) -> Topic:
        """Create a topic; ``TopicExistsError`` if the name is taken.

        ``settings``: any :class:`TopicSettings` field (``retention_ms``,
        ``retention_bytes``, ``segment_bytes``, ``segment_ms``,
        ``index_interval_bytes``); unset or None ones take the broker's
        defaults. Creation is atomic across processes: the topic is built
        in ``tmp/`` and renamed into place.
        """
        self._check_open()
        validate_topic_name(name)
        if not isinstance(partitions, int) or isinstance(partitions, bool):
            raise TypeError(f"partitions must be an int, not {type(partitions).__name__}")
        config = self.options.topic_config(partitions, **settings)
        final = os.path.join(self._topics_dir, name)
        if os.path.exists(final):
            raise TopicExistsError(f"topic {name!r} already exists in {self.path}")
        staging = os.path.join(self._tmp_dir, f"create-{uuid.uuid4().hex}")
        os.makedirs(staging)
        try:
            for p in range(partitions):
                os.makedirs(os.path.join(staging, str(p)))
                open(os.path.join(staging, str(p), "writer.lock"), "wb").close()
            write_metadata(staging, name, config, int(time.time() * 1000))
            try:
                os.rename(staging, final)  # fails if another process won the race
            except OSError:
                if os.path.exists(final):
                    raise TopicExistsError(f"topic {name!r} already exists in {self.path}") from None
                raise
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return self.topic(name)

    def topic(self, name: str) -> Topic:
        """The topic called ``name``; ``TopicNotFoundError`` if absent."""
        self._check_open()
        validate_topic_name(name)
        directory = os.path.join(self._topics_dir, name)
        meta = os.path.join(directory, METADATA)
        with self._lock:
            topic = self._topics.get(name)
            if topic is not None:
                try:
                    stamp: tuple[int, int] | None = file_stamp(os.stat(meta))
                except FileNotFoundError:
                    stamp = None
                if stamp == topic.meta_stamp and not topic.closed:
                    return topic
                # A new topic.json: the same topic with another retention
                # (alter_topic, any process) is kept, so its producers and
                # consumers carry on; one deleted (and maybe recreated) is not.
                if stamp is not None and not topic.closed and topic.refresh():
                    return topic
                topic.close()
                del self._topics[name]
            config, topic_id, stamp = load_metadata(directory, name)
            topic = Topic(name, directory, config, self.waker, self.options.fsync,
                          self.options.request_timeout)
            topic.meta_stamp, topic.topic_id = stamp, topic_id
            self._topics[name] = topic
            return topic

    def topic_for_send(self, name: str) -> Topic:
        """``topic(name)``, creating it when ``auto_create_topics`` is on
        (internal: what a Producer writes to)."""
        try:
            return self.topic(name)
        except TopicNotFoundError:
            if not self.options.auto_create_topics:
                raise TopicNotFoundError(
                    f"topic {name!r} does not exist (create it with create_topic, "
                    f"or open the broker with auto_create_topics=True)"
                ) from None
        try:
            return self.create_topic(name)
        except TopicExistsError:
            return self.topic(name)

    def list_topics(self) -> list[str]:
        """Names of all topics, sorted."""
        self._check_open()
        return sorted(
            n for n in os.listdir(self._topics_dir)
            if os.path.exists(os.path.join(self._topics_dir, n, METADATA))
        )

    def delete_topic(self, name: str) -> None:
        """Delete a topic, its records and the groups' offsets for it (a
        group whose offsets file is damaged, or whose lock stays held past
        ``request_timeout``, keeps them: logged as a warning).

        The directory is renamed away first (atomic), then removed; other
        processes keep valid mappings of its files until they close them.
        """
        self._check_open()
        validate_topic_name(name)
        final = os.path.join(self._topics_dir, name)
        grave = os.path.join(self._tmp_dir, f"delete-{uuid.uuid4().hex}")
        if not os.path.exists(os.path.join(final, METADATA)):
            raise TopicNotFoundError(f"topic {name!r} does not exist")
        with self._lock:
            topic = self._topics.get(name)
        # Hold every partition's writer lock while the topic goes: a
        # writer in any process that gets the lock after us finds its
        # lock file unlinked and fails instead of writing into the void.
        # All of them within one request_timeout (a writer frozen holding
        # one made this wait until it died); nothing is deleted unless
        # every lock was taken. Not under the broker's lock, which every
        # topic lookup of this process takes (a group member's heartbeat
        # thread too). A partition this process has open is held through
        # its object, so that its writers here wait for it, not for a
        # flock they would wait for holding that object.
        deadline = time.monotonic() + self.options.request_timeout
        with ExitStack() as held:
            for entry in sorted(os.listdir(final)):
                lock_path = os.path.join(final, entry, "writer.lock")
                if not (entry.isdigit() and os.path.exists(lock_path)):
                    continue
                left = max(0.0, deadline - time.monotonic())
                part = topic.opened(int(entry)) if topic is not None else None
                if part is not None:
                    held.enter_context(part.deleting(left))
                else:
                    lock = held.enter_context(closing(FileLock(lock_path)))
                    lock.acquire(timeout=left)
            try:
                os.rename(final, grave)
            except FileNotFoundError:
                raise TopicNotFoundError(f"topic {name!r} does not exist") from None
            shutil.rmtree(grave, ignore_errors=True)
        with self._lock:
            if self._topics.get(name) is topic:  # else topic() saw it gone and dropped it already
                self._topics.pop(name, None)
        if topic is not None:
            topic.close()
        # The topic is gone whatever happens here: one group whose offsets
        # cannot be rewritten (damaged, its lock held by a frozen process)
        # must not keep the others' offsets of it, nor make the delete
        # look failed. What it keeps is not the next topic's of that name
        # (offsets carry the topic id).
        for group_id in self.list_groups():
            try:
                self.offset_store(group_id).forget_topic(name)
            except (CorruptLogError, TimeoutError) as e:
                log.warning("topic %r deleted, but its offsets in group %r were left: %s",
                            name, group_id, e)

    # -- groups ---------------------------------------------------------------

    def offset_store(self, group_id: str) -> OffsetStore:
        """The committed offsets of ``group_id`` (internal: shared by this
        process's consumers of the group)."""
        with self._lock:
            store = self._groups.get(group_id)
            if store is None:
                store = OffsetStore(self._groups_dir, group_id, self.options.fsync,
                                    self.options.request_timeout, self._topic_ids.get)
                self._groups[group_id] = store
            return store

    def list_groups(self) -> list[str]:
        """Ids of every group that has or had members or committed offsets,
        sorted, until ``delete_group`` (one whose members all left, or whose
        offsets ``delete_topic`` dropped, stays listed, as Kafka lists
        *Empty* groups). A directory whose name is no encoded group id
        (made by hand) is not a group: skipped (``minikafka check``
        reports it)."""
        self._check_open()
        return sorted(
            decode_group_id(n) for n in os.listdir(self._groups_dir)
            if is_group_dir_name(n)
            and (os.path.exists(os.path.join(self._groups_dir, n, "offsets"))
                 or os.path.exists(os.path.join(self._groups_dir, n, STATE)))
        )

    def describe_group(self, group_id: str) -> GroupDescription:
        """The group's generation, members (with their assignments and last
        heartbeats) and committed offsets."""
        self._check_open()
        return describe(self.offset_store(group_id))

    def committed_offsets(self, group_id: str) -> dict[TopicPartition, int]:
        """Every offset committed by ``group_id`` (next offset to read)."""
        self._check_open()
        return self.offset_store(group_id).load()

    def lag(self, group_id: str) -> dict[TopicPartition, int]:
        """Per committed partition: end offset - committed offset."""
        self._check_open()
        out = {}
        for tp, committed in sorted(self.offset_store(group_id).load().items()):
            try:
                topic = self.topic(tp.topic)
            except TopicNotFoundError:
                continue
            if tp.partition < topic.partitions:
                out[tp] = max(0, topic.partition(tp.partition).end_offset() - committed)
        return out

    # -- administration (added for the command line) ---------------------------

    def alter_topic(self, name: str, *, retention_ms: int | EllipsisType | None = ...,
                    retention_bytes: int | EllipsisType | None = ...) -> Topic:
        """Change a topic's retention (``None``: keep forever / unbounded;
        omitted: unchanged) and apply it now.

        ``topic.json`` is replaced atomically (waiting at most
        ``request_timeout`` for partition 0's writer lock, else
        :class:`~minikafka.TimeoutError` and nothing changed). A partition
        whose writer lock stays busy past that is left to its writer, which
        applies the retention when it rolls (logged). It is the same topic:
        producers and consumers (of any process) carry on where they are;
        other processes take the new values on their next lookup of the
        topic, and their writers at their next segment roll.
        """
        self._check_open()
        topic = self.topic(name)
        changes: dict[str, Any] = {}
        if retention_ms is not ...:
            changes["retention_ms"] = retention_ms
        if retention_bytes is not ...:
            changes["retention_bytes"] = retention_bytes
        if not changes:
            raise InvalidArgumentError("alter_topic: give retention_ms and/or retention_bytes")
        attrs.evolve(topic.config, **changes)  # validates: TypeError / InvalidArgumentError
        update_metadata(os.path.join(self._topics_dir, name), name, changes,
                        self.options.request_timeout)
        topic = self.topic(name)  # the same Topic object, with the new retention (Topic.refresh)
        # The change is made; a partition whose writer lock stays busy (a
        # frozen writer) is left to that writer, which applies it when it
        # rolls, as Broker() does: raising here said "failed" of a done change.
        deadline = time.monotonic() + self.options.request_timeout
        busy = []
        for p in range(topic.partitions):
            try:
                topic.partition(p).apply_retention(max(0.0, deadline - time.monotonic()))
            except TimeoutError as e:
                busy.append(f"{name}/{p} ({e})")
        if busy:
            log.warning("alter_topic: retention not applied now to %s; its writer applies it "
                        "when it rolls", ", ".join(busy))
        return topic

    @staticmethod
    def _refuse_if_live(store: OffsetStore, why: str) -> None:
        """``GroupNotEmptyError`` if the group has live members (caller holds
        the group lock, so nobody joins meanwhile). Judged by the member
        files alone, so that a damaged state.json does not stop the group
        from being deleted."""
        live = sorted(live_member_files(store.dir))
        if live:
            raise GroupNotEmptyError(
                f"group {store.group_id!r} has {len(live)} live member(s) ({', '.join(live)}); {why}"
            )

    def _existing_group(self, group_id: str) -> OffsetStore:
        store = self.offset_store(group_id)
        if not os.path.isdir(store.dir) or group_id not in self.list_groups():
            raise InvalidArgumentError(f"group {group_id!r} does not exist in {self.path}")
        return store

    def alter_group_offsets(self, group_id: str, offsets: Mapping[TopicPartition, int], *,
                            validate_only: bool = False) -> None:
        """Set committed offsets of a group that has no live members (as
        Kafka's AdminClient.alterConsumerGroupOffsets); other partitions'
        offsets are kept. ``GroupNotEmptyError`` if a member is running.
        ``validate_only``: every check, nothing written (a dry run)."""
        self._check_open()
        if not isinstance(offsets, Mapping):
            raise TypeError(
                f"offsets must be a mapping of TopicPartition to int, not {type(offsets).__name__}"
            )
        if not isinstance(validate_only, bool):
            raise TypeError(f"validate_only must be a bool, not {type(validate_only).__name__}")
        checked: dict[TopicPartition, int] = {}
        for tp, offset in offsets.items():
            if not (isinstance(tp, tuple) and len(tp) == 2 and isinstance(tp[0], str)
                    and isinstance(tp[1], int) and not isinstance(tp[1], bool)):
                raise TypeError(f"offsets: each key must be a TopicPartition(topic: str, partition: int), "
                                f"got {tp!r}")
            if not isinstance(offset, int) or isinstance(offset, bool):
                raise TypeError(f"offsets: offset of {tp} must be an int, not {type(offset).__name__}")
            if not 0 <= offset < 1 << 63:
                raise InvalidArgumentError(f"offsets: offset of {tp} must be in 0..2**63-1, got {offset}")
            topic, partition = tp
            n = self.topic(topic).partitions
            if not 0 <= partition < n:
                raise InvalidPartitionError(f"offsets: {topic} has partitions 0..{n - 1}, not {partition}")
            checked[TopicPartition(topic, partition)] = offset
        store = self.offset_store(group_id)
        with store.locked():
            self._refuse_if_live(store, "offsets can only be changed while no consumer of the group runs")
            if validate_only:
                return
            store.update(lambda current: {**current, **checked})

    def delete_group(self, group_id: str) -> None:
        """Delete a group with no live members: its committed offsets and
        membership files. ``GroupNotEmptyError`` if a member is running."""
        self._check_open()
        store = self._existing_group(group_id)
        grave = os.path.join(self._tmp_dir, f"delete-group-{uuid.uuid4().hex}")
        with store.locked():
            self._refuse_if_live(store, "stop its consumers before deleting it")
            os.rename(store.dir, grave)
        with self._lock:
            self._groups.pop(group_id, None)
        store.close()
        shutil.rmtree(grave, ignore_errors=True)

    def attach_producer(self, producer: LocalProducer) -> None:
        """Have ``close()`` write what ``producer`` holds (called as it opens)."""
        self._producers.add(producer)

    def close(self) -> None:
        """Write what producers still open on this broker hold, then close
        every topic and group file; later calls raise ClosedError.

        Nothing sent is dropped by closing the broker first (API.md,
        "Lifetime"): all producers together wait at most ``request_timeout``;
        a record not written in time fails with ``TimeoutError``, logged.
        Nor is the final commit of a consumer dropped without close() that
        is still closing in a thread of its own (an ``AsyncConsumer``'s),
        and a commit another thread is making (or waiting to make: the
        group lock held elsewhere) ends before the group's files close; all
        within the same ``request_timeout``.
        """
        with self._lock:
            if self._closed:
                return
            producers = list(self._producers)
        deadline = time.monotonic() + self.options.request_timeout
        for producer in producers:
            producer.write_held(max(0.0, deadline - time.monotonic()))
        # Closing the group files under such a close closed its lock's
        # descriptor in mid-use: its commit failed (EBADF), or took a flock
        # on whatever file got that descriptor number next.
        if not wait_for_closes(max(0.0, deadline - time.monotonic())):
            log.warning("closing broker %s while clients dropped without close() are still closing",
                        self.path)
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self.waker.notify()  # readers blocked on this broker look again and see it closed
            for topic in self._topics.values():
                topic.close()
            self._topics.clear()
            stores = list(self._groups.values())
            self._groups.clear()
            self._topic_ids.close()
        # A thread may be inside a group's lock, or waiting for it: each
        # store's close waits for it, all within the same request_timeout,
        # and without the broker's lock, which such a holder may need to
        # finish (a rebalance looks topics up: it finds the broker closed).
        for store in stores:
            store.close(max(0.0, deadline - time.monotonic()))
        self.waker.close()  # the doorbell mapping (issue 9 #15)


def connect(url: str | os.PathLike[str], **options: Any) -> Broker:
    """Open a data directory (a path or ``file://`` URL) as a Broker.

    ``kafka://host:port[,host:port...][?config]`` URLs name a Kafka cluster
    (``minikafka.kafka.KafkaBroker``; needs ``pip install 'minikafka[kafka]'``).
    """
    if isinstance(url, os.PathLike):
        return Broker(url, **options)
    if not isinstance(url, str):
        raise TypeError(f"connect() needs a path or URL string, not {type(url).__name__}")
    parsed = urlparse(url)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise InvalidArgumentError(f"file URL {url!r} must name a local path")
        return Broker(unquote(parsed.path), **options)
    if parsed.scheme in ("kafka", "kafka+ssl"):
        from .kafka import connect as connect_kafka  # lazy: confluent-kafka is optional

        return connect_kafka(url, **options)  # type: ignore[return-value]
    if len(parsed.scheme) > 1:  # "c:" style drive letters are paths
        raise InvalidArgumentError(f"unsupported URL scheme {parsed.scheme!r} in {url!r}")
    return Broker(url, **options)
