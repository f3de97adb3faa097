"""Crash soak: child processes write, commit, roll, run retention, create and
delete topics, and are killed with SIGKILL at random instants; after every
kill the directory is reopened and checked.

Run from the repository root::

    python -m tests.crash --rounds 1000 [--seed S] [--dir D] [--keep]

It prints one summary line (rounds, records checked, lost, corrupt
returned, ...) and exits 1 if anything was lost, corrupt or failed.
tests/test_faults_crash.py runs a few dozen rounds in the suite.

Children report every acknowledged record (a future that resolved) and
every commit through append-only side files, one ``os.write`` per line on
an ``O_APPEND`` descriptor, so a line is whole or absent after SIGKILL.
Records are generated from ``(seed, i)`` and carry ``("id", b"seed:i")``
as their first header, so the checker regenerates what was sent and
compares it byte for byte: a record whose id it cannot regenerate exactly
was never sent (corrupt returned).

Checked after every kill:
- every acknowledged record is present at its offset and byte-identical
  (unless retention deleted its segment: offsets below the beginning);
- offsets are dense from the beginning to the end of every partition, and
  no record appears twice;
- every committed offset is one of the values a child tried to commit;
- producing and consuming go on (a fresh producer appends at the end
  offset of every partition and the record reads back).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import minikafka  # noqa: E402
from minikafka import Broker, Consumer, Producer, TopicPartition  # noqa: E402

MiB = 1 << 20
# "t": large segments, records up to ~1 MiB, no retention.
# "r": small segments and size retention: rolls and retention all the time.
TOPICS: dict[str, dict[str, Any]] = {
    "t": {"partitions": 3, "segment_bytes": 3 * MiB},
    "r": {"partitions": 2, "segment_bytes": 64 * 1024, "retention_bytes": 192 * 1024},
}
MODES = ("produce", "two_writers", "commit", "roll_retention", "topics", "mixed")
MAX_VALUE = MiB - 4096  # below max_record_bytes (1 MiB) with key and headers


# -- deterministic records ------------------------------------------------------

def record(seed: int, i: int, topic: str) -> dict[str, Any]:
    """The keyword arguments of send number ``i`` of child ``seed``."""
    rng = random.Random(seed * 1_000_003 + i)
    roll = rng.random()
    limit = MAX_VALUE if topic == "t" else 20_000
    if roll < 0.70:
        size = rng.randrange(0, 100)
    elif roll < 0.95:
        size = rng.randrange(100, 10_000)
    elif roll < 0.995:
        size = rng.randrange(10_000, 100_000)
    else:
        size = rng.randrange(100_000, MAX_VALUE)
    size = min(size, limit)
    value = None if rng.random() < 0.1 else rng.randbytes(size)
    key = None if rng.random() < 0.2 else rng.randbytes(rng.randrange(0, 40))
    headers = [("id", b"%d:%d" % (seed, i))]
    headers += [(f"h{n}", rng.randbytes(rng.randrange(0, 30))) for n in range(rng.randrange(0, 3))]
    out: dict[str, Any] = {"value": value, "key": key, "headers": headers}
    if rng.random() < 0.5:
        out["timestamp_ms"] = rng.randrange(1_600_000_000_000, 1_900_000_000_000)
    return out


def record_id(r: minikafka.Record) -> tuple[int, int] | None:
    if not r.headers or r.headers[0][0] != "id":
        return None
    try:
        seed, i = r.headers[0][1].split(b":")
        return int(seed), int(i)
    except ValueError:
        return None


def same(r: minikafka.Record, sent: dict[str, Any]) -> bool:
    headers = tuple((n, bytes(v)) for n, v in sent["headers"])
    if (r.key, r.value, r.headers) != (sent["key"], sent["value"], headers):
        return False
    return "timestamp_ms" not in sent or r.timestamp == sent["timestamp_ms"]


# -- side channel ---------------------------------------------------------------

class Journal:
    """Append-only lines that survive SIGKILL whole or not at all."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, *fields: Any) -> None:
        os.write(self.fd, (json.dumps(fields) + "\n").encode())


