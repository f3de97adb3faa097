"""Peers measured in the same run, each used the way its docs show.

- sqlite3 (stdlib), WAL: a table ``log(offset INTEGER PRIMARY KEY, ts,
  key, value)``, ``journal_mode=WAL``, ``synchronous=NORMAL``; produce =
  ``executemany`` of 1,000 rows per transaction; consume = ordered reads by
  primary key, 1,000 rows per query (``WHERE offset > ? ORDER BY offset``).
- diskcache.Deque: ``append(value)`` / ``popleft()`` (one transaction each).
- persist-queue: ``persistqueue.SQLiteQueue(path, auto_commit=True)``,
  ``put`` / ``get``.
- litequeue: ``LiteQueue(path)``, ``put(str)`` / ``pop()`` + ``done(id)``.
- confluent-kafka -> Tansu on 127.0.0.1 (see tansu.py): ``produce`` per
  record (``poll`` on BufferError) + ``flush``; consume = ``assign`` from
  the beginning and ``consume(500, 1.0)`` until every record arrived, timed
  from creating the Consumer (this one is compared); also ``subscribe`` in a
  group, timed including the group join (reported, not compared).

Queues store one blob per record: key + value (116 bytes), since they
have no key field. A peer that is not installed is reported and skipped.
"""

from __future__ import annotations

import importlib.util
import os
import sqlite3
import time
import uuid
from collections.abc import Callable

from .common import Config, Row, median_of, scratch_dir

SLOW_NOTE = "fewer records (slow peer)"
LITEQUEUE_RECORDS = 5_000  # its pop() slows as done rows pile up: 20k takes minutes


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _rows(label: str, n: int, produce: float, consume: float, note: str = "",
          consume_note: str = "") -> list[Row]:
    return [
        Row("peers", f"{label} produce", n, rate=produce, note=note, extra={"vs": "mk_send"}),
        Row("peers", f"{label} consume", n, rate=consume, note=consume_note or note,
            extra={"vs": "mk_poll"}),
    ]


# -- sqlite3 ------------------------------------------------------------------

def sqlite_wal(cfg: Config, keys: list[bytes], values: list[bytes]) -> list[Row]:
    n = len(values)
    ts = time.time_ns() // 1_000_000

    def once() -> dict[str, float]:
        with scratch_dir(cfg.tmp, "sqlite-") as d:
            db = sqlite3.connect(os.path.join(d, "log.db"))
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("CREATE TABLE log (offset INTEGER PRIMARY KEY, ts INTEGER, key BLOB, value BLOB)")
            db.commit()
            t0 = time.perf_counter()
            for i in range(0, n, 1000):
                with db:  # one transaction per 1,000 rows
                    db.executemany("INSERT INTO log (offset, ts, key, value) VALUES (?, ?, ?, ?)",
                                   [(j, ts, keys[j], values[j]) for j in range(i, min(n, i + 1000))])
            t_produce = time.perf_counter() - t0
            db.close()
            db = sqlite3.connect(os.path.join(d, "log.db"))
            t0 = time.perf_counter()
            got, last = 0, -1
            query = "SELECT offset, ts, key, value FROM log WHERE offset > ? ORDER BY offset LIMIT 1000"
            while True:
                rows = db.execute(query, (last,)).fetchall()
                if not rows:
                    break
                got += len(rows)
                last = rows[-1][0]
            t_consume = time.perf_counter() - t0
            db.close()
            if got != n:
                raise RuntimeError(f"sqlite read {got} of {n} rows")
        return {"produce": n / t_produce, "consume": n / t_consume}

    r = median_of(cfg.repeat, once)
    return _rows("sqlite3 WAL table", n, r["produce"], r["consume"],
                 note="executemany 1,000/txn", consume_note="reads by primary key, 1,000/query")


# -- queues ------------------------------------------------------------------

def _queue_bench(cfg: Config, blobs: list, make: Callable[[str], tuple], prefix: str) -> dict[str, float]:
    """make(dir) -> (put, get, close); get() returns an item or None when empty."""
    n = len(blobs)

    def once() -> dict[str, float]:
        with scratch_dir(cfg.tmp, prefix) as d:
            put, get, close = make(d)
            t0 = time.perf_counter()
            for b in blobs:
                put(b)
            t_produce = time.perf_counter() - t0
            t0 = time.perf_counter()
            got = 0
            while got < n:
                if get() is None:
                    break
                got += 1
            t_consume = time.perf_counter() - t0
            close()
            if got != n:
                raise RuntimeError(f"{prefix}: read {got} of {n} items")
        return {"produce": n / t_produce, "consume": n / t_consume}

    return median_of(cfg.repeat, once)


def diskcache_deque(cfg: Config, blobs: list[bytes]) -> list[Row]:
    import diskcache

    def make(d: str) -> tuple:
        dq = diskcache.Deque(directory=d)

        def get() -> bytes | None:
            try:
                return dq.popleft()
            except IndexError:
                return None

        return dq.append, get, dq.cache.close

    r = _queue_bench(cfg, blobs, make, "diskcache-")
    return _rows("diskcache.Deque", len(blobs), r["produce"], r["consume"],
                 note=f"append/popleft; {SLOW_NOTE}")


