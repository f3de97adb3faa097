"""minikafka — Kafka's model as an embedded Python library.

Topics split into partitions, an append-only log per partition, offsets,
producers, consumers, consumer groups, replay and retention, over
memory-mapped segment files in one data directory. No server to run.
"""

from .aio import AsyncConsumer, AsyncProducer
from .broker import Broker, connect
from .consumer import Consumer
from .errors import (
    ClosedError,
    CommitFailedError,
    CorruptLogError,
    GroupNotEmptyError,
    InvalidArgumentError,
    InvalidPartitionError,
    InvalidTopicError,
    MiniKafkaError,
    NoOffsetError,
    RecordTooLargeError,
    TimeoutError,
    TopicExistsError,
    TopicNotFoundError,
)
from .group_state import GroupDescription, MemberDescription
from .kafka.mirror import MirrorResult, mirror
from .options import BrokerOptions, ConsumerConfig, ProducerConfig, TopicConfig, TopicSettings
from .producer import Producer, RecordFuture, SendManyResult
from .records import Record, RecordMetadata, TopicPartition
from .topic import Topic

__version__ = "0.1.0"

__all__ = [
    "AsyncConsumer",
    "AsyncProducer",
    "Broker",
    "BrokerOptions",
    "ClosedError",
    "CommitFailedError",
    "Consumer",
    "ConsumerConfig",
    "CorruptLogError",
    "GroupDescription",
    "GroupNotEmptyError",
    "InvalidArgumentError",
    "InvalidPartitionError",
    "InvalidTopicError",
    "MemberDescription",
    "MiniKafkaError",
    "MirrorResult",
    "NoOffsetError",
    "Producer",
    "ProducerConfig",
    "Record",
    "RecordFuture",
    "RecordMetadata",
    "RecordTooLargeError",
    "SendManyResult",
    "TimeoutError",
    "Topic",
    "TopicConfig",
    "TopicExistsError",
    "TopicNotFoundError",
    "TopicPartition",
    "TopicSettings",
    "__version__",
    "connect",
    "mirror",
]
