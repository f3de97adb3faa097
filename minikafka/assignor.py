"""Deterministic sticky assignment of partitions to group members.

A pure function, so every member computes the same answer from the same
inputs: partitions go to members subscribed to their topic, counts differ
by at most one between members with the same subscriptions, and a member
keeps what it had whenever that is compatible with balance (so a
rebalance moves few partitions and little state).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .records import TopicPartition


def assign(
    members: Mapping[str, Iterable[str]],
    partitions: Iterable[TopicPartition],
    previous: Mapping[str, Iterable[TopicPartition]] | None = None,
) -> dict[str, list[TopicPartition]]:
    """Map member id -> sorted partitions.

    ``members``: member id -> subscribed topics. ``partitions``: every
    partition of every subscribed topic. ``previous``: the last assignment.
    """
    subs = {m: frozenset(topics) for m, topics in members.items()}
    ids = sorted(subs)
    result: dict[str, list[TopicPartition]] = {m: [] for m in ids}
    if not ids:
        return result
    parts = sorted(set(partitions))
    eligible = {tp: [m for m in ids if tp.topic in subs[m]] for tp in parts}
    parts = [tp for tp in parts if eligible[tp]]
    quota = -(-len(parts) // len(ids))  # ceil: no member keeps more than this
    owner_before = {}
    for m, tps in (previous or {}).items():
        for tp in tps:
            owner_before[TopicPartition(*tp)] = m
    unassigned = []
    for tp in parts:
        owner = owner_before.get(tp)
        if owner is not None and owner in result and tp.topic in subs[owner] and len(result[owner]) < quota:
            result[owner].append(tp)
        else:
            unassigned.append(tp)
    for tp in unassigned:
        m = min(eligible[tp], key=lambda m: (len(result[m]), m))
        result[m].append(tp)
    # Stickiness can leave counts uneven (a joiner gets only leftovers):
    # move partitions from the fullest to the emptiest eligible member.
    moved = True
    while moved:
        moved = False
        for m in sorted(ids, key=lambda m: (-len(result[m]), m)):
            for tp in sorted(result[m], reverse=True):
                target = min(eligible[tp], key=lambda x: (len(result[x]), x))
                if len(result[target]) + 1 < len(result[m]):
                    result[m].remove(tp)
                    result[target].append(tp)
                    moved = True
                    break
            if moved:
                break
    return {m: sorted(tps) for m, tps in result.items()}