def read_journal(path: Path) -> list[list[Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # cannot happen with one write per line; tolerated anyway
    return out


# -- children ---------------------------------------------------------------------

def child(mode: str, data: str, journal_path: str, seed: int) -> None:
    journal = Journal(journal_path)
    rng = random.Random(seed)
    broker = Broker(data)
    print("go", flush=True)
    i = 0

    def produce(topic: str, n: int, producer: Producer) -> None:
        nonlocal i
        parts = TOPICS[topic]["partitions"]
        futures = []
        for _ in range(n):
            kw = record(seed, i, topic)
            futures.append((i, producer.send(topic, partition=rng.randrange(parts), **kw)))
            i += 1
        if rng.random() < 0.5:
            producer.flush()
        for n_, fut in futures:
            meta = fut.result()
            journal.write("ack", seed, n_, meta.topic, meta.partition, meta.offset)

    if mode in ("produce", "two_writers", "roll_retention", "mixed"):
        producer = Producer(broker, linger_ms=rng.choice([0, 1, 5]))
        topic = "r" if mode == "roll_retention" else None
        while True:
            produce(topic or rng.choice(["t", "r"]), rng.randrange(1, 20), producer)
            if mode == "mixed" and rng.random() < 0.3:
                commit_once(broker, journal, rng, seed)
            if mode == "mixed" and rng.random() < 0.05:
                broker.topic("r").apply_retention()
    elif mode == "commit":
        while True:
            commit_once(broker, journal, rng, seed)
    elif mode == "topics":
        producer = Producer(broker, linger_ms=0)
        k = 0
        while True:
            name = f"x{seed % 7}-{k % 3}"
            k += 1
            try:
                broker.create_topic(name, partitions=rng.randrange(1, 4), segment_bytes=8192)
            except minikafka.TopicExistsError:
                pass
            try:
                producer.send(name, b"v" * rng.randrange(0, 3000)).result()
            except minikafka.TopicNotFoundError:
                pass
            if rng.random() < 0.7:
                try:
                    broker.delete_topic(name)
                except minikafka.TopicNotFoundError:
                    pass


_commit_counter = [0]


def commit_once(broker: Broker, journal: Journal, rng: random.Random, seed: int) -> None:
    tps = [TopicPartition(t, p) for t, cfg in TOPICS.items() for p in range(cfg["partitions"])]
    chosen = rng.sample(tps, rng.randrange(1, len(tps) + 1))
    _commit_counter[0] += 1
    # Strictly increasing per child, so every value is distinct and tells
    # which commit it came from.
    value = seed * 100_000 + _commit_counter[0]
    offsets = dict.fromkeys(chosen, value)
    for tp in chosen:
        journal.write("try", seed, tp.topic, tp.partition, value)
    consumer = getattr(broker, "_crash_consumer", None)
    if consumer is None:
        consumer = Consumer(broker, group_id="g", enable_auto_commit=False)
        consumer.assign(tps)
        broker._crash_consumer = consumer  # type: ignore[attr-defined]
    consumer.commit(offsets)
    journal.write("done", seed, value)


# -- the checker ----------------------------------------------------------------------

class Tally:
    def __init__(self) -> None:
        self.rounds = 0
        self.records = 0
        self.lost = 0
        self.corrupt = 0
        self.commits = 0
        self.errors: list[str] = []

    def summary(self, elapsed: float) -> str:
        return (f"crash soak: rounds={self.rounds} records_checked={self.records} lost={self.lost} "
                f"corrupt_returned={self.corrupt} commits_checked={self.commits} "
                f"errors={len(self.errors)} elapsed={elapsed:.1f}s")


def read_partition(b: Broker, tp: TopicPartition,
                   timeout: float = 20.0) -> tuple[int, list[minikafka.Record]]:
    with Consumer(b, auto_offset_reset="earliest") as c:
        c.assign([tp])
        c.seek_to_beginning(tp)
        begin = c.position(tp)
        end = c.end_offsets([tp])[tp]
        out: list[minikafka.Record] = []
        deadline = time.monotonic() + timeout
        while c.position(tp) < end:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{tp}: reading stalled at {c.position(tp)} of {end}")
            out.extend(c.poll(timeout=0.05))
        return begin, out


def check(data: Path, journal: Path, tally: Tally) -> None:
    entries = read_journal(journal)
    acked: dict[TopicPartition, dict[int, tuple[int, int]]] = {}
    tried: dict[TopicPartition, set[int]] = {}
    for e in entries:
        if e[0] == "ack":
            _, seed, i, topic, partition, offset = e
            acked.setdefault(TopicPartition(topic, partition), {})[offset] = (seed, i)
        elif e[0] == "try":
            _, _seed, topic, partition, value = e
            tried.setdefault(TopicPartition(topic, partition), set()).add(value)
    with Broker(data) as b:
        for topic in b.list_topics():  # every topic left opens and reads
            tobj = b.topic(topic)
            for p in range(tobj.partitions):
                tp = TopicPartition(topic, p)
                begin, records = read_partition(b, tp)
                if topic not in TOPICS:
                    continue
                expect = begin
                seen: set[tuple[int, int]] = set()
                by_offset = {}
                for r in records:
                    if r.offset != expect:
                        tally.errors.append(f"{tp}: offset {r.offset} where {expect} was due (not dense)")
                        expect = r.offset
                    expect += 1
                    rid = record_id(r)
                    if rid is None or rid in seen or not same(r, record(rid[0], rid[1], topic)):
                        tally.corrupt += 1
                        tally.errors.append(f"{tp}@{r.offset}: a record that was not sent ({rid})")
                        continue
                    seen.add(rid)
                    by_offset[r.offset] = rid
                for offset, rid in acked.get(tp, {}).items():
                    if offset < begin:
                        continue  # deleted by retention
                    tally.records += 1
                    if by_offset.get(offset) != rid:
                        tally.lost += 1
                        tally.errors.append(f"{tp}@{offset}: acknowledged record {rid} lost "
                                            f"(found {by_offset.get(offset)})")
        committed = b.committed_offsets("g") if "g" in b.list_groups() else {}
        for tp, value in committed.items():
            tally.commits += 1
            if value not in tried.get(tp, set()):
                tally.errors.append(f"committed offset {tp}={value} was never committed")
        # Producing and consuming go on.
        with Producer(b, linger_ms=0) as p:
            journal_out = Journal(str(journal))
            for topic, cfg in TOPICS.items():
                for part in range(cfg["partitions"]):
                    tp = TopicPartition(topic, part)
                    end = b.topic(topic).end_offsets()[part]
                    i = tally.rounds * 100 + part
                    meta = p.send(topic, partition=part, **record(0, i, topic)).result(10)
                    journal_out.write("ack", 0, i, topic, part, meta.offset)
                    if meta.offset != end:
                        tally.errors.append(f"{tp}: next record got offset {meta.offset}, end was {end}")
            os.close(journal_out.fd)


def setup(data: Path) -> None:
    with Broker(data) as b:
        for name, cfg in TOPICS.items():
            b.create_topic(name, **cfg)


def run_round(data: Path, journal: Path, rng: random.Random, round_no: int, tally: Tally,
              max_delay: float) -> None:
    mode = rng.choice(MODES)
    writers = 2 if mode == "two_writers" else 1
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    children = []
    for w in range(writers):
        seed = round_no * 10 + w + 1
        children.append(subprocess.Popen(
            [sys.executable, "-m", "tests.crash", "--child", mode, str(data), str(journal), str(seed)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for c in children:
        assert c.stdout is not None
        if c.stdout.readline().strip() != "go":
            c.wait()
            err = c.stderr.read() if c.stderr else ""
            tally.errors.append(f"round {round_no}: child failed to start: {err}")
    time.sleep(rng.uniform(0.0, max_delay))
    for c in children:
        os.kill(c.pid, signal.SIGKILL)
    for c in children:
        _, err = c.communicate()
        if c.returncode != -signal.SIGKILL:
            tally.errors.append(f"round {round_no} ({mode}): child ended by itself "
                                f"(status {c.returncode}): {err.strip()[-500:]}")
    tally.rounds += 1
    try:
        check(data, journal, tally)
    except Exception as e:
        tally.errors.append(f"round {round_no} ({mode}): check failed: {type(e).__name__}: {e}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.crash", description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--dir", default=None, help="work directory (default: a temporary one)")
    ap.add_argument("--fresh-every", type=int, default=25, help="start a new data directory every N rounds")
    ap.add_argument("--max-delay", type=float, default=0.4, help="longest run before the kill (s)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--child", nargs=4, metavar=("MODE", "DATA", "JOURNAL", "SEED"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        mode, data, journal, seed = args.child
        child(mode, data, journal, int(seed))
        return 0
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    work = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="minikafka-crash-"))
    work.mkdir(parents=True, exist_ok=True)
    tally = Tally()
    started = time.monotonic()
    try:
        generation = -1
        for n in range(args.rounds):
            if n // args.fresh_every != generation:
                generation = n // args.fresh_every
                data, journal = work / f"data{generation}", work / f"journal{generation}.jsonl"
                shutil.rmtree(data, ignore_errors=True)
                journal.unlink(missing_ok=True)
                setup(data)
                if generation > 0 and not args.keep:
                    shutil.rmtree(work / f"data{generation - 1}", ignore_errors=True)
            run_round(data, journal, rng, n, tally, args.max_delay)
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(work, ignore_errors=True)
    for e in tally.errors[:20]:
        print("  " + e, file=sys.stderr)
    print(tally.summary(time.monotonic() - started) + f" seed={seed}")
    return 1 if tally.lost or tally.corrupt or tally.errors else 0


if __name__ == "__main__":
    sys.exit(main())
