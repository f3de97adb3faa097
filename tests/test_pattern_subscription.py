"""``subscribe(pattern=...)``: every topic whose whole name matches, now
and as matching topics are created, alike on both backends (``backend``
is a data directory or the session's Kafka, tests/kafka_broker.py)."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from typing import Any

import pytest

import minikafka
from minikafka import Consumer, Producer

GROUP = {"session_timeout": 1.5, "heartbeat_interval": 0.3}  # short enough for Tansu's join


def values_read(consumer: Consumer, n: int, timeout: float = 15.0) -> list[bytes]:
    """Values of the next ``n`` records, then one more short poll (nothing more may come)."""
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        got += [r.value for r in consumer.poll(timeout=0.2)]
    got += [r.value for r in consumer.poll(timeout=0.3)]
    return got


def send(broker: Any, topic: str, value: bytes) -> None:
    with Producer(broker) as p:
        p.send(topic, value, partition=0).result(10)


@pytest.mark.parametrize("group", [False, True], ids=["alone", "group"])
def test_a_pattern_follows_the_matching_topics_and_those_created_later(backend: Any, group: bool) -> None:
    run = uuid.uuid4().hex[:8]
    for name in (f"p{run}-eu", f"p{run}-us", f"q{run}-eu", f"p{run}"):
        backend.create_topic(name)
        send(backend, name, name.encode())
    options = {"group_id": f"g{run}", **GROUP} if group else {}
    with Consumer(backend, auto_offset_reset="earliest", **options) as c:
        c.subscribe(pattern=rf"p{run}-.*")
        # The whole name must match: "q...-eu" (a search would find it) and
        # the bare prefix are not subscribed.
        assert c.subscription() == {f"p{run}-eu", f"p{run}-us"}
        assert sorted(values_read(c, 2)) == [f"p{run}-eu".encode(), f"p{run}-us".encode()]
        backend.create_topic(f"p{run}-new")
        send(backend, f"p{run}-new", b"new")
        assert values_read(c, 1) == [b"new"]
        assert c.subscription() == {f"p{run}-eu", f"p{run}-us", f"p{run}-new"}
        assert {tp.topic for tp in c.assignment()} == c.subscription()


def test_a_group_pattern_that_matches_nothing_yet_joins_once_a_topic_matches(backend: Any) -> None:
    run = uuid.uuid4().hex[:8]
    with Consumer(backend, group_id=f"g{run}", auto_offset_reset="earliest", **GROUP) as c:
        c.subscribe(pattern=re.compile(rf"p{run}-.*"))
        assert c.subscription() == set()
        assert c.poll(0.3) == []
        backend.create_topic(f"p{run}-a", partitions=2)
        send(backend, f"p{run}-a", b"a")
        assert values_read(c, 1) == [b"a"]
        c.commit()
    with Consumer(backend, group_id=f"g{run}", auto_offset_reset="earliest", **GROUP) as c:
        c.subscribe(pattern=rf"p{run}-.*")
        send(backend, f"p{run}-a", b"b")
        assert values_read(c, 1) == [b"b"]  # "a" was committed by the first


def test_unsubscribe_drops_the_pattern(backend: Any) -> None:
    run = uuid.uuid4().hex[:8]
    backend.create_topic(f"p{run}-a")
    with Consumer(backend, auto_offset_reset="earliest") as c:
        c.subscribe(pattern=rf"p{run}-.*")
        assert c.subscription() == {f"p{run}-a"}
        c.unsubscribe()
        assert c.subscription() == set() and c.assignment() == set()
        backend.create_topic(f"p{run}-b")
        send(backend, f"p{run}-b", b"b")
        time.sleep(1.2)  # past the backends' next look for matching topics
        assert c.poll(0.3) == [] and c.assignment() == set()
        c.subscribe([f"p{run}-b"])  # topics again, after a pattern
        assert values_read(c, 1) == [b"b"]


def test_bad_patterns_are_named(tmp_path: Any) -> None:
    with minikafka.Broker(tmp_path / "d") as b, Consumer(b) as c:
        with pytest.raises(minikafka.InvalidArgumentError, match=r"pattern '\(' is not a regular expression"):
            c.subscribe(pattern="(")
        with pytest.raises(minikafka.InvalidArgumentError, match=r"topics or a pattern, not both"):
            c.subscribe(["t"], pattern="t.*")
        with pytest.raises(TypeError, match=r"pattern must be a str or re.Pattern, not int"):
            c.subscribe(pattern=3)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"not bytes"):
            c.subscribe(pattern=re.compile(b"t"))  # type: ignore[arg-type]
        assert c.subscription() == set()  # a refused call changes nothing


def test_async_consumer_subscribes_to_a_pattern(backend: Any) -> None:
    run = uuid.uuid4().hex[:8]
    backend.create_topic(f"p{run}-a")
    send(backend, f"p{run}-a", b"a")

    async def main() -> list[bytes]:
        async with minikafka.AsyncConsumer(backend, auto_offset_reset="earliest") as c:
            c.subscribe(pattern=rf"p{run}-.*")
            assert c.subscription() == {f"p{run}-a"}
            return [(await asyncio.wait_for(c.getone(), 15)).value]

    assert asyncio.run(main()) == [b"a"]


@pytest.mark.parametrize("by", ["pattern", "topics"])
def test_a_topic_deleted_while_subscribed_is_dropped_not_an_error(tmp_path: Any, by: str) -> None:
    # Before the fix a directory's poll raised ClosedError ("directory is
    # gone") for a partition not yet positioned when its topic was deleted.
    # A directory only: on Tansu, librdkafka 2.16 crashes the process with
    # a fetch answered after its topic's deletion (docs/scaling.md, "Tansu 0.6").
    backend = minikafka.Broker(tmp_path / "d")
    run = uuid.uuid4().hex[:8]
    backend.create_topic(f"p{run}-a")
    backend.create_topic(f"p{run}-b")
    with Consumer(backend, auto_offset_reset="earliest") as c:
        if by == "pattern":
            c.subscribe(pattern=rf"p{run}-.*")
        else:
            c.subscribe([f"p{run}-a", f"p{run}-b"])
        assert c.subscription() == {f"p{run}-a", f"p{run}-b"}
        backend.delete_topic(f"p{run}-b")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and {tp.topic for tp in c.assignment()} != {f"p{run}-a"}:
            c.poll(0.2)
        if by == "pattern":
            assert c.subscription() == {f"p{run}-a"}
        assert {tp.topic for tp in c.assignment()} == {f"p{run}-a"}
    backend.close()
