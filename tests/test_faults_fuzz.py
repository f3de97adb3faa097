"""Hypothesis fuzzing of the public API with arbitrary values and types
(issue 9): a call raises only documented errors (``MiniKafkaError``
subclasses, ``TypeError``, ``ValueError``), and a call that raised wrote
nothing: no record, no topic, no committed offset."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faults_helpers import run_child
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minikafka
from minikafka import Broker, Consumer, Producer, TopicPartition

DOCUMENTED = (minikafka.MiniKafkaError, TypeError, ValueError)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20),
    st.binary(max_size=64), st.just(object()), st.just(float("inf")), st.just(-1), st.just(2**64),
    st.builds(bytearray, st.binary(max_size=16)), st.builds(memoryview, st.binary(max_size=16)),
)
anything = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner),
                            st.dictionaries(st.one_of(st.text(max_size=5), st.integers()), inner,
                                            max_size=3)),
    max_leaves=8,
)
topic_names = st.one_of(st.sampled_from(["t", "u", "missing", "", ".", "..", "a/b", "x" * 300]), anything)
headers = st.one_of(
    anything,
    st.lists(st.tuples(st.one_of(st.text(max_size=8), anything), st.one_of(st.binary(max_size=8), anything)),
             max_size=3),
)
# Waits must stay short: a huge timeout on an empty topic would wait. NaN
# is tested on its own, in a child with a deadline (it once hung).
short_timeouts = st.one_of(st.floats(min_value=-10, max_value=0.01, allow_nan=False),
                           st.text(max_size=3), st.lists(st.integers(), max_size=2),
                           st.just(object()), st.booleans())

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,  # the same examples every run

                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def fuzz_broker() -> Iterator[Broker]:
    with tempfile.TemporaryDirectory(prefix="minikafka-fuzz-") as d:
        b = Broker(d, segment_bytes=1 << 16)
        b.create_topic("t", partitions=2)
        b.create_topic("u")
        yield b
        b.close()


def ends(b: Broker) -> dict[str, dict[int, int]]:
    return {name: b.topic(name).end_offsets() for name in b.list_topics()}


def documented(e: BaseException) -> bool:
    return (isinstance(e, DOCUMENTED) and not isinstance(e, (UnicodeError, OverflowError))) \
        or isinstance(e, minikafka.MiniKafkaError)


@FUZZ
@given(topic=topic_names, value=anything, key=anything, partition=anything, hdrs=headers,
       timestamp=anything)
def test_send_raises_only_documented_errors(fuzz_broker: Broker, topic: Any, value: Any, key: Any,
                                            partition: Any, hdrs: Any, timestamp: Any) -> None:
    before = ends(fuzz_broker)
    with Producer(fuzz_broker) as p:
        try:
            p.send(topic, value, key, partition=partition, headers=hdrs, timestamp_ms=timestamp)
        except BaseException as e:
            assert documented(e), f"undocumented {type(e).__name__}: {e}"
            p.flush()
            assert ends(fuzz_broker) == before, "a send that raised wrote a record"
            return
        p.flush()
    after = ends(fuzz_broker)
    grown = sum(sum(v.values()) for v in after.values()) - sum(sum(v.values()) for v in before.values())
    assert grown == 1


@FUZZ
@given(topic=topic_names, values=anything, keys=anything, partition=anything, timestamp=anything)
def test_send_many_raises_only_documented_errors(fuzz_broker: Broker, topic: Any, values: Any,
                                                 keys: Any, partition: Any, timestamp: Any) -> None:
    before = ends(fuzz_broker)
    with Producer(fuzz_broker) as p:
        try:
            result = p.send_many(topic, values, keys, partition=partition, timestamp_ms=timestamp)
        except BaseException as e:
            assert documented(e), f"undocumented {type(e).__name__}: {e}"
            assert ends(fuzz_broker) == before, "a send_many that raised wrote records"
            return
    after = ends(fuzz_broker)
    grown = sum(sum(v.values()) for v in after.values()) - sum(sum(v.values()) for v in before.values())
    assert grown == result.count


@FUZZ
@given(name=topic_names, partitions=st.one_of(st.integers(-3, 40), anything.filter(
    lambda v: not isinstance(v, int) or isinstance(v, bool))),
       retention_ms=anything, retention_bytes=anything,
       segment_bytes=st.one_of(st.sampled_from([0, 4095, 4096, 1 << 16, 2**32, -1]), anything))
def test_create_topic_raises_only_documented_errors(fuzz_broker: Broker, name: Any, partitions: Any,
                                                    retention_ms: Any, retention_bytes: Any,
                                                    segment_bytes: Any) -> None:
    if isinstance(segment_bytes, int) and segment_bytes > 1 << 24:
        segment_bytes = 1 << 16  # keep preallocation small; big values are covered by unit tests
    before = fuzz_broker.list_topics()
    try:
        fuzz_broker.create_topic(name, partitions, retention_ms=retention_ms,
                                 retention_bytes=retention_bytes, segment_bytes=segment_bytes)
    except BaseException as e:
        assert documented(e), f"undocumented {type(e).__name__}: {e}"
        assert fuzz_broker.list_topics() == before, "a create_topic that raised left a topic"
        return
    assert name in fuzz_broker.list_topics()
    fuzz_broker.delete_topic(name)


@FUZZ
@given(timeout=short_timeouts, max_records=anything, tp=anything, offset=anything, offsets=anything)
def test_consumer_calls_raise_only_documented_errors(fuzz_broker: Broker, timeout: Any, max_records: Any,
                                                     tp: Any, offset: Any, offsets: Any) -> None:
    with Consumer(fuzz_broker, group_id="fuzz", enable_auto_commit=False) as c:
        c.assign([TopicPartition("t", 0), TopicPartition("t", 1)])
        for call in (lambda: c.poll(timeout, max_records),
                     lambda: c.seek(tp, offset),
                     lambda: c.position(tp),
                     lambda: c.offsets_for_times(offsets)):
            try:
                call()
            except BaseException as e:
                assert documented(e), f"undocumented {type(e).__name__}: {e}"
        before = fuzz_broker.committed_offsets("fuzz")
        try:
            c.commit(offsets)
        except BaseException as e:
            assert documented(e), f"undocumented {type(e).__name__}: {e}"
            assert fuzz_broker.committed_offsets("fuzz") == before, "a commit that raised wrote offsets"


@FUZZ
@given(options=st.dictionaries(st.sampled_from(["segment_bytes", "retention_ms", "retention_bytes", "fsync",
                                                "index_interval_bytes", "poll_interval", "bogus"]),
                               anything, max_size=3))
def test_broker_options_raise_only_documented_errors(tmp_path_factory: pytest.TempPathFactory,
                                                     options: dict[str, Any]) -> None:
    path = tmp_path_factory.mktemp("opts")
    if isinstance(options.get("segment_bytes"), int) and options["segment_bytes"] > 1 << 24:
        options["segment_bytes"] = 1 << 16
    try:
        Broker(path, **options).close()
    except BaseException as e:
        assert documented(e), f"undocumented {type(e).__name__}: {e}"


def test_poll_with_nan_timeout_does_not_hang(tmp_path: Path) -> None:
    result = run_child("""
        import sys, minikafka
        b = minikafka.Broker(sys.argv[1])
        b.create_topic("t")
        c = minikafka.Consumer(b, "t")
        try:
            c.poll(timeout=float("nan"))
        except (minikafka.InvalidArgumentError, TypeError) as e:
            print("REFUSED", e)
        else:
            print("RETURNED")
        """, str(tmp_path / "data"), timeout=5)
    assert result.stdout.startswith(("REFUSED", "RETURNED")), result.stderr
