"""``minikafka topics list|create|describe|delete|alter``."""

from __future__ import annotations

import argparse
import os

from ...broker import Broker
from ...format import index_name, segment_name
from ...topic import Topic
from ..common import (
    CliError,
    UsageError,
    add_action,
    non_negative,
    open_broker,
    optional_ms,
    positive,
    print_table,
)

NAME = "topics"
HELP = "list, create, describe, delete or alter topics"
ORDER = 10


def register(parser: argparse.ArgumentParser, parent: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add_action(sub, "list", "topic names, one a line", parent, list_topics)
    p = add_action(sub, "create", "create a topic", parent, create)
    p.add_argument("name")
    p.add_argument("-p", "--partitions", type=positive, default=1, help="number of partitions (1)")
    p.add_argument("--retention-ms", type=non_negative, help="delete closed segments older than this")
    p.add_argument("--retention-bytes", type=non_negative, help="keep each partition under this size")
    p.add_argument("--segment-bytes", type=positive, help="size of each segment file (16 MiB)")
    p = add_action(sub, "describe", "partitions, offsets, segments and bytes of a topic", parent, describe)
    p.add_argument("name")
    p = add_action(sub, "delete", "delete a topic and its records", parent, delete)
    p.add_argument("name")
    p = add_action(sub, "alter", "change a topic's retention ('none': no limit)", parent, alter)
    p.add_argument("name")
    p.add_argument("--retention-ms", type=optional_ms, default=..., metavar="MS|none")
    p.add_argument("--retention-bytes", type=optional_ms, default=..., metavar="BYTES|none")


def list_topics(args: argparse.Namespace) -> int:
    with open_broker(args) as broker:
        for name in broker.list_topics():
            print(name)
    return 0


def create(args: argparse.Namespace) -> int:
    with open_broker(args, create=True) as broker:
        broker.create_topic(args.name, args.partitions, retention_ms=args.retention_ms,
                            retention_bytes=args.retention_bytes, segment_bytes=args.segment_bytes)
    print(f"Created topic {args.name} with {args.partitions} partition(s).")
    return 0


def _config_line(topic: Topic) -> str:
    c = topic.config
    return (f"Topic: {topic.name}  PartitionCount: {c.partitions}  segment_bytes={c.segment_bytes} "
            f"segment_ms={c.segment_ms} retention_ms={c.retention_ms} retention_bytes={c.retention_bytes}")


def describe(args: argparse.Namespace) -> int:
    with open_broker(args) as broker:
        topic = broker.topic(args.name)
        begin, end = topic.beginning_offsets(), topic.end_offsets()
        if not isinstance(broker, Broker):  # a Kafka cluster: no local config, segments or files
            print(f"Topic: {topic.name}  PartitionCount: {topic.partitions}")
            print_table([("PARTITION", "BEGIN-OFFSET", "END-OFFSET", "RECORDS")]
                        + [(str(p), str(begin[p]), str(end[p]), str(end[p] - begin[p]))
                           for p in range(topic.partitions)])
            return 0
        print(_config_line(topic))
        rows = [("PARTITION", "BEGIN-OFFSET", "END-OFFSET", "RECORDS", "SEGMENTS", "FILE-BYTES")]
        for p in range(topic.partitions):
            part = topic.partition(p)
            bases = part.bases()
            size = 0
            for b in bases:
                for name in (segment_name(b), index_name(b)):
                    try:
                        size += os.stat(os.path.join(part.dir, name)).st_size
                    except FileNotFoundError:
                        pass
            rows.append((str(p), str(begin[p]), str(end[p]), str(end[p] - begin[p]), str(len(bases)),
                         str(size)))
        print_table(rows)
    return 0


def delete(args: argparse.Namespace) -> int:
    with open_broker(args) as broker:
        broker.delete_topic(args.name)
    print(f"Deleted topic {args.name}.")
    return 0


def alter(args: argparse.Namespace) -> int:
    if args.retention_ms is ... and args.retention_bytes is ...:
        raise UsageError("topics alter: give --retention-ms and/or --retention-bytes")
    with open_broker(args) as broker:
        if not isinstance(broker, Broker):
            raise CliError("topics alter works on a data directory only: on a Kafka cluster change "
                           "retention.ms / retention.bytes with the cluster's tools (kafka-configs)")
        topic = broker.alter_topic(args.name, retention_ms=args.retention_ms,
                                   retention_bytes=args.retention_bytes)
        print(_config_line(topic))
    return 0