def persist_queue(cfg: Config, blobs: list[bytes]) -> list[Row]:
    import persistqueue

    def make(d: str) -> tuple:
        q = persistqueue.SQLiteQueue(os.path.join(d, "q"), auto_commit=True)

        def get() -> bytes | None:
            try:
                return q.get(block=False)
            except persistqueue.Empty:
                return None

        return q.put, get, lambda: None

    r = _queue_bench(cfg, blobs, make, "persistqueue-")
    return _rows("persist-queue SQLiteQueue", len(blobs), r["produce"], r["consume"],
                 note=f"put/get, auto_commit; {SLOW_NOTE}")


def litequeue(cfg: Config, blobs: list[bytes]) -> list[Row]:
    from litequeue import LiteQueue

    texts = [b.decode("latin-1") for b in blobs]  # litequeue stores TEXT

    def make(d: str) -> tuple:
        q = LiteQueue(os.path.join(d, "queue.db"))

        def get() -> object | None:
            msg = q.pop()
            if msg is None:
                return None
            q.done(msg.message_id)
            return msg

        return q.put, get, q.close

    r = _queue_bench(cfg, texts, make, "litequeue-")
    return _rows("litequeue", len(blobs), r["produce"], r["consume"], note=f"put; {SLOW_NOTE}",
                 consume_note="pop+done; slows as the queue grows (done rows stay)")


# -- confluent-kafka -> Tansu -------------------------------------------------------

def kafka(cfg: Config, bootstrap: str, keys: list[bytes], values: list[bytes]) -> list[Row]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

    from .tansu import create_topic

    n = len(values)

    def once() -> dict[str, float]:
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        create_topic(bootstrap, topic)
        p = Producer({"bootstrap.servers": bootstrap})
        produce, poll = p.produce, p.poll
        t0 = time.perf_counter()
        for k, v in zip(keys, values, strict=True):
            try:
                produce(topic, v, k)
            except BufferError:  # local queue full: serve delivery reports, retry
                poll(0.005)
                produce(topic, v, k)
        left = p.flush(60)
        t_produce = time.perf_counter() - t0
        if left:
            raise RuntimeError(f"confluent-kafka: {left} records not delivered")
        settings = {"bootstrap.servers": bootstrap, "auto.offset.reset": "earliest",
                    "session.timeout.ms": 6000, "fetch.queue.backoff.ms": 10}
        # 1) assign(): no group join; timed from creating the Consumer to the last record.
        t0 = time.perf_counter()
        c = Consumer({**settings, "group.id": f"a-{topic}", "enable.auto.commit": False})
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        got = _drain(c, n)
        t_assign = time.perf_counter() - t0
        c.close()
        # 2) subscribe() in a group, as the docs' consumer loop: the join is timed apart.
        t0 = time.perf_counter()
        c = Consumer({**settings, "group.id": f"g-{topic}"})
        c.subscribe([topic])
        first: list[float] = []
        got2 = _drain(c, n, first)
        t_end = time.perf_counter()
        c.close()
        if got != n or got2 != n:
            raise RuntimeError(f"confluent-kafka read {got} / {got2} of {n} records")
        return {"produce": n / t_produce, "consume": n / t_assign,
                "sub_consume": n / (t_end - t0), "join": first[0] - t0}

    r = median_of(cfg.repeat, once)
    rows = _rows("confluent-kafka->Tansu", n, r["produce"], r["consume"],
                 note="produce per record + flush", consume_note="assign(), consume(500)")
    rows.append(Row("peers", "confluent-kafka->Tansu consume, subscribe() in a group", n,
                    rate=r["sub_consume"],
                    note=f"incl. group join ({r['join']:.1f} s to 1st record); not compared"))
    return rows


def _drain(c, n: int, first: list[float] | None = None) -> int:
    """consume(500) until ``n`` records (or 60 s); ``first`` gets the time of the first."""
    got = 0
    deadline = time.monotonic() + 60
    while got < n and time.monotonic() < deadline:
        for m in c.consume(500, 1.0):
            if not m.error():
                got += 1
        if got and first is not None and not first:
            first.append(time.perf_counter())
    return got


PEERS = ("sqlite", "diskcache", "persist-queue", "litequeue", "kafka")
MODULES = {"sqlite": "sqlite3", "diskcache": "diskcache", "persist-queue": "persistqueue",
           "litequeue": "litequeue", "kafka": "confluent_kafka"}
LABELS = {"sqlite": "sqlite3 WAL table", "diskcache": "diskcache.Deque",
          "persist-queue": "persist-queue SQLiteQueue", "litequeue": "litequeue",
          "kafka": "confluent-kafka->Tansu"}


def not_installed(name: str, what: str = "not installed") -> Row:
    return Row("peers", LABELS[name], note=what, extra={"skipped": True})


def run(cfg: Config, only: set[str], keys: list[bytes], values: list[bytes]) -> list[Row]:
    rows: list[Row] = []
    slow = min(cfg.slow_records, len(values))
    blobs = [keys[i] + values[i] for i in range(slow)]
    for name in PEERS:
        if name not in only or name == "kafka":
            continue
        if not installed(MODULES[name]):
            cfg.log(f"  {name}: not installed, skipped")
            rows.append(not_installed(name))
            continue
        cfg.log(f"  peer: {name}")
        if name == "sqlite":
            rows += sqlite_wal(cfg, keys, values)
        elif name == "diskcache":
            rows += diskcache_deque(cfg, blobs)
        elif name == "persist-queue":
            rows += persist_queue(cfg, blobs)
        elif name == "litequeue":
            rows += litequeue(cfg, blobs[:LITEQUEUE_RECORDS])
    return rows
