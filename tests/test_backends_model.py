"""Differential state machine: the same random steps on a data directory and
on Kafka, which must answer alike.

hypothesis drives one Producer and one Consumer per backend through sends
(``minikafka.testing.strategies.records``), ``send_many``, assigns, polls,
iteration left early, seeks, pauses, commits and offset lookups, and compares every answer: the
RecordMetadata, the records read, positions, committed offsets, lag and
the offset lookups. The directory is the model: the two must not differ
except where docs/scaling.md says they do, which the steps keep out of the
draw (a keyless record is given a partition, as sticky spread differs; a
timestamp is always given, as "now" differs between processes).
"""

from __future__ import annotations

import tempfile
import time
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)
from kafka_broker import on_tansu

import minikafka
from minikafka import TopicPartition as TP
from minikafka.testing import strategies as mks

PARTITIONS = {"one": 1, "three": 3}
WAIT = 15.0  # seconds Kafka may take to show what was flushed


class TwoBackends(RuleBasedStateMachine):
    """``dir`` is the model; ``kafka`` must match it step by step."""

    kafka_url = ""

    @initialize()
    def open(self) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="minikafka-2model-")
        run = uuid.uuid4().hex[:8]
        self.topics = {name: f"m{run}-{name}" for name in PARTITIONS}
        self.brokers = {"dir": minikafka.connect(self.tmp.name),
                        "kafka": minikafka.connect(self.kafka_url,
                                                   consumer_config={"fetch.wait.max.ms": 20})}
        for broker in self.brokers.values():
            for name, n in PARTITIONS.items():
                broker.create_topic(self.topics[name], partitions=n)
        self.producers = {k: minikafka.Producer(b, linger_ms=1) for k, b in self.brokers.items()}
        self.pending: list[tuple[Any, Any]] = []  # (dir future, kafka future)
        self.group = f"g{run}"
        self.consumers: dict[str, minikafka.Consumer] = {}
        self.assigned: list[TP] = []
        self.paused: set[TP] = set()
        self.ends = {TP(t, p): 0 for name, t in self.topics.items() for p in range(PARTITIONS[name])}

    def teardown(self) -> None:
        for c in getattr(self, "consumers", {}).values():
            c.close()
        for p in getattr(self, "producers", {}).values():
            p.close()
        for b in getattr(self, "brokers", {}).values():
            if b is self.brokers["kafka"]:
                for t in self.topics.values():
                    b.delete_topic(t)
            b.close()
        if hasattr(self, "tmp"):
            self.tmp.cleanup()

    # -- producing -------------------------------------------------------------------------------

    def _send_args(self, name: str, kwargs: dict[str, Any], ts: int) -> dict[str, Any]:
        kwargs = dict(kwargs)
        kwargs.setdefault("timestamp_ms", ts)
        if kwargs["key"] is None and "partition" not in kwargs:
            kwargs["partition"] = ts % PARTITIONS[name]
        return kwargs

    @rule(name=st.sampled_from(sorted(PARTITIONS)), data=st.data(), ts=mks.timestamps())
    def send(self, name: str, data: st.DataObject, ts: int) -> None:
        kwargs = self._send_args(name, data.draw(mks.records(PARTITIONS[name], 16, 64)), ts)
        futures = tuple(self.producers[k].send(self.topics[name], **kwargs) for k in ("dir", "kafka"))
        self.pending.append(futures)

    @rule(name=st.sampled_from(sorted(PARTITIONS)), values=st.lists(mks.values(64), min_size=1, max_size=6),
          explicit=st.booleans(), ts=mks.timestamps(), data=st.data())
    def send_many(self, name: str, values: list[bytes | None], explicit: bool, ts: int,
                  data: st.DataObject) -> None:
        """Keyed records, or any with a partition given (keyless ones go to
        one partition chosen as for a keyless send, which differs)."""
        n = len(values)
        partition = data.draw(st.integers(0, PARTITIONS[name] - 1)) if explicit else None
        keys = data.draw(st.none() | st.lists(mks.keys(16), min_size=n, max_size=n)) if explicit else \
            data.draw(st.lists(mks.keys(16, nullable=False), min_size=n, max_size=n))
        got = {k: [(m.topic, m.partition, m.offset, m.timestamp) for m in
                   self.producers[k].send_many(self.topics[name], values, keys, partition=partition,
                                               timestamp_ms=ts).metadata()]
               for k in ("dir", "kafka")}
        assert got["kafka"] == got["dir"]
        for topic, p, offset, _ in got["dir"]:
            self.ends[TP(topic, p)] = max(self.ends[TP(topic, p)], offset + 1)

    @rule()
    def flush(self) -> None:
        for p in self.producers.values():
            p.flush(timeout=WAIT)
        for fd, fk in self.pending:
            md, mk = fd.result(0), fk.result(0)
            assert (mk.topic, mk.partition, mk.offset, mk.timestamp) == \
                (md.topic, md.partition, md.offset, md.timestamp)
            tp = TP(md.topic, md.partition)
            self.ends[tp] = max(self.ends[tp], md.offset + 1)
        self.pending.clear()

    # -- consuming -------------------------------------------------------------------------------

    @rule(reset=st.sampled_from(["earliest", "latest"]), data=st.data())
    def assign(self, reset: str, data: st.DataObject) -> None:
        self.flush()
        tps = data.draw(st.lists(st.sampled_from(sorted(self.ends)), min_size=1, max_size=3, unique=True))
        for c in self.consumers.values():
            c.close()
        self.consumers = {k: minikafka.Consumer(b, group_id=self.group, enable_auto_commit=False,
                                                auto_offset_reset=reset, consumer_timeout=WAIT)
                          for k, b in self.brokers.items()}
        for c in self.consumers.values():
            c.assign(tps)
        self.assigned, self.paused = sorted(tps), set()
        # Fix the starts now: a committed offset is read at assign on Kafka
        # and at the first look on a directory (docs/scaling.md), so a commit
        # in between would start them apart.
        self.positions()

    def _live(self) -> list[TP]:
        return [tp for tp in self.assigned if tp not in self.paused]

    @precondition(lambda self: len(self._live()) == 1)
    @rule(n=st.integers(1, 5))
    def poll_some(self, n: int) -> None:
        """One partition readable: the first ``n`` records of it, alike."""
        self.flush()
        want = [self._key(r) for r in self.consumers["dir"].poll(0, max_records=n)]
        got: list[tuple[Any, ...]] = []
        deadline = time.monotonic() + WAIT
        while len(got) < len(want) and time.monotonic() < deadline:
            more = self.consumers["kafka"].poll(0.2, max_records=len(want) - len(got))
            got.extend(self._key(r) for r in more)
        assert got == want
        self.positions()

    @precondition(lambda self: len(self._live()) == 1)
    @rule(k=st.integers(1, 4))
    def iterate_some(self, k: int) -> None:
        """``for record in consumer``, leaving the loop after ``k``: the
        records yielded, then the position right after the last, alike."""
        self.flush()
        self.positions()
        tp = self._live()[0]
        k = min(k, self.ends[tp] - self.consumers["dir"].position(tp))
        if not k:
            return
        read = {}
        for name, c in self.consumers.items():
            got = []
            for r in c:
                got.append(self._key(r))
                if len(got) == k:
                    break
            read[name] = got
        assert read["kafka"] == read["dir"]
        self.positions()

    @precondition(lambda self: bool(self.consumers))
    @rule()
    def drain(self) -> None:
        """Every record to the end of the readable partitions, alike per partition."""
        self.flush()
        read: dict[str, dict[TP, list[tuple[Any, ...]]]] = {}
        for k, c in self.consumers.items():
            read[k] = {tp: [] for tp in self._live()}
            deadline = time.monotonic() + (WAIT if k == "kafka" else 2)
            while not all(c.position(tp) >= self.ends[tp] for tp in self._live()):
                assert time.monotonic() < deadline, f"{k}: not at the end in time"
                for r in c.poll(0.05):
                    read[k][TP(r.topic, r.partition)].append(self._key(r))
        assert read["kafka"] == read["dir"]
        self.positions()

    @staticmethod
    def _key(r: minikafka.Record) -> tuple[Any, ...]:
        return (r.topic, r.partition, r.offset, r.timestamp, r.key, r.value, r.headers)

    @precondition(lambda self: bool(self.consumers))
    @rule()
    def positions(self) -> None:
        for tp in self.assigned:
            assert self.consumers["kafka"].position(tp) == self.consumers["dir"].position(tp), tp

    @precondition(lambda self: bool(self.consumers))
    @rule(data=st.data())
    def seek(self, data: st.DataObject) -> None:
        tp = data.draw(st.sampled_from(self.assigned))
        offset = data.draw(st.integers(0, self.ends[tp]))
        for c in self.consumers.values():
            c.seek(tp, offset)

    @precondition(lambda self: bool(self.consumers))
    @rule(data=st.data(), to_end=st.booleans())
    def seek_to_an_end(self, data: st.DataObject, to_end: bool) -> None:
        self.flush()
        tps = data.draw(st.lists(st.sampled_from(self.assigned), unique=True))
        for c in self.consumers.values():
            (c.seek_to_end if to_end else c.seek_to_beginning)(*tps)
        self.positions()

    @precondition(lambda self: bool(self.consumers))
    @rule(data=st.data())
    def pause_or_resume(self, data: st.DataObject) -> None:
        tp = data.draw(st.sampled_from(self.assigned))
        for c in self.consumers.values():
            (c.resume if tp in self.paused else c.pause)(tp)
        self.paused ^= {tp}
        assert self.consumers["kafka"].paused() == self.consumers["dir"].paused() == self.paused

    @precondition(lambda self: bool(self.consumers))
    @rule(data=st.data(), explicit=st.booleans())
    def commit(self, data: st.DataObject, explicit: bool) -> None:
        self.flush()
        if explicit:
            tp = data.draw(st.sampled_from(self.assigned))
            offsets = {tp: data.draw(st.integers(0, self.ends[tp]))}
            for c in self.consumers.values():
                c.commit(offsets)
        else:
            for c in self.consumers.values():
                c.commit()
        for tp in self.assigned:
            assert self.consumers["kafka"].committed(tp) == self.consumers["dir"].committed(tp), tp
        lags = {k: b.lag(self.group) for k, b in self.brokers.items()}
        assert lags["kafka"] == lags["dir"]

    @precondition(lambda self: bool(self.consumers))
    @rule(data=st.data())
    def offsets_for_times(self, data: st.DataObject) -> None:
        self.flush()
        tp = data.draw(st.sampled_from(self.assigned))
        ts = data.draw(mks.timestamps())
        if not on_tansu():  # Tansu 0.6: ListOffsets by timestamp always answers 0
            found = {k: c.offsets_for_times({tp: ts}) for k, c in self.consumers.items()}
            assert found["kafka"] == found["dir"]
        ends = {k: c.end_offsets(self.assigned) for k, c in self.consumers.items()}
        begins = {k: c.beginning_offsets(self.assigned) for k, c in self.consumers.items()}
        assert (ends["kafka"], begins["kafka"]) == (ends["dir"], begins["dir"])


@pytest.mark.slow
def test_a_directory_and_kafka_answer_every_step_alike(kafka_url: str) -> None:
    TwoBackends.kafka_url = kafka_url
    run_state_machine_as_test(TwoBackends, settings=settings(
        max_examples=max(5, settings.default.max_examples // 20), stateful_step_count=25, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
