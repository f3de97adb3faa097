"""KafkaConsumerBackend turning confluent-kafka messages into Records: the
fast path (no deserializers) gives exactly what the record-by-record loop
gives — records, positions, errors; partition-EOF events dropped — for any batch.
No broker: the messages are built with ``confluent_kafka.Message``."""

from __future__ import annotations

from typing import Any

import confluent_kafka as ck
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minikafka import Record, TopicPartition
from minikafka.errors import MiniKafkaError
from minikafka.kafka.consuming import VECTOR_MIN, KafkaConsumerBackend

EOF_CODE = ck.KafkaError._PARTITION_EOF


def backend(positions: dict[TopicPartition, int], one_topic: str | None = None) -> KafkaConsumerBackend:
    """The record-building state of a backend, without a client
    (``one_topic``: the consumer never had another topic)."""
    b = KafkaConsumerBackend.__new__(KafkaConsumerBackend)
    b._key_de = b._value_de = None
    b._positions = dict(positions)
    b._one_topic = one_topic
    b._seeks = {}
    return b


def outcome(b: KafkaConsumerBackend, messages: list[Any], fast: bool) -> tuple[Any, ...]:
    build = b._records if fast else b._records_one_by_one
    try:
        got: Any = build(list(messages), EOF_CODE)  # the fast path empties the list it is given
    except MiniKafkaError as e:
        got = ("raised", type(e).__name__)
    return got, b._positions


message = st.builds(
    dict,
    topic=st.sampled_from(["a", "b"]),
    partition=st.integers(0, 2),
    offset=st.integers(0, 12),
    key=st.one_of(st.none(), st.binary(max_size=3)),
    value=st.one_of(st.none(), st.binary(max_size=3)),
    headers=st.one_of(st.none(), st.lists(st.tuples(st.sampled_from(["h", "i"]),
                                                    st.one_of(st.none(), st.binary(max_size=2))),
                                          max_size=2)),
    timestamp=st.tuples(st.just(1), st.integers(0, 2**41)),
    event=st.sampled_from([None] * 8 + ["eof", "error"]),
)


def make_message(d: dict[str, Any]) -> Any:
    if d["event"] is not None:
        code = EOF_CODE if d["event"] == "eof" else ck.KafkaError._MSG_TIMED_OUT
        return ck.Message(topic=d["topic"], partition=d["partition"], offset=d["offset"],
                          error=ck.KafkaError(code))
    return ck.Message(topic=d["topic"], partition=d["partition"], offset=d["offset"], key=d["key"],
                      value=d["value"], headers=d["headers"], timestamp=d["timestamp"])


@settings(max_examples=300, deadline=None)
@given(raw=st.lists(message, max_size=30),
       positions=st.dictionaries(st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 2)),
                                 st.integers(0, 6), max_size=6),
       runs=st.booleans(), single=st.booleans())
def test_fast_path_gives_what_the_loop_gives(raw: list[dict[str, Any]],
                                             positions: dict[tuple[str, int], int], runs: bool,
                                             single: bool) -> None:
    """``single``: a consumer that only ever had topic "a" (the fast path
    takes the topic from it instead of from each message)."""
    if single:
        raw = [{**d, "topic": "a"} for d in raw]
    if runs:  # as librdkafka queues them: runs per partition, offsets rising
        raw = sorted(raw, key=lambda d: (d["topic"], d["partition"], d["offset"]))
    messages = [make_message(d) for d in raw]
    tps = {TopicPartition(t, p): o for (t, p), o in positions.items()}
    one = "a" if single else None
    assert outcome(backend(tps, one), messages, fast=True) == outcome(backend(tps, one), messages, fast=False)


@settings(max_examples=200, deadline=None)
@given(runs=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 8), st.integers(1, 5)), max_size=6),
       positions=st.tuples(st.integers(0, 6), st.integers(0, 6)))
def test_runs_of_rising_offsets_that_repeat_a_partition(runs: list[tuple[int, int, int]],
                                                        positions: tuple[int, int]) -> None:
    """Runs as librdkafka queues them (offsets rising within a run), where a
    partition comes back in a later run, maybe overlapping what an earlier
    run returned (a refetch after a seek): each run is checked against the
    position the runs before it leave, not the batch's starting one."""
    raw = [{"topic": "a", "partition": p, "offset": o, "key": None, "value": b"%d" % o,
            "headers": None, "timestamp": (1, o), "event": None}
           for p, start, k in runs for o in range(start, start + k)]
    messages = [make_message(d) for d in raw]
    tps = {TopicPartition("a", 0): positions[0], TopicPartition("a", 1): positions[1]}
    assert outcome(backend(tps, "a"), messages, fast=True) == outcome(backend(tps, "a"), messages, fast=False)


def test_runs_of_several_partitions_and_events() -> None:
    messages = [make_message({"topic": "t", "partition": p, "offset": o, "key": b"k%d" % o, "value": b"v",
                              "headers": [("h", b"1")] if o == 3 else None, "timestamp": (1, 1000 + o),
                              "event": None})
                for p, o in [(0, 2), (0, 3), (1, 0), (1, 1), (0, 4)]]
    messages.insert(2, make_message({"topic": "t", "partition": 0, "offset": 4, "event": "eof"}))
    b = backend({TopicPartition("t", 0): 3, TopicPartition("t", 1): 0})
    got = b._records(messages, EOF_CODE)
    assert got == [Record("t", 0, 3, 1003, b"k3", b"v", (("h", b"1"),)),
                   Record("t", 1, 0, 1000, b"k0", b"v", ()),
                   Record("t", 1, 1, 1001, b"k1", b"v", ()),
                   Record("t", 0, 4, 1004, b"k4", b"v", ())]
    assert all(type(r) is Record for r in got)
    assert b._positions == {TopicPartition("t", 0): 5, TopicPartition("t", 1): 2}


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 2 * VECTOR_MIN), start=st.integers(0, 5),
       raise_at=st.one_of(st.none(), st.integers(0, 2 * VECTOR_MIN)))
