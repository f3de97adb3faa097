"""The consumer backend seam: Consumer is backend-blind. A small in-memory
backend (records in lists) stands behind the real Consumer facade, as the
Kafka backend does, and gets iteration, stop_at_end, the consumed-on-yield
rule, listeners and auto-commit from the facade unchanged."""

from __future__ import annotations

import contextlib
import re
from typing import Any

import pytest

import minikafka
from minikafka import Consumer, ConsumerConfig, Record, TopicPartition
from minikafka.consumer_backend import ConsumerBackend, ConsumerHooks

TP0, TP1 = TopicPartition("t", 0), TopicPartition("t", 1)


class ListBackend:
    """Partitions are lists of values; positions are indexes into them."""

    def __init__(self, logs: dict[TopicPartition, list[bytes]], config: ConsumerConfig,
                 hooks: ConsumerHooks) -> None:
        self.logs, self.config, self.hooks = logs, config, hooks
        self.pos: dict[TopicPartition, int] = {}
        self.commits: list[dict[TopicPartition, int]] = []
        self.stored: dict[TopicPartition, int] = {}
        self._paused: set[TopicPartition] = set()
        self.closed = False
        self.seen: dict[TopicPartition, int] = {}  # what seen_end_offsets reports
        self.end_requests = 0
        self.topics: tuple[str, ...] = ()

    member_id = None
    generation = 0

    def subscribe(self, topics: tuple[str, ...], pattern: re.Pattern[str] | None = None) -> None:
        if pattern is not None:
            topics = tuple(sorted({tp.topic for tp in self.logs if pattern.fullmatch(tp.topic)}))
        self.topics = topics
        tps = {tp for tp in self.logs if tp.topic in topics}
        for tp in tps:
            self.pos[tp] = self.stored.get(tp, 0)
        self.hooks.assigned(tps)

    def subscription(self) -> tuple[str, ...]:
        return self.topics

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.pos = {tp: self.stored.get(tp, 0) for tp in partitions}

    def unsubscribe(self) -> None:
        self.hooks.revoking(set(self.pos), "leave")
        self.pos, self.topics = {}, ()

    def assignment(self) -> set[TopicPartition]:
        return set(self.pos)

    def rebalancing(self) -> bool:
        return False

    def fetch(self, max_records: int, timeout: float | None) -> list[Record]:
        out: list[Record] = []
        vd = self.config.value_deserializer
        for tp in sorted(self.pos):
            if tp in self._paused:
                continue
            log = self.logs[tp]
            while self.pos[tp] < len(log) and len(out) < max_records:
                v = log[self.pos[tp]]
                out.append(Record(tp.topic, tp.partition, self.pos[tp], 0, None, vd(v) if vd else v, ()))
                self.pos[tp] += 1
        return out

    def wakeup(self) -> None:
        pass

    def seek(self, tp: TopicPartition, offset: int, edge: str | None = None) -> None:
        self.pos[tp] = offset

    def position(self, tp: TopicPartition) -> int:
        return self.pos[tp]

    def positions(self) -> dict[TopicPartition, int]:
        return dict(self.pos)

    def pause(self, tps: list[TopicPartition]) -> None:
        self._paused.update(tps)

    def resume(self, tps: list[TopicPartition]) -> None:
        self._paused.difference_update(tps)

    def paused(self) -> set[TopicPartition]:
        return set(self._paused)

    def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(dict(offsets))
        self.stored.update(offsets)

    def committed(self, tp: TopicPartition) -> int | None:
        return self.stored.get(tp)

    def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, 0)

    def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.end_requests += 1
        return {tp: len(self.logs[tp]) for tp in tps}

    def seen_end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.seen[tp] for tp in tps if tp in self.seen}

    def offsets_for_times(self, times: dict[TopicPartition, int]) -> dict[TopicPartition, int | None]:
        return dict.fromkeys(times)

    def within(self, timeout: float | None) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()  # nothing here waits

    def close(self) -> None:
        if self.pos:
            self.hooks.revoking(set(self.pos), "leave")
        self.closed = True


class ListBroker:
    """What connect() could return: anything with consumer_backend()."""

    def __init__(self, logs: dict[TopicPartition, list[bytes]]) -> None:
        self.logs = logs
        self.backends: list[ListBackend] = []

    def consumer_backend(self, config: ConsumerConfig, hooks: ConsumerHooks) -> ConsumerBackend:
        backend = ListBackend(self.logs, config, hooks)
        self.backends.append(backend)
        return backend


@pytest.fixture
def list_broker() -> ListBroker:
    return ListBroker({TP0: [b"a", b"b", b"c"], TP1: [b"x", b"y"]})


def test_facade_over_another_backend(list_broker: ListBroker) -> None:
    events: list[Any] = []
    c = Consumer(list_broker, "t", group_id="g", value_deserializer=bytes.decode, stop_at_end=True,
                 on_assign=lambda tps: events.append(("assign", tps)),
                 on_revoke=lambda tps: events.append(("revoke", tps)))
    backend = list_broker.backends[0]
    assert events == [("assign", {TP0, TP1})]
    assert sorted((r.partition, r.value) for r in c) == [(0, "a"), (0, "b"), (0, "c"), (1, "x"), (1, "y")]
    assert c.at_end()
    c.close()
    assert events[-1] == ("revoke", {TP0, TP1})
    assert backend.closed and backend.stored == {TP0: 3, TP1: 2}


def test_at_end_asks_for_end_offsets_only_when_no_fetch_saw_more(list_broker: ListBroker) -> None:
    c = Consumer(list_broker)
    c.assign([TP0, TP1])
    backend = list_broker.backends[0]
    backend.seen = {TP0: 2}  # a fetch saw 2 records of TP0: position 0 is not its end
    assert not c.at_end() and backend.end_requests == 0
    c.seek(TP0, 3)
    backend.seen = {TP0: 3}  # seen up to the position: only a request can tell
    assert not c.at_end() and backend.end_requests == 1  # TP1 is at 0 of 2
    c.seek(TP1, 2)
    assert c.at_end() and backend.end_requests == 2


def test_break_settles_through_the_backend(list_broker: ListBroker) -> None:
    c = Consumer(list_broker, "t", group_id="g", enable_auto_commit=False)
    for r in c:
        if (r.partition, r.offset) == (0, 1):
            break
    assert c.position(TP0) == 2  # the yielded record is consumed, the rest put back
    assert c.position(TP1) == 0
    c.commit()
    assert list_broker.backends[0].commits[-1] == {TP0: 2, TP1: 0}


def test_validation_happens_before_the_backend_is_called(list_broker: ListBroker) -> None:
    c = Consumer(list_broker)
    c.assign([TP0])
    with pytest.raises(minikafka.InvalidArgumentError):
        c.seek(TP0, -1)
    with pytest.raises(minikafka.InvalidArgumentError):
        c.seek(TP1, 0)  # not assigned
    with pytest.raises(TypeError):
        c.offsets_for_times({TP0: "soon"})
    with pytest.raises(minikafka.InvalidArgumentError):
        c.commit()  # no group_id
    with pytest.raises(TypeError, match="Consumer needs"):
        Consumer(object())
