"""KafkaBroker: the Broker surface (topics, offsets, groups) on a Kafka cluster.

Built on confluent-kafka's AdminClient plus one private consumer for
offsets (offsets.py). Topic names are validated here with the data
directory's rules, since some brokers (Tansu 0.6) accept any name.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from ..consumer import as_tp, check_offset
from ..errors import (
    ClosedError,
    GroupNotEmptyError,
    InvalidArgumentError,
    InvalidPartitionError,
    MiniKafkaError,
    TopicExistsError,
    TopicNotFoundError,
)
from ..group_state import GroupDescription, MemberDescription
from ..offsets import check_group_id
from ..partitioners import partition_for
from ..records import TopicPartition
from ..topic import validate_topic_name
from .errors import TimeoutError, make_client, translate
from .logs import ClientLog
from .offsets import OffsetProbe
from .url import parse_url

#: Topic options of ``create_topic`` and the Kafka topic configs they set.
TOPIC_CONFIGS = {"retention_ms": "retention.ms", "retention_bytes": "retention.bytes",
                 "segment_bytes": "segment.bytes", "segment_ms": "segment.ms"}


def _check_timeout(name: str, value: Any) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if value <= 0:
        raise InvalidArgumentError(f"{name} must be > 0, got {value}")
    return float(value)


class KafkaTopic:
    """A topic of a Kafka cluster, as :class:`minikafka.Topic` describes one."""

    def __init__(self, broker: KafkaBroker, name: str, partitions: int) -> None:
        self.name = name
        self._broker = broker
        self._partitions = partitions

    def __repr__(self) -> str:
        return f"<KafkaTopic {self.name!r} partitions={self._partitions}>"

    @property
    def partitions(self) -> int:
        """Number of partitions (as of the metadata this object was made from)."""
        return self._partitions

    def partition_for(self, key: bytes) -> int:
        """The partition a record with this (serialized) key goes to: xxh3, as on a directory."""
        return partition_for(key, self._partitions)

    def _tps(self) -> list[TopicPartition]:
        return [TopicPartition(self.name, p) for p in range(self._partitions)]

    def beginning_offsets(self) -> dict[int, int]:
        """Partition -> first retained offset."""
        got = self._broker.probe().beginning_offsets(self._tps(), self._broker.request_timeout)
        return {tp.partition: o for tp, o in got.items()}

    def end_offsets(self) -> dict[int, int]:
        """Partition -> the offset the next record will get (the high watermark)."""
        got = self._broker.probe().end_offsets(self._tps(), self._broker.request_timeout)
        return {tp.partition: o for tp, o in got.items()}


#: Longest wait in one metadata call (``KafkaBroker._list_topics``): how
#: soon Ctrl-C is seen while a cluster does not answer.
METADATA_SLICE = 0.25

#: CreateTopics takes the partition count as an int32.
KAFKA_MAX_PARTITIONS = 2**31 - 1


class KafkaBroker:
    """A Kafka cluster opened through ``minikafka.connect("kafka://...")``.

    ``request_timeout`` (seconds, default 30) bounds every admin call;
    ``auto_create_topics`` lets a Producer create the topics it sends to;
    ``config`` adds librdkafka settings to those of the URL's query (they
    apply to the admin client and to every Producer and Consumer made on
    this broker); ``producer_config`` / ``consumer_config`` apply only to
    Producers / Consumers (e.g. ``fetch.wait.max.ms``). Safe to share
    between threads.
    """

    def __init__(self, url: str, *, request_timeout: float = 30.0, auto_create_topics: bool = False,
                 config: dict[str, Any] | None = None,
                 producer_config: dict[str, Any] | None = None,
                 consumer_config: dict[str, Any] | None = None) -> None:
        from confluent_kafka.admin import AdminClient

        self.url = url
        self.request_timeout = _check_timeout("request_timeout", request_timeout)
        if not isinstance(auto_create_topics, bool):
            raise TypeError(f"auto_create_topics must be a bool, not {type(auto_create_topics).__name__}")
        self.auto_create_topics = auto_create_topics
        for name, value in (("config", config), ("producer_config", producer_config),
                            ("consumer_config", consumer_config)):
            if value is not None and not isinstance(value, dict):
                raise TypeError(f"{name} must be a dict, not {type(value).__name__}")
        self.config: dict[str, Any] = {**parse_url(url), **(config or {})}
        self.producer_config: dict[str, Any] = dict(producer_config or {})
        self.consumer_config: dict[str, Any] = dict(consumer_config or {})
        self._log = ClientLog()
        self._admin: Any = make_client(AdminClient, dict(self.config), "admin client", self._log)
        self._lock = threading.Lock()
        self._probe: OffsetProbe | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"<KafkaBroker {self.url!r}{' closed' if self._closed else ''}>"

    def __enter__(self) -> KafkaBroker:
        self._check_open()  # as a directory's Broker (and a closed file)
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"broker {self.url!r} is closed")

    def probe(self) -> OffsetProbe:
        """The consumer that reads offsets for this broker (made on first use)."""
        with self._lock:
            self._check_open()
            if self._probe is None:
                self._probe = OffsetProbe(self.config)
            return self._probe

    def _drain(self) -> None:
        """Serve the admin client's queue: its log lines reach ``logging``
        (and ``_log``) only then, and would pile up otherwise."""
        admin = self._admin
        if admin is not None:
            admin.poll(0)

    def _failure(self, exc: Exception, what: str) -> MiniKafkaError:
        """The minikafka error for ``exc``; a timeout says the admin
        client's last error of the call (why the cluster did not answer)."""
        error = translate(exc, what)
        if isinstance(error, TimeoutError):
            self._drain()
            error = self._log.explain(error, since=time.monotonic() - self.request_timeout - 1)
        return error

    def _wait(self, future: Any, what: str) -> Any:
        try:
            return future.result(timeout=self.request_timeout)
        except Exception as e:
            raise self._failure(e, what) from None
        finally:
            self._drain()

    def _until(self, check: Callable[[], bool], what: str) -> None:
        """Poll ``check`` until true: topic creation and deletion become
        visible in metadata shortly after the admin call returns."""
        deadline = time.monotonic() + self.request_timeout
        delay = 0.005
        while not check():
            if time.monotonic() >= deadline:
                raise self._failure(TimeoutError(f"{what}: not visible after {self.request_timeout:g} s"),
                                    what)
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    # -- topics ---------------------------------------------------------------

    def metadata(self, timeout: float | None = None) -> dict[str, Any]:
        """The cluster's topics (confluent-kafka ``TopicMetadata`` by name),
        waiting at most ``timeout`` (None: ``request_timeout``); internal."""
        self._check_open()
        return self._metadata(timeout)

    def _list_topics(self, timeout: float) -> Any:
        """``AdminClient.list_topics`` within ``timeout``, in calls of at most
        ``METADATA_SLICE`` s: one call waits inside librdkafka, where no
        signal reaches Python, so Ctrl-C of a command whose cluster did not
        answer waited out all of ``request_timeout`` (30 s). A slice that
        ends unanswered (``_TRANSPORT``, ``_TIMED_OUT``) is tried again
        until the deadline; its error is the call's after that."""
        from confluent_kafka import KafkaError, KafkaException

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                return self._admin.list_topics(timeout=max(0.0, min(left, METADATA_SLICE)))
            except KafkaException as e:
                code = e.args[0].code() if e.args and isinstance(e.args[0], KafkaError) else None
                if code not in (KafkaError._TRANSPORT, KafkaError._TIMED_OUT) or left <= METADATA_SLICE:
                    raise

    def _metadata(self, timeout: float | None = None) -> dict[str, Any]:
        try:
            return dict(self._list_topics(self.request_timeout if timeout is None else timeout).topics)
        except Exception as e:
            raise self._failure(e, f"listing the topics of {self.url}") from None
        finally:
            self._drain()

    def create_topic(self, name: str, partitions: int = 1, *, retention_ms: int | None = None,
                     retention_bytes: int | None = None, segment_bytes: int | None = None,
                     segment_ms: int | None = None, replication_factor: int = -1,
                     config: dict[str, str] | None = None) -> KafkaTopic:
        """Create a topic; ``TopicExistsError`` if the name is taken.

        ``retention_ms``/``retention_bytes``/``segment_bytes``/``segment_ms``
        become the topic configs ``retention.ms`` ... ; ``config`` adds any
        other topic config. ``replication_factor=-1`` takes the cluster's default.
        """
        from confluent_kafka.cimpl import NewTopic  # what confluent_kafka.admin re-exports

        self._check_open()
        validate_topic_name(name)
        if not isinstance(partitions, int) or isinstance(partitions, bool):
            raise TypeError(f"partitions must be an int, not {type(partitions).__name__}")
        if not 0 < partitions <= KAFKA_MAX_PARTITIONS:  # larger: an OverflowError in NewTopic
            raise InvalidArgumentError(
                f"partitions must be between 1 and {KAFKA_MAX_PARTITIONS} (Kafka's int32), got {partitions}")
        if not isinstance(replication_factor, int) or isinstance(replication_factor, bool):
            raise TypeError(f"replication_factor must be an int, not {type(replication_factor).__name__}")
        topic_config: dict[str, str] = {}
        for arg, value in (("retention_ms", retention_ms), ("retention_bytes", retention_bytes),
                           ("segment_bytes", segment_bytes), ("segment_ms", segment_ms)):
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{arg} must be an int or None, not {type(value).__name__}")
            least = 1 if arg == "segment_ms" else 0  # Kafka's minima
            if value < least:
                raise InvalidArgumentError(f"{arg} must be >= {least}, got {value}")
            topic_config[TOPIC_CONFIGS[arg]] = str(value)
        if config is not None:
            if not isinstance(config, dict):
                raise TypeError(f"config must be a dict, not {type(config).__name__}")
            topic_config.update({str(k): str(v) for k, v in config.items()})
        if name in self._metadata():
            raise TopicExistsError(f"topic {name!r} already exists on {self.url}")
        new = NewTopic(name, num_partitions=partitions, replication_factor=replication_factor,
                       config=topic_config)
        futures = self._admin.create_topics([new], operation_timeout=self.request_timeout,
                                            request_timeout=self.request_timeout)
        self._wait(futures[name], f"creating topic {name!r} on {self.url}")
        self._until(lambda: self._partition_count(name) == partitions, f"topic {name!r}")
        return KafkaTopic(self, name, partitions)

    def identity(self) -> tuple[str | None, frozenset[str]]:
        """``(cluster id, advertised broker addresses)``: two KafkaBrokers
        are one cluster when the ids match and the addresses meet (Tansu
        gives every cluster the same id)."""
        self._check_open()
        try:
            meta = self._list_topics(self.request_timeout)
        except Exception as e:
            raise self._failure(e, f"reading the metadata of {self.url}") from None
        return meta.cluster_id, frozenset(f"{b.host}:{b.port}" for b in meta.brokers.values())

    def _partition_count(self, name: str) -> int:
        meta = self._metadata().get(name)
        if meta is None or meta.error is not None:
            return 0
        return len(meta.partitions)

    def topic(self, name: str) -> KafkaTopic:
        """The topic called ``name``; ``TopicNotFoundError`` if absent."""
        self._check_open()
        validate_topic_name(name)
        count = self._partition_count(name)
        if not count:
            raise TopicNotFoundError(f"topic {name!r} does not exist on {self.url}")
        return KafkaTopic(self, name, count)

    def topic_for_send(self, name: str) -> KafkaTopic:
        """``topic(name)``, creating it when ``auto_create_topics`` is on
        (internal: what a Producer writes to)."""
        try:
            return self.topic(name)
        except TopicNotFoundError:
            if not self.auto_create_topics:
                raise TopicNotFoundError(
                    f"topic {name!r} does not exist on {self.url} (create it with create_topic, "
                    f"or connect with auto_create_topics=True)") from None
        try:
            return self.create_topic(name)
        except TopicExistsError:
            return self.topic(name)

    def producer_backend(self, front: Any, config: Any) -> Any:
        """Where a Producer on this broker writes (the producer backend
        interface of docs/architecture.md)."""
        from .producing import KafkaProducer

        self._check_open()
        return KafkaProducer(self, front, config)

    def consumer_backend(self, config: Any, hooks: Any) -> Any:
        """Where a Consumer on this broker reads (the consumer backend
        interface of docs/architecture.md)."""
        from .consuming import KafkaConsumerBackend

        self._check_open()
        return KafkaConsumerBackend(self, config, hooks)

    def list_topics(self) -> list[str]:
        """Names of all topics, sorted; internal ones (``__consumer_offsets`` ...) hidden."""
        self._check_open()
        return sorted(n for n, meta in self._metadata().items()
                      if not n.startswith("__") and meta.error is None)

    def delete_topic(self, name: str) -> None:
        """Delete a topic; ``TopicNotFoundError`` if absent. Returns once the
        cluster's metadata no longer lists it."""
        self._check_open()
        validate_topic_name(name)
        with self._lock:
            stale = self._probe if self._probe is not None and name in self._probe.fetched else None
            if stale is not None:
                self._probe = None
        if stale is not None:
            stale.close()  # its last fetch of the topic may be in flight: see OffsetProbe
        futures = self._admin.delete_topics([name], operation_timeout=self.request_timeout,
                                            request_timeout=self.request_timeout)
        self._wait(futures[name], f"deleting topic {name!r} on {self.url}")
        self._until(lambda: not self._partition_count(name), f"deletion of topic {name!r}")

    # -- groups ---------------------------------------------------------------

    def list_groups(self) -> list[str]:
        """Ids of the cluster's consumer groups, sorted."""
        self._check_open()
        result = self._wait(self._admin.list_consumer_groups(request_timeout=self.request_timeout),
                            f"listing the groups of {self.url}")
        return sorted(g.group_id for g in result.valid)

    def committed_offsets(self, group_id: str) -> dict[TopicPartition, int]:
        """Every offset committed by ``group_id`` (next offset to read)."""
        from confluent_kafka import ConsumerGroupTopicPartitions

        self._check_open()
        check_group_id(group_id)
        futures = self._admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group_id)], request_timeout=self.request_timeout)
        result = self._wait(futures[group_id], f"reading the offsets of group {group_id!r}")
        return {TopicPartition(k.topic, k.partition): k.offset
                for k in sorted(result.topic_partitions or (), key=lambda k: (k.topic, k.partition))
                if k.offset >= 0}

    def describe_group(self, group_id: str) -> GroupDescription:
        """The group's members (with their assignments) and committed offsets.

        Kafka reports no generation, process id or heartbeat times: those
        fields are -1, 0 and None."""
        self._check_open()
        check_group_id(group_id)
        futures = self._admin.describe_consumer_groups([group_id], request_timeout=self.request_timeout)
        desc = self._wait(futures[group_id], f"describing group {group_id!r}")
        members = []
        for m in sorted(desc.members, key=lambda m: m.member_id):
            assigned = tuple(sorted(TopicPartition(k.topic, k.partition)
                                    for k in (m.assignment.topic_partitions if m.assignment else ())))
            members.append(MemberDescription(
                member_id=m.member_id, host=m.host or "", pid=0,
                topics=tuple(sorted({tp.topic for tp in assigned})), assignment=assigned,
                last_heartbeat_ms=None, last_poll_ms=None,
            ))
        return GroupDescription(group_id=group_id, generation=-1, members=tuple(members),
                                committed=self.committed_offsets(group_id))

    def group_state(self, group_id: str) -> str:
        """The coordinator's state of the group, lower case: ``empty``,
        ``stable``, ``preparingrebalancing``, ``completingrebalancing``,
        ``dead`` or ``unknown`` (internal: a mirror's check that nobody is in it;
        Tansu 0.6 reports no members, but the state)."""
        self._check_open()
        check_group_id(group_id)
        futures = self._admin.describe_consumer_groups([group_id], request_timeout=self.request_timeout)
        desc = self._wait(futures[group_id], f"describing group {group_id!r}")
        state = getattr(desc.state, "name", str(desc.state))
        return str(state).lower().replace("_", "")

    def _refuse_if_running(self, group_id: str, why: str, *, must_exist: bool = True) -> None:
        """GroupNotEmptyError if consumers of the group run (its coordinator's
        state is not empty); InvalidArgumentError if the cluster has no such
        group and ``must_exist``. Checked first, as on a directory, since
        Tansu 0.6 deletes a running or unknown group without an error."""
        if group_id not in self.list_groups():
            if must_exist:
                raise InvalidArgumentError(f"group {group_id!r} does not exist on {self.url}")
            return
        state = self.group_state(group_id)
        if state not in ("empty", "dead"):
            raise GroupNotEmptyError(f"group {group_id!r} is {state} on {self.url}: {why}")

    def alter_group_offsets(self, group_id: str, offsets: Mapping[TopicPartition, int], *,
                            validate_only: bool = False) -> None:
        """Set committed offsets of a group whose consumers are all stopped,
        or of a new group, which this makes
        (AdminClient.alter_consumer_group_offsets); other partitions'
        offsets are kept. ``GroupNotEmptyError`` if a consumer of it runs.
        ``validate_only``: every check, nothing sent (a dry run)."""
        from confluent_kafka import ConsumerGroupTopicPartitions
        from confluent_kafka import TopicPartition as KTP

        self._check_open()
        check_group_id(group_id)
        if not isinstance(offsets, Mapping):
            raise TypeError(f"offsets must be a mapping of TopicPartition to int, "
                            f"not {type(offsets).__name__}")
        checked = {as_tp(tp): check_offset(offset, f"offsets: offset of {tp}")
                   for tp, offset in offsets.items()}
        counts: dict[str, int] = {}
        for tp in checked:
            if tp.topic not in counts:
                counts[tp.topic] = self.topic(tp.topic).partitions  # TopicNotFoundError
            if not 0 <= tp.partition < counts[tp.topic]:
                raise InvalidPartitionError(
                    f"offsets: {tp.topic} has partitions 0..{counts[tp.topic] - 1}, not {tp.partition}")
        # A group nobody has run yet is made by its first offsets, as by
        # kafka-consumer-groups --reset-offsets and on a directory.
        self._refuse_if_running(group_id, "offsets can only be changed while no consumer of the group runs",
                                must_exist=False)
        if validate_only or not checked:
            return
        request = ConsumerGroupTopicPartitions(
            group_id, [KTP(tp.topic, tp.partition, offset) for tp, offset in checked.items()])
        futures = self._admin.alter_consumer_group_offsets([request], request_timeout=self.request_timeout)
        self._wait(futures[group_id], f"altering the offsets of group {group_id!r}")

    def delete_group(self, group_id: str) -> None:
        """Delete a group whose consumers are all stopped, with its committed
        offsets (AdminClient.delete_consumer_groups). ``GroupNotEmptyError``
        if a consumer of it runs, InvalidArgumentError if there is no such group."""
        self._check_open()
        check_group_id(group_id)
        self._refuse_if_running(group_id, "stop its consumers before deleting it")
        futures = self._admin.delete_consumer_groups([group_id], request_timeout=self.request_timeout)
        self._wait(futures[group_id], f"deleting group {group_id!r}")

    def lag(self, group_id: str) -> dict[TopicPartition, int]:
        """Per committed partition: end offset - committed offset."""
        committed = self.committed_offsets(group_id)
        if not committed:
            return {}
        existing = self._metadata()
        tps = [tp for tp in committed if tp.topic in existing
               and tp.partition < len(existing[tp.topic].partitions)]
        ends = self.probe().end_offsets(tps, self.request_timeout)
        return {tp: max(0, ends[tp] - committed[tp]) for tp in sorted(tps)}

    def close(self) -> None:
        """Release the clients; later calls raise ClosedError."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            probe, self._probe = self._probe, None
            self._admin = None  # librdkafka's handle goes now, not at garbage collection
        if probe is not None:
            probe.close()
