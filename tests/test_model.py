"""Model-based test: a hypothesis state machine drives the real library
(topics with and without retention, sends, send_many, flushes, consumers,
a group of two subscribed members, seeks, commits, offset lookups, topic
deletion, broker reopening) next to a plain in-memory model and asserts
they never differ.

Examples: the hypothesis profile (tests/conftest.py: "dev" by default,
"ci" larger when CI is set), ~30 steps each.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pytest
import xxhash
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import minikafka
from minikafka import TopicPartition as TP

TOPIC_NAMES = ["t0", "orders.v1", "a-b_C", "x"]
GROUPS = [None, "g1", "grp.2"]
PAIR_GROUP = "pair"  # the group of two subscribed members (rule group_of_two)
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


class Rec(NamedTuple):
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp: int


@dataclass
class Pending:
    """A sent record whose future the model has not absorbed yet."""

    future: Any
    topic: str
    partition: int | None  # None: keyless without explicit partition (learnt from metadata)
    rec: Rec  # timestamp is None when the producer picks it


@dataclass
class CModel:
    """The model of one open consumer."""

    consumer: minikafka.Consumer
    group: str | None
    mode: str  # "assign" | "subscribe"
    reset: str
    tps: list[TP]
    pos: dict[TP, int | None] = field(default_factory=dict)
    ready: dict[TP, bool] = field(default_factory=dict)
    paused: set[TP] = field(default_factory=set)


def big_value(args: tuple[int, int]) -> bytes:
    size, seed = args
    return random.Random(seed).randbytes(size)


small_bytes = st.binary(max_size=24)
values = st.one_of(
    st.none(),
    st.just(b""),  # empty, distinct from None
    small_bytes,
    st.tuples(st.integers(200, 3000), st.integers(0, 1 << 30)).map(big_value),
)
keys = st.one_of(st.none(), st.just(b""), st.binary(min_size=1, max_size=16))
header_names = st.text(alphabet=st.sampled_from("abcXé-_ "), max_size=6)
header_pairs = st.lists(st.tuples(header_names, st.binary(max_size=12)), max_size=4)
headers = st.one_of(
    st.none(),
    header_pairs,  # list of pairs: duplicate names allowed
    st.dictionaries(header_names, st.binary(max_size=12), max_size=3),
    # explicit duplicates
    st.tuples(header_names, st.binary(max_size=4), st.binary(max_size=4)).map(
        lambda t: [(t[0], t[1]), ("other", b""), (t[0], t[2])]),
)
timestamps = st.one_of(
    st.none(),
    st.integers(0, 1 << 42),
    st.integers(1_700_000_000_000, 1_700_000_000_100),  # clustered: ties and near misses
    st.sampled_from([0, INT64_MAX]),
    st.integers(0, INT64_MAX),  # negative timestamps are refused (issue 9 #14)
)
picks = st.integers(0, 1 << 16)  # index into whatever list the rule chooses from
SEND = dict(topic_i=picks, key=keys, value=values, part=st.none() | picks, hdrs=headers, ts=timestamps,
            wrap=st.sampled_from([bytes, bytes, bytearray, memoryview, str]))
# (segment_bytes, index_interval_bytes): small segments roll; dense indexes get used
LAYOUT = st.tuples(st.sampled_from([4096, 16384, 65536]), st.sampled_from([64, 1024, 4096]))
CONSUMER = dict(group_i=picks, subscribe=st.booleans(), reset=st.sampled_from(["earliest", "latest", "none"]),
                picks_=st.lists(picks, max_size=6), ctor=st.booleans())


def header_tuple(h: Any) -> tuple[tuple[str, bytes], ...]:
    if h is None:
        return ()
    if isinstance(h, dict):
        return tuple(h.items())
    return tuple((n, bytes(v)) for n, v in h)


class LogMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="minikafka-model-")
        self.broker = minikafka.Broker(self.dir)
        self.producer = minikafka.Producer(self.broker)
        self.topics: dict[str, int] = {}  # name -> partitions
        self.retention: dict[str, tuple[int, int]] = {}  # name -> (retention_bytes, segment_bytes)
        self.log: dict[TP, list[Rec]] = {}
        self.begin: dict[TP, int] = {}  # first retained offset, as last observed
        self.written: dict[TP, int] = {}  # bytes of key + value absorbed
        self.staged: dict[TP, dict[int, Rec]] = {}  # absorbed but not yet dense
        self.pending: list[Pending] = []
        self.committed: dict[str, dict[TP, int]] = {g: {} for g in [*GROUPS, PAIR_GROUP] if g}
        self.consumers: list[CModel] = []
        self.groups_of_two = 0  # each costs a rebalance (~50 ms): a few per example

    def teardown(self) -> None:
        try:
            for cm in self.consumers:
                cm.consumer.close()
            self.producer.close()
            self.broker.close()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- helpers ----------------------------------------------------------------

    def all_tps(self) -> list[TP]:
        return [TP(t, p) for t, n in sorted(self.topics.items()) for p in range(n)]

    def kept_tps(self) -> list[TP]:
        """Partitions of topics without retention: consumers read these, so
        that where a position resolves never depends on when segments roll."""
        return [tp for tp in self.all_tps() if tp.topic not in self.retention]

    def end(self, tp: TP) -> int:
        return len(self.log[tp])

    def absorb(self, force: bool = False, flush: bool = True) -> None:
        """Move written records into the model, learning offsets (and keyless
        partitions and default timestamps) from their metadata."""
        if force and flush:
            self.producer.flush()
        left = []
        for p in self.pending:
            if not force and not p.future.done():
                left.append(p)
                continue
            assert p.future.done()
            self.stage(p, p.future.result(timeout=10))
        self.pending = left
        for tp, staged in self.staged.items():
            log = self.log[tp]
            while len(log) in staged:
                log.append(staged.pop(len(log)))
            if force:
                assert not staged, f"{tp}: offsets not dense, missing {len(log)}, have {sorted(staged)}"
        if force:
            self.observe_retention()

    def stage(self, p: Pending, md: minikafka.RecordMetadata) -> None:
        """Learn where one sent record was written."""
        assert md.topic == p.topic
        if p.partition is not None:
            assert md.partition == p.partition
        assert 0 <= md.partition < self.topics[p.topic]
        if p.rec.timestamp is not None:
            assert md.timestamp == p.rec.timestamp
        tp = TP(p.topic, md.partition)
        staged = self.staged[tp]
        assert md.offset >= self.end(tp) and md.offset not in staged, (md, self.end(tp))
        staged[md.offset] = p.rec._replace(timestamp=md.timestamp)
        self.written[tp] += len(p.rec.key or b"") + len(p.rec.value or b"")

    def observe_retention(self) -> None:
        """Everything is written: where each retention topic now begins.
        Retention only moves the beginning forward, never past the end, and
        acts once a partition holds well over its retention_bytes."""
        for name, (retention_bytes, segment_bytes) in self.retention.items():
            for p, b in self.broker.topic(name).beginning_offsets().items():
                tp = TP(name, p)
                assert self.begin[tp] <= b <= self.end(tp), (tp, self.begin[tp], b, self.end(tp))
                if self.written[tp] > retention_bytes + 3 * segment_bytes:
                    assert b > 0, f"{tp}: {self.written[tp]} bytes written, nothing deleted"
                self.begin[tp] = b

    def check_record(self, r: minikafka.Record) -> None:
        tp = TP(r.topic, r.partition)
        rec = self.log[tp][r.offset]
        assert type(r.headers) is tuple and all(type(h) is tuple for h in r.headers)
        for v in (r.key, r.value, *(v for _, v in r.headers)):
            assert v is None or type(v) is bytes
        got = Rec(r.key, r.value, r.headers, r.timestamp)
        assert got == rec, (tp, r.offset, got, rec)

    def resolve(self, cm: CModel, tp: TP) -> int | None:
        """Where the consumer's position for ``tp`` resolves now; None means
        NoOffsetError. The caller has flushed, so the model's end is the log's."""
        pos = cm.pos.get(tp)
        if cm.ready.get(tp):
            return pos
        if pos is None and cm.group is not None:
            pos = self.committed[cm.group].get(tp)
        if pos is None or not self.begin[tp] <= pos <= self.end(tp):
            if cm.reset == "none":
                return None
            pos = self.begin[tp] if cm.reset == "earliest" else self.end(tp)
        return pos

    def unresolved(self, cm: CModel) -> bool:
        return not all(cm.ready.get(tp) for tp in cm.tps)

    def sync_positions(self, cm: CModel) -> None:
        """Resolve every position the model can resolve, in model and library."""
        for tp in cm.tps:
            expect = self.resolve(cm, tp)
            if expect is None:
                with pytest.raises(minikafka.NoOffsetError):
                    cm.consumer.position(tp)
                continue
            assert cm.consumer.position(tp) == expect, (tp, cm)
            cm.pos[tp], cm.ready[tp] = expect, True

    def pick_consumer(self, i: int) -> CModel:
        return self.consumers[i % len(self.consumers)]

    def pick_topic(self, i: int) -> str:
        return sorted(self.topics)[i % len(self.topics)]

    def pick_kept_topic(self, i: int) -> str:
        kept = sorted(t for t in self.topics if t not in self.retention)
        return kept[i % len(kept)]

    # -- topics and producing ---------------------------------------------------

    @initialize(name_i=picks, partitions=st.integers(1, 4), layout=LAYOUT,
                consumer=st.none() | st.fixed_dictionaries(CONSUMER))
    def start(self, name_i: int, partitions: int, layout: tuple[int, int],
              consumer: dict[str, Any] | None) -> None:
        """A topic, and usually a consumer, so that most rules apply from the first step."""
        self.create_topic(name_i, partitions, layout)
        if consumer is not None:
            self.new_consumer(**consumer)

    @precondition(lambda self: len(self.topics) < len(TOPIC_NAMES))
    @rule(name_i=picks, partitions=st.integers(1, 4), layout=LAYOUT, retain=st.booleans())
    def create_topic(self, name_i: int, partitions: int, layout: tuple[int, int],
                     retain: bool = False) -> None:
        """A topic; with ``retain``, one that keeps only ~2 segments per partition."""
        free = [n for n in TOPIC_NAMES if n not in self.topics]
        name = free[name_i % len(free)]
        segment_bytes = 4096 if retain else layout[0]  # retention acts after a few small segments
        retention_bytes = 2 * segment_bytes if retain else None
        topic = self.broker.create_topic(name, partitions, segment_bytes=segment_bytes,
                                         index_interval_bytes=layout[1], retention_bytes=retention_bytes)
        assert topic.partitions == partitions and topic.name == name
        assert topic.config.retention_bytes == retention_bytes
        self.topics[name] = partitions
        if retention_bytes is not None:
            self.retention[name] = (retention_bytes, segment_bytes)
        for p in range(partitions):
            self.log[TP(name, p)] = []
            self.staged[TP(name, p)] = {}
            self.begin[TP(name, p)] = 0
            self.written[TP(name, p)] = 0
        with pytest.raises(minikafka.TopicExistsError):
            self.broker.create_topic(name)
        assert self.broker.list_topics() == sorted(self.topics)

    def _send(self, topic: str, key: bytes | None, value: Any, partition: int | None,
              hdrs: Any, ts: int | None) -> None:
        n = self.topics[topic]
        expected = partition
        if partition is None and key is not None:
            expected = xxhash.xxh3_64_intdigest(key) % n
            assert self.broker.topic(topic).partition_for(key) == expected
        fut = self.producer.send(topic, value, key, partition=partition, headers=hdrs, timestamp_ms=ts)
        raw = value.encode() if isinstance(value, str) else None if value is None else bytes(value)
        self.pending.append(Pending(fut, topic, expected, Rec(key, raw, header_tuple(hdrs), ts)))

    # Rules are drawn with a bias to the first in hypothesis's order (fewest
    # arguments, then name): one argument and this name put sending first.
    @rule(r=st.fixed_dictionaries(SEND))
    def append(self, r: dict[str, Any]) -> None:
        """Send one record."""
        topic = self.pick_topic(r["topic_i"])
        value, wrap = r["value"], r["wrap"]
        if value is not None and wrap is str and len(value) < 1000:
            value = value.hex()  # str is sent UTF-8 encoded
        elif value is not None and wrap is not str:
            value = wrap(value)
        partition = None if r["part"] is None else r["part"] % self.topics[topic]
        self._send(topic, r["key"], value, partition, r["hdrs"], r["ts"])

    @rule(topic_i=picks, count=st.integers(5, 40), size=st.integers(500, 3000), seed=st.integers(0, 1 << 30),
          keyed=st.booleans(), part=st.none() | picks, ts=timestamps)
    def send_burst(self, topic_i: int, count: int, size: int, seed: int, keyed: bool,
                   part: int | None, ts: int | None) -> None:
        """Enough bytes to roll small segments."""
        topic = self.pick_topic(topic_i)
        rnd = random.Random(seed)
        partition = None if part is None else part % self.topics[topic]
        for i in range(count):
            key = b"k%d" % rnd.randrange(8) if keyed else None
            self._send(topic, key, rnd.randbytes(rnd.randrange(size)), partition, None,
                       None if ts is None else ts + i if ts < INT64_MAX - 64 else ts)

    @rule(topic_i=picks, count=st.integers(1, 60), size=st.integers(0, 600), seed=st.integers(0, 1 << 30),
          keyed=st.booleans(), uniform=st.booleans(), part=st.none() | picks, ts=timestamps)
    def send_many(self, topic_i: int, count: int, size: int, seed: int, keyed: bool, uniform: bool,
                  part: int | None, ts: int | None) -> None:
        """The bulk path: written at once, after what was sent before; keyed
        records go to their key's partition unless one is named."""
        topic = self.pick_topic(topic_i)
        n = self.topics[topic]
        rnd = random.Random(seed)
        if uniform:  # one length for every value (and key): the fastest encoder
            values: list[bytes | None] = [rnd.randbytes(size) for _ in range(count)]
            keys = [b"k%d" % rnd.randrange(10) for _ in range(count)] if keyed else None
        else:
            values = [None if rnd.random() < 0.1 else rnd.randbytes(rnd.randrange(size + 1))
                      for _ in range(count)]
            keys = [None if rnd.random() < 0.2 else rnd.randbytes(rnd.randrange(1, 9))
                    for _ in range(count)] if keyed else None
        partition = None if part is None else part % n
        result = self.producer.send_many(topic, values, keys, partition=partition, timestamp_ms=ts)
        mds = result.metadata()
        assert len(mds) == result.count == count
        assert len({md.timestamp for md in mds}) == 1
        for i, md in enumerate(mds):
            key = keys[i] if keys is not None else None
            expected = partition if partition is not None else (
                xxhash.xxh3_64_intdigest(key) % n if key is not None else None)
            self.stage(Pending(None, topic, expected, Rec(key, values[i], (), ts)), md)
        self.absorb()

    @precondition(lambda self: len(self.topics) > 1)
    @rule(topic_i=picks)
    def delete_topic(self, topic_i: int) -> None:
        """Delete a topic (closing the consumers reading it first): its
        records and every group's offsets for it go; the name is free again."""
        topic = self.pick_topic(topic_i)
        self.absorb(force=True)
        for cm in [cm for cm in self.consumers if any(tp.topic == topic for tp in cm.tps)]:
            cm.consumer.close()
            self.consumers.remove(cm)
        self.broker.delete_topic(topic)
        for tp in [tp for tp in self.log if tp.topic == topic]:
            for table in (self.log, self.staged, self.begin, self.written):
                del table[tp]
        for offsets in self.committed.values():
            for tp in [tp for tp in offsets if tp.topic == topic]:
                del offsets[tp]
        del self.topics[topic]
        self.retention.pop(topic, None)
        assert self.broker.list_topics() == sorted(self.topics)
        with pytest.raises(minikafka.TopicNotFoundError):
            self.broker.topic(topic)
        with pytest.raises(minikafka.TopicNotFoundError):
            self.producer.send(topic, b"x")
        with pytest.raises(minikafka.TopicNotFoundError):
            self.broker.delete_topic(topic)
        for group, offsets in self.committed.items():
            assert self.broker.committed_offsets(group) == offsets

    @rule(timeout=st.sampled_from([None, 30.0]))
    def flush(self, timeout: float | None) -> None:
        self.producer.flush(timeout)
        assert all(p.future.done() for p in self.pending)
        self.absorb(force=True)

    @rule(linger=st.sampled_from([0, 5, 50]), batch_size=st.sampled_from([1, 2048, 16384]))
    def new_producer(self, linger: int, batch_size: int) -> None:
        self.producer.close()  # flushes
        self.absorb(force=True, flush=False)
        with pytest.raises(minikafka.ClosedError):
            self.producer.send(next(iter(self.topics), "t0"), b"x")
        self.producer = minikafka.Producer(self.broker, linger_ms=linger, batch_size=batch_size)

    # -- consumers --------------------------------------------------------------

    def open_consumer(self, group: str | None, mode: str, reset: str, tps: list[TP],
                      ctor: bool = False) -> None:
        """A consumer without auto-commit (its commits would be timing-dependent)."""
        names = sorted({tp.topic for tp in tps}) if mode == "subscribe" else []
        c = minikafka.Consumer(self.broker, *(names if ctor else ()), group_id=group,
                               auto_offset_reset=reset, enable_auto_commit=False)
        if mode == "subscribe" and not ctor:
            c.subscribe(names)
        elif mode == "assign":
            c.assign(tps)
        assert c.assignment() == set(tps)
        self.consumers.append(CModel(c, group, mode, reset, tps))

    @precondition(lambda self: len(self.consumers) < 4 and self.kept_tps())
    @rule(**CONSUMER)
    def new_consumer(self, group_i: int, subscribe: bool, reset: str, picks_: list[int], ctor: bool) -> None:
        group = GROUPS[group_i % len(GROUPS)]
        if subscribe and group is not None and any(
                cm.group == group and cm.mode == "subscribe" for cm in self.consumers):
            subscribe = False  # one member per group here: see group_of_two for more
        if subscribe:
            names = {self.pick_kept_topic(i) for i in picks_} or {self.pick_kept_topic(0)}
            tps = [tp for tp in self.all_tps() if tp.topic in names]
        else:
            everything = self.kept_tps()
            tps = sorted({everything[i % len(everything)] for i in picks_})
        self.open_consumer(group, "subscribe" if subscribe else "assign", reset, tps, ctor)

    @precondition(lambda self: self.kept_tps() and self.groups_of_two < 2)
    @rule(picks_=st.lists(picks, max_size=3), first=st.integers(0, 20),
          reset=st.sampled_from(["earliest", "latest"]))
    def group_of_two(self, picks_: list[int], first: int, reset: str) -> None:
        """Two members subscribe in one group: the second joins after the
        first read a few records. Between them they read every record from
        the group's committed offsets to the end exactly once, each
        partition in order (the first member's revoke commits what it read
        before the second takes over), and closing commits the end."""
        self.groups_of_two += 1
        names = sorted({self.pick_kept_topic(i) for i in picks_} or {self.pick_kept_topic(0)})
        tps = [tp for tp in self.all_tps() if tp.topic in names]
        self.absorb(force=True)
        committed = self.committed[PAIR_GROUP]
        start = {tp: committed[tp] if tp in committed and committed[tp] <= self.end(tp)
                 else 0 if reset == "earliest" else self.end(tp) for tp in tps}
        got: dict[TP, list[int]] = {tp: [] for tp in tps}

        def take(records: list[minikafka.Record]) -> int:
            for r in records:
                got[TP(r.topic, r.partition)].append(r.offset)
                self.check_record(r)
            return len(records)

        def member() -> minikafka.Consumer:
            return minikafka.Consumer(self.broker, *names, group_id=PAIR_GROUP, auto_offset_reset=reset,
                                      heartbeat_interval=0.02)

        with member() as a:
            assert a.assignment() == set(tps)
            take(a.poll(timeout=0, max_records=first + 1))
            with member() as b:
                deadline = time.monotonic() + 10
                while True:  # until the two own disjoint halves that cover everything
                    take(a.poll(timeout=0.01))
                    take(b.poll(timeout=0.01))
                    mine, theirs = a.assignment(), b.assignment()
                    if mine | theirs == set(tps) and not mine & theirs and not (
                            a._backend.rebalancing() or b._backend.rebalancing()):
                        break
                    assert time.monotonic() < deadline, f"no stable split: {mine} / {theirs}"
                if len(tps) > 1:
                    assert a.assignment() and b.assignment(), "both members get partitions"
                while take(a.poll(timeout=0, max_records=1000)) + take(b.poll(timeout=0, max_records=1000)):
                    pass
        for tp in tps:
            assert got[tp] == list(range(start[tp], self.end(tp))), (tp, start[tp], got[tp])
            committed[tp] = self.end(tp)
        assert self.broker.committed_offsets(PAIR_GROUP) == committed

    @precondition(lambda self: self.consumers)
    @rule(i=picks)
    def close_consumer(self, i: int) -> None:
        cm = self.pick_consumer(i)
        cm.consumer.close()
        self.consumers.remove(cm)
        with pytest.raises(minikafka.ClosedError):
            cm.consumer.poll()

    def _poll(self, cm: CModel, max_records: int | None) -> int:
        """One poll(timeout=0) checked against the model; returns the record count."""
        if self.unresolved(cm):
            self.absorb(force=True)  # resolving "latest" or a range check needs a known end
        active = [tp for tp in cm.tps if tp not in cm.paused]
        start = {tp: self.resolve(cm, tp) for tp in active}
        # poll positions paused partitions too (NoOffsetError for them as well)
        failing = [tp for tp in cm.tps if self.resolve(cm, tp) is None]
        try:
            records = cm.consumer.poll(timeout=0, max_records=max_records)
        except minikafka.NoOffsetError:
            assert failing, "NoOffsetError although every position resolves"
            records = None
        else:
            assert not failing, f"no NoOffsetError for {failing}"
        if records is None:
            # Nothing may have been consumed: resolvable partitions stay at their start.
            self.sync_positions(cm)
            for tp, s in start.items():
                if s is not None:
                    assert cm.pos[tp] == s, f"{tp}: position moved to {cm.pos[tp]} by a failed poll"
            return 0
        assert len(records) <= (max_records or 500)
        if any(r.offset >= self.end(TP(r.topic, r.partition)) for r in records):
            self.absorb(force=True)  # the linger thread wrote records not yet absorbed
        got: dict[TP, list[int]] = {}
        for r in records:
            tp = TP(r.topic, r.partition)
            assert tp in start, f"record of {tp}, which is not polled"
            got.setdefault(tp, []).append(r.offset)
            self.check_record(r)
        for tp, offsets in got.items():
            assert offsets == list(range(start[tp], start[tp] + len(offsets))), (tp, start[tp], offsets)
        for tp in active:
            cm.pos[tp] = start[tp] + len(got.get(tp, []))
            cm.ready[tp] = True
        self.sync_positions(cm)
        return len(records)

    @precondition(lambda self: self.consumers)
    @rule(i=picks, max_records=st.none() | st.integers(1, 7))
    def poll(self, i: int, max_records: int | None) -> None:
        self._poll(self.pick_consumer(i), max_records)

    @precondition(lambda self: self.consumers)
    @rule(i=picks, max_records=st.none() | st.integers(1, 7))
    def poll_more(self, i: int, max_records: int | None) -> None:
        self._poll(self.pick_consumer(i), max_records)

    @precondition(lambda self: self.consumers)
    @rule(i=picks, max_records=st.none() | st.integers(1, 50))
    def drain(self, i: int, max_records: int | None) -> None:
        """After a flush, polling until empty reaches the end of every active partition."""
        cm = self.pick_consumer(i)
        self.absorb(force=True)
        for _ in range(10_000):
            if not self._poll(cm, max_records):
                break
        active = [tp for tp in cm.tps if tp not in cm.paused]
        if all(self.resolve(cm, tp) is not None for tp in active):
            for tp in active:
                assert cm.pos[tp] == self.end(tp), (tp, cm.pos[tp], self.end(tp))

    @precondition(lambda self: any(cm.tps for cm in self.consumers))
    @rule(i=picks, tp_i=picks, offset=st.integers(0, 60), from_end=st.booleans())
    def seek(self, i: int, tp_i: int, offset: int, from_end: bool) -> None:
        cm = self.pick_consumer(i)
        if not cm.tps:
            return
        tp = cm.tps[tp_i % len(cm.tps)]
        if from_end:  # around the end: just inside, at it, just past it
            offset = max(0, self.end(tp) + offset % 5 - 2)
        cm.consumer.seek(tp, offset)
        cm.pos[tp], cm.ready[tp] = offset, False

    @precondition(lambda self: self.consumers)
    @rule(i=picks, which=st.lists(picks, max_size=3), to_end=st.booleans())
    def seek_to(self, i: int, which: list[int], to_end: bool) -> None:
        """seek_to_beginning / seek_to_end of some (or, with none given, all) partitions."""
        cm = self.pick_consumer(i)
        if not cm.tps:
            which = []
        tps = sorted({cm.tps[w % len(cm.tps)] for w in which})
        if to_end:
            self.absorb(force=True)
            cm.consumer.seek_to_end(*tps)
        else:
            cm.consumer.seek_to_beginning(*tps)
        for tp in tps or cm.tps:
            cm.pos[tp], cm.ready[tp] = (self.end(tp) if to_end else 0), False

    @precondition(lambda self: any(cm.tps for cm in self.consumers))
    @rule(i=picks, which=st.lists(picks, min_size=1, max_size=3), pause=st.booleans())
    def pause_resume(self, i: int, which: list[int], pause: bool) -> None:
        cm = self.pick_consumer(i)
        if not cm.tps:
            return
        tps = sorted({cm.tps[w % len(cm.tps)] for w in which})
        if pause:
            cm.consumer.pause(*tps)
            cm.paused.update(tps)
        else:
            cm.consumer.resume(*tps)
            cm.paused.difference_update(tps)
        assert cm.consumer.paused() == cm.paused

    @precondition(lambda self: self.consumers)
    @rule(i=picks)
    def position(self, i: int) -> None:
        cm = self.pick_consumer(i)
        if self.unresolved(cm):
            self.absorb(force=True)
        self.sync_positions(cm)

    @precondition(lambda self: self.consumers)
    @rule(i=picks, explicit=st.none() | st.lists(st.tuples(picks, st.integers(0, 80)), max_size=3))
    def commit(self, i: int, explicit: list[tuple[int, int]] | None) -> None:
        cm = self.pick_consumer(i)
        c = cm.consumer
        if explicit is None:
            offsets = {tp: p for tp, p in cm.pos.items() if p is not None}
        else:
            # a group member may commit only what it owns; a manual assignment anything
            pool = cm.tps if cm.mode == "subscribe" else self.all_tps()
            if not pool:
                return
            offsets = {pool[t % len(pool)]: o for t, o in explicit}
        if cm.group is None:
            with pytest.raises(minikafka.InvalidArgumentError):
                c.commit(None if explicit is None else offsets)
            return
        if cm.mode != "subscribe" and offsets and any(
                other.group == cm.group and other.mode == "subscribe" for other in self.consumers):
            # from outside a group whose member runs: refused, as Kafka's coordinator does
            with pytest.raises(minikafka.CommitFailedError):
                c.commit(None if explicit is None else offsets)
            return
        c.commit(None if explicit is None else offsets)
        self.committed[cm.group].update(offsets)

    @precondition(lambda self: self.consumers)
    @rule(i=picks, tp_i=picks)
    def committed_offset(self, i: int, tp_i: int) -> None:
        cm = self.pick_consumer(i)
        tp = self.all_tps()[tp_i % len(self.all_tps())]
        expect = None if cm.group is None else self.committed[cm.group].get(tp)
        assert cm.consumer.committed(tp) == expect

    # -- offset lookups ---------------------------------------------------------

    @rule(i=picks, flush=st.booleans())
    def offsets(self, i: int, flush: bool) -> None:
        """end/beginning offsets via Topic and Consumer: exact after a flush,
        at least the model's before (unabsorbed records may be written)."""
        if flush:
            self.absorb(force=True)
        tps = self.all_tps()
        ends = {tp: self.end(tp) for tp in tps}
        c = self.pick_consumer(i).consumer if self.consumers else None
        got = c.end_offsets(tps) if c is not None else {
            TP(t, p): o for t in self.topics for p, o in self.broker.topic(t).end_offsets().items()}
        assert set(got) == set(tps)
        for tp in tps:
            assert got[tp] == ends[tp] if flush else got[tp] >= ends[tp], (tp, got[tp], ends[tp])
        begins = {TP(t, p): b for t in self.topics
                  for p, b in self.broker.topic(t).beginning_offsets().items()}
        if c is not None:
            assert c.beginning_offsets(tps) == begins
        for tp in tps:  # retention may have acted since the last flush
            assert begins[tp] == self.begin[tp] if flush or tp.topic not in self.retention \
                else begins[tp] >= self.begin[tp], (tp, begins[tp], self.begin[tp])

    @precondition(lambda self: self.consumers)
    @rule(i=picks, tp_i=picks, ts=timestamps, near=st.none() | st.tuples(picks, st.integers(-1, 1)))
    def offsets_for_times(self, i: int, tp_i: int, ts: int | None, near: tuple[int, int] | None) -> None:
        self.absorb(force=True)
        tps = self.all_tps()
        tp = tps[tp_i % len(tps)]
        log = self.log[tp]
        if near is not None and log:  # at, just before or just after a stored timestamp
            ts = log[near[0] % len(log)].timestamp + near[1]
        if ts is None:
            ts = 0
        ts = max(INT64_MIN, min(INT64_MAX, ts))
        if ts < 0:  # Kafka's -1 / -2 mean latest / earliest: refused on every backend
            with pytest.raises(minikafka.InvalidArgumentError):
                self.pick_consumer(i).consumer.offsets_for_times({tp: ts})
            return
        expect = next((o for o in range(self.begin[tp], len(log)) if log[o].timestamp >= ts), None)
        assert self.pick_consumer(i).consumer.offsets_for_times({tp: ts}) == {tp: expect}, (tp, ts)

    @rule(group_i=picks)
    def lag(self, group_i: int) -> None:
        group = sorted(self.committed)[group_i % len(self.committed)]
        self.absorb(force=True)
        expect = {tp: max(0, self.end(tp) - o) for tp, o in self.committed[group].items()}
        assert self.broker.lag(group) == expect
        assert self.broker.committed_offsets(group) == self.committed[group]

    # -- persistence ------------------------------------------------------------

    @rule(read_back=st.booleans())
    def reopen(self, read_back: bool) -> None:
        """Close everything, open a new Broker on the directory: all persisted.
        The consumers come back (fresh: positions from committed offsets)."""
        old = self.consumers
        for cm in old:
            cm.consumer.close()
        self.consumers = []
        self.producer.close()
        self.absorb(force=True, flush=False)
        self.broker.close()
        with pytest.raises(minikafka.ClosedError):
            self.broker.list_topics()
        self.broker = minikafka.Broker(self.dir)
        self.producer = minikafka.Producer(self.broker)
        assert self.broker.list_topics() == sorted(self.topics)
        for name, n in self.topics.items():
            topic = self.broker.topic(name)
            assert topic.partitions == n
            assert topic.end_offsets() == {p: self.end(TP(name, p)) for p in range(n)}
        self.observe_retention()  # opening a broker applies retention
        for group, offsets in self.committed.items():
            assert self.broker.committed_offsets(group) == offsets
        if read_back:
            self.check_everything()
        for cm in old:
            self.open_consumer(cm.group, cm.mode, cm.reset, cm.tps)

    def check_everything(self) -> None:
        """Read every partition from 0 with a fresh consumer."""
        tps = self.all_tps()
        with minikafka.Consumer(self.broker, auto_offset_reset="none") as c:
            c.assign(tps)
            c.seek_to_beginning()
            seen = {tp: self.begin[tp] for tp in tps}
            while batch := c.poll(timeout=0, max_records=1000):
                for r in batch:
                    tp = TP(r.topic, r.partition)
                    assert r.offset == seen[tp], (tp, r.offset, seen[tp])
                    seen[tp] += 1
                    self.check_record(r)
            assert seen == {tp: self.end(tp) for tp in tps}

    @invariant()
    def model_not_ahead(self) -> None:
        """Nothing absorbed into the model is missing from the log."""
        for name, n in self.topics.items():
            ends = self.broker.topic(name).end_offsets()
            for p in range(n):
                assert ends[p] >= self.end(TP(name, p))


LogMachine.TestCase.settings = settings(  # max_examples: from the profile (conftest.py)
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
test_model = LogMachine.TestCase


def test_failed_poll_consumes_nothing(tmp_path: Any) -> None:
    """The smallest case the machine finds: poll raising NoOffsetError for one
    partition must not have read (and so lost) the records of another."""
    with minikafka.Broker(tmp_path / "data") as broker:
        broker.create_topic("t", 2)
        with minikafka.Producer(broker) as p:
            for i in range(3):
                p.send("t", b"v%d" % i, partition=0)
        for max_records in (None, 1):
            with minikafka.Consumer(broker, auto_offset_reset="none") as c:
                c.assign([TP("t", 1), TP("t", 0)])  # t/0 is read first
                c.seek(TP("t", 0), 0)
                with pytest.raises(minikafka.NoOffsetError):
                    c.poll(max_records=max_records)
                assert c.position(TP("t", 0)) == 0