def test_batches_either_side_of_vector_min_give_the_same_records(n: int, start: int,
                                                                 raise_at: int | None) -> None:
    """``_records_or_rewind`` builds a batch under VECTOR_MIN messages record by
    record and a larger one with the fast path: the same Records and
    positions either way; an error event raises after the records before it."""
    raw = [{"topic": "t", "partition": i % 2, "offset": i // 2, "key": None, "value": b"%d" % i,
            "headers": None, "timestamp": (1, i), "event": "error" if i == raise_at else None}
           for i in range(n)]
    raw.sort(key=lambda d: (d["partition"], d["offset"]))
    messages = [make_message(d) for d in raw]
    tps = {TopicPartition("t", 0): start, TopicPartition("t", 1): start}
    b = backend(tps, "t")
    b._seeks = {}
    try:
        got: Any = b._records_or_rewind(list(messages), EOF_CODE)
    except MiniKafkaError as e:
        got = ("raised", type(e).__name__)
    expected = outcome(backend(tps, "t"), messages, fast=False)
    if isinstance(got, tuple):  # raised: the batch is fetched again, every position goes back
        fetched = {TopicPartition(d["topic"], d["partition"]) for d in raw}
        assert expected[0] == got and b._positions == tps
        assert b._seeks == {tp: tps[tp] for tp in fetched}
    else:
        assert (got, b._positions) == expected


def test_an_interrupt_after_the_messages_are_let_go_rewinds_the_batch(monkeypatch: Any) -> None:
    """The fast path empties the message list before it makes Records; if
    making them is interrupted then (KeyboardInterrupt, MemoryError), the
    batch's partitions still go back to where it started (and only those)."""
    import minikafka.kafka.consuming as consuming

    raw = [{"topic": "t", "partition": 0, "offset": i, "key": None, "value": b"v", "headers": None,
            "timestamp": (1, i), "event": None} for i in range(2 * VECTOR_MIN)]
    messages = [make_message(d) for d in raw]
    tps = {TopicPartition("t", 0): 0, TopicPartition("t", 1): 5}
    b = backend(tps, "t")
    b._seeks = {}
    made = []

    def interrupted(cls: type, fields: tuple[Any, ...]) -> Any:
        if len(made) == 3:
            raise KeyboardInterrupt
        made.append(fields)
        return tuple.__new__(cls, fields)

    monkeypatch.setattr(consuming, "make", interrupted)
    with pytest.raises(KeyboardInterrupt):
        b._records_or_rewind(messages, EOF_CODE)
    assert messages == []  # let go before the Records were made
    assert b._positions == tps and b._seeks == {TopicPartition("t", 0): 0}


def _poison_aware(tag: bytes) -> Any:
    """A deserializer that raises on a value containing ``b"!"``."""
    def de(b: bytes) -> bytes:
        if b"!" in b:
            raise ValueError(f"cannot read {b!r}")
        return tag + b
    return de


def rewind_outcome(b: KafkaConsumerBackend, messages: list[Any], fast: bool) -> tuple[Any, ...]:
    """``_records_or_rewind`` on ``messages``, the fast path or (VECTOR_MIN
    out of reach) record by record: records or the error, then positions and
    seeks (what a rewind leaves)."""
    import minikafka.kafka.consuming as consuming

    saved = consuming.VECTOR_MIN
    consuming.VECTOR_MIN = 0 if fast else 1 << 30
    b._seeks = {}
    try:
        got: Any = b._records_or_rewind(list(messages), EOF_CODE)
    except (MiniKafkaError, ValueError) as e:
        got = ("raised", type(e).__name__, str(e))
    finally:
        consuming.VECTOR_MIN = saved
    return got, b._positions, b._seeks


@settings(max_examples=300, deadline=None)
@given(raw=st.lists(message, max_size=30), starts=st.lists(st.integers(0, 6), min_size=6, max_size=6),
       runs=st.booleans(), events=st.booleans(), keys=st.booleans(), values=st.booleans(),
       poison=st.one_of(st.none(), st.integers(0, 29)))
def test_deserializers_give_the_same_records_and_rewinds_either_way(
        raw: list[dict[str, Any]], starts: list[int], runs: bool, events: bool, keys: bool,
        values: bool, poison: int | None) -> None:
    """With deserializers the fast path deserializes each run's columns;
    record by record gives the same Records, and where a deserializer
    raises, the same error and the same rewind (positions back, the same
    seeks)."""
    if not events:
        raw = [{**d, "event": None} for d in raw]
    if runs:  # as librdkafka queues them: runs per partition, offsets rising
        unique = {(d["topic"], d["partition"], d["offset"]): d for d in raw}
        raw = [unique[k] for k in sorted(unique)]
    if poison is not None and raw:  # a value the value deserializer refuses
        i = poison % len(raw)
        raw[i] = {**raw[i], "value": (raw[i]["value"] or b"") + b"!"}
    messages = [make_message(d) for d in raw]
    tps = {TopicPartition(t, p): starts[2 * p + (t == "b")] for t in "ab" for p in range(3)}

    def made() -> KafkaConsumerBackend:
        b = backend(tps)
        b._key_de = _poison_aware(b"k:") if keys else None
        b._value_de = _poison_aware(b"v:") if values else None
        return b

    assert rewind_outcome(made(), messages, fast=True) == rewind_outcome(made(), messages, fast=False)
