"""Properties of the sticky assignor (minikafka.assignor.assign): every
partition goes to exactly one eligible member, counts differ by at most one
between members with the same subscriptions, the answer does not depend on
the order of its inputs, and a member keeps what it had when another member
joins (or leaves)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from minikafka import TopicPartition
from minikafka.assignor import assign

member_ids = st.lists(st.text("abcdefgh", min_size=1, max_size=4), min_size=1, max_size=8, unique=True)
topic_sizes = st.dictionaries(st.sampled_from(["t", "u", "v"]), st.integers(0, 12), min_size=1)


def partitions_of(sizes: dict[str, int]) -> list[TopicPartition]:
    return [TopicPartition(t, p) for t, n in sorted(sizes.items()) for p in range(n)]


def check_complete(result, members, parts) -> None:
    """Every partition some member subscribes to: exactly once, to a subscriber."""
    assert set(result) == set(members)
    owned = [tp for tps in result.values() for tp in tps]
    assert len(owned) == len(set(owned))
    eligible = {tp for tp in parts if any(tp.topic in topics for topics in members.values())}
    assert set(owned) == eligible
    for m, tps in result.items():
        assert all(tp.topic in members[m] for tp in tps)
        assert tps == sorted(tps)


def check_balanced(result) -> None:
    counts = [len(tps) for tps in result.values()]
    assert max(counts) - min(counts) <= 1, counts


@given(member_ids, topic_sizes)
def test_same_subscriptions_complete_and_balanced(ids, sizes):
    members = {m: sorted(sizes) for m in ids}
    parts = partitions_of(sizes)
    result = assign(members, parts)
    check_complete(result, members, parts)
    check_balanced(result)


@given(st.data())
def test_mixed_subscriptions_complete(data):
    sizes = data.draw(topic_sizes)
    ids = data.draw(member_ids)
    members = {m: data.draw(st.lists(st.sampled_from(sorted(sizes)), unique=True)) for m in ids}
    parts = partitions_of(sizes)
    previous = data.draw(st.none() | st.just(assign(members, parts)))
    result = assign(members, parts, previous)
    check_complete(result, members, parts)


@given(st.data())
def test_deterministic_whatever_the_input_order(data):
    sizes = data.draw(topic_sizes)
    ids = data.draw(member_ids)
    members = {m: data.draw(st.lists(st.sampled_from(sorted(sizes)), min_size=1, unique=True))
               for m in ids}
    parts = partitions_of(sizes)
    previous = assign({m: members[m] for m in ids[: max(1, len(ids) // 2)]}, parts)
    expected = assign(members, parts, previous)
    shuffled_ids = data.draw(st.permutations(ids))
    shuffled_parts = data.draw(st.permutations(parts))
    again = assign(
        {m: list(reversed(members[m])) for m in shuffled_ids},
        shuffled_parts + shuffled_parts[:3],  # duplicates are ignored
        {m: list(reversed(previous[m])) for m in reversed(list(previous))},
    )
    assert again == expected
    assert assign(members, parts, previous) == expected


@settings(max_examples=200)
@given(member_ids, topic_sizes, st.text("xyz", min_size=1, max_size=3))
def test_sticky_when_a_member_joins(ids, sizes, newcomer):
    topics = sorted(sizes)
    parts = partitions_of(sizes)
    before = assign({m: topics for m in ids}, parts)
    members = {m: topics for m in ids}
    members[newcomer] = topics
    after = assign(members, parts, before)
    check_complete(after, members, parts)
    check_balanced(after)
    for m in ids:
        assert set(after[m]) <= set(before[m]), f"{m} lost a partition it could keep"
    # And the partitions that moved all went to the newcomer.
    moved = sum(len(before[m]) - len(after[m]) for m in ids)
    assert moved == len(after[newcomer])


@settings(max_examples=200)
@given(member_ids.filter(lambda ids: len(ids) >= 2), topic_sizes, st.data())
def test_sticky_when_a_member_leaves(ids, sizes, data):
    topics = sorted(sizes)
    parts = partitions_of(sizes)
    before = assign({m: topics for m in ids}, parts)
    gone = data.draw(st.sampled_from(ids))
    members = {m: topics for m in ids if m != gone}
    after = assign(members, parts, before)
    check_complete(after, members, parts)
    check_balanced(after)
    for m in members:
        assert set(after[m]) >= set(before[m]), f"{m} lost a partition in someone else's leave"


def test_no_members_and_no_partitions():
    assert assign({}, [TopicPartition("t", 0)]) == {}
    assert assign({"a": ["t"]}, []) == {"a": []}
    assert assign({"a": ["u"]}, [TopicPartition("t", 0)]) == {"a": []}


def test_previous_assignment_as_plain_lists_from_json():
    parts = partitions_of({"t": 4})
    previous = {"a": [["t", 3], ["t", 2]], "b": [["t", 0], ["t", 1]]}
    result = assign({"a": ["t"], "b": ["t"]}, parts, previous)
    assert result == {"a": [TopicPartition("t", 2), TopicPartition("t", 3)],
                      "b": [TopicPartition("t", 0), TopicPartition("t", 1)]}
