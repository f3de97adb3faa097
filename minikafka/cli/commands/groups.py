"""``minikafka groups list|describe|reset|delete`` — like kafka-consumer-groups."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

from ...consumer import Consumer
from ...records import TopicPartition
from ..common import CliError, UsageError, add_action, open_broker, print_table

NAME = "groups"
HELP = "list, describe, reset or delete consumer groups"
ORDER = 40


def register(parser: argparse.ArgumentParser, parent: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add_action(sub, "list", "group ids, one a line", parent, list_groups)
    p = add_action(sub, "describe", "offsets, lag and members of a group", parent, describe)
    p.add_argument("group")
    p = add_action(sub, "reset", "move a group's committed offsets (dry run without --execute)",
                   parent, reset)
    p.add_argument("group")
    p.add_argument("--topic", required=True, help="the topic whose offsets move (all its partitions)")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--to-earliest", action="store_true", help="to the first retained offset")
    how.add_argument("--to-latest", action="store_true", help="to the end (skip everything)")
    how.add_argument("--to-offset", type=int, metavar="N", help="to offset N (kept within the log)")
    how.add_argument("--shift-by", type=int, metavar="N",
                     help="by N from the committed offset (negative: back)")
    how.add_argument("--to-datetime", metavar="ISO8601",
                     help="to the first record at or after this time (no zone: local time)")
    p.add_argument("--execute", action="store_true", help="change the offsets (otherwise only print)")
    p = add_action(sub, "delete", "delete a group without live members", parent, delete)
    p.add_argument("group")


def list_groups(args: argparse.Namespace) -> int:
    with open_broker(args) as broker:
        for g in broker.list_groups():
            print(g)
    return 0


def _existing(broker: Any, group: str) -> None:
    if group not in broker.list_groups():
        path = getattr(broker, "path", None)  # a Kafka cluster has a URL, no path
        where = f"in {path}" if path is not None else f"on {broker.url}"
        raise CliError(f"group {group!r} does not exist {where}")


def describe(args: argparse.Namespace) -> int:
    with open_broker(args) as broker:
        _existing(broker, args.group)
        desc = broker.describe_group(args.group)
        owner = {tp: m for m in desc.members for tp in m.assignment}
        tps = sorted(set(desc.committed) | set(owner))
        ends: dict[str, dict[int, int]] = {}
        rows = [("TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "MEMBER", "HOST", "PID")]
        for tp in tps:
            if tp.topic not in ends:
                try:
                    ends[tp.topic] = broker.topic(tp.topic).end_offsets()
                except Exception:  # deleted meanwhile
                    ends[tp.topic] = {}
            end = ends[tp.topic].get(tp.partition)
            cur = desc.committed.get(tp)
            m = owner.get(tp)
            rows.append((
                tp.topic, str(tp.partition), "-" if cur is None else str(cur),
                "-" if end is None else str(end),
                "-" if cur is None or end is None else str(max(0, end - cur)),
                "-" if m is None else m.member_id, "-" if m is None or not m.host else m.host,
                "-" if m is None or m.pid <= 0 else str(m.pid),  # Kafka reports no pid (0)
            ))
        # Kafka's DescribeGroups reports no generation (describe_group gives -1): "-".
        generation = str(desc.generation) if desc.generation >= 0 else "-"
        print(f"GROUP {desc.group_id}  generation {generation}  {len(desc.members)} member(s)")
        print_table(rows)
    return 0


def _timestamp_ms(text: str) -> int:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--to-datetime {text!r}: not ISO 8601 (e.g. 2026-12-01T21:30:00Z)") from None
    ms = int(when.timestamp() * 1000)  # a naive time is local, as Kafka's tool reads it
    if ms < 0:
        raise UsageError(f"--to-datetime {text!r}: before 1970-01-01T00:00:00Z, "
                         f"where record timestamps start")
    return ms


def reset(args: argparse.Namespace) -> int:
    ts = _timestamp_ms(args.to_datetime) if args.to_datetime is not None else None
    with open_broker(args) as broker:
        topic = broker.topic(args.topic)
        begin, end = topic.beginning_offsets(), topic.end_offsets()
        committed = broker.committed_offsets(args.group)
        tps = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
        found: dict[TopicPartition, int | None] = {}
        if ts is not None:
            with Consumer(broker) as c:
                found = c.offsets_for_times({tp: ts for tp in tps})
        new: dict[TopicPartition, int] = {}
        for tp in tps:
            lo, hi = begin[tp.partition], end[tp.partition]
            cur = committed.get(tp)
            if args.to_earliest:
                target = lo
            elif args.to_latest:
                target = hi
            elif args.to_offset is not None:
                target = args.to_offset
            elif args.shift_by is not None:
                target = (lo if cur is None else cur) + args.shift_by
            else:
                f = found.get(tp)
                target = hi if f is None else f
            new[tp] = min(max(target, lo), hi)  # as Kafka's tool: never outside the log
        broker.alter_group_offsets(args.group, new, validate_only=not args.execute)
        rows = [("TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET")]
        for tp in tps:
            cur = committed.get(tp)
            rows.append((tp.topic, str(tp.partition), "-" if cur is None else str(cur), str(new[tp])))
        print_table(rows)
    if not args.execute:
        print("Dry run: nothing changed; add --execute to apply.", file=sys.stderr)
    return 0


def delete(args: argparse.Namespace) -> int:
    with open_broker(args) as broker:
        _existing(broker, args.group)
        broker.delete_group(args.group)
    print(f"Deleted group {args.group}.")
    return 0
