"""KafkaConsumerBackend turning confluent-kafka messages into Records: the
fast path (no deserializers) gives exactly what the record-by-record loop
gives — records, positions, partition-EOF offsets, errors — for any batch.
No broker: the messages are built with ``confluent_kafka.Message``."""

from __future__ import annotations

from typing import Any

import confluent_kafka as ck
from hypothesis import given, settings
from hypothesis import strategies as st

from minikafka import Record, TopicPartition
from minikafka.errors import MiniKafkaError
from minikafka.kafka.consuming import KafkaConsumerBackend

EOF_CODE = ck.KafkaError._PARTITION_EOF


def backend(positions: dict[TopicPartition, int], one_topic: str | None = None) -> KafkaConsumerBackend:
    """The record-building state of a backend, without a client
    (``one_topic``: the consumer never had another topic)."""
    b = KafkaConsumerBackend.__new__(KafkaConsumerBackend)
    b._key_de = b._value_de = None
    b._positions = dict(positions)
    b._eof = {}
    b._one_topic = one_topic
    return b


def outcome(b: KafkaConsumerBackend, messages: list[Any], fast: bool) -> tuple[Any, ...]:
    build = b._records if fast else b._records_one_by_one
    try:
        got: Any = build(messages, EOF_CODE)
    except MiniKafkaError as e:
        got = ("raised", type(e).__name__)
    return got, b._positions, b._eof


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
    assert b._eof == {TopicPartition("t", 0): 4}
