"""End-to-end latency between two processes, and idle consumer CPU.

The consumer is a child process (``python -m benchmarks.latency ARGS``)
polling in a loop; this process produces one record at a time, each value
starting with the send time (``time.monotonic_ns()``, one clock for the
whole machine on Linux). The child takes the time when ``poll`` hands the
record over; latency = receive time - send time.

Cases:
- active: records ``latency_interval`` apart (0.2 ms), the consumer is
  always polling;
- idle wake-up: records ``idle_interval`` apart (15 ms), so the consumer
  has gone back to sleeping in ``poll`` when each one arrives;
- idle CPU: the consumer waits in ``poll`` for a few seconds with no
  records; CPU % = (user + system time of the whole child) / wall time.
"""

from __future__ import annotations

import struct
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from .common import (
    Config,
    Row,
    child_main,
    child_result,
    cpu_seconds,
    median_of,
    percentile,
    scratch_dir,
    start_child,
)

STAMP = struct.Struct("<qB")  # send time (ns), 1 = warm-up record
PAD = bytes(100 - STAMP.size)
KEY = b"k" * 16
TOPIC = "latency"
KAFKA_LATENCY_RECORDS = 2_000


def _stats(samples: list[int], warm: int, count: int) -> dict[str, Any]:
    samples.sort()
    return {
        "count": count, "warm": warm, "n": len(samples),
        "p50": percentile(samples, 0.50) / 1000, "p99": percentile(samples, 0.99) / 1000,
        "p999": percentile(samples, 0.999) / 1000,
    }


# -- child side ---------------------------------------------------------------

def _mk_consumer(args: dict[str, Any]):
    from minikafka import Broker, Consumer

    b = Broker(args["dir"])
    c = Consumer(b, TOPIC, auto_offset_reset="latest",
                 group_id=args.get("group"), enable_auto_commit=False)
    c.poll(0)  # resolve the position (the end) before the producer starts
    deadline = time.monotonic() + 10
    while not c.assignment() and time.monotonic() < deadline:
        c.poll(0.05)
    return b, c


def _collect(fetch: Callable[[float], list[bytes]], args: dict[str, Any]) -> dict[str, Any]:
    """Receive ``args["expect"]`` stamped values through ``fetch(timeout)``
    (any backend) and time each from its send stamp."""
    expect, samples, warm, count = args["expect"], [], 0, 0
    now_ns, unpack = time.monotonic_ns, STAMP.unpack_from
    print("READY", flush=True)
    idle_limit = time.monotonic() + args["idle_timeout"]
    while count < expect:
        values = fetch(0.5)
        now = now_ns()
        if not values:
            if time.monotonic() > idle_limit:
                break
            continue
        idle_limit = time.monotonic() + args["idle_timeout"]
        for value in values:
            sent, is_warm = unpack(value)
            count += 1
            if is_warm:
                warm += 1
            else:
                samples.append(now - sent)
    return _stats(samples, warm, count)


def _child_mk_latency(args: dict[str, Any]) -> dict[str, Any]:
    b, c = _mk_consumer(args)
    try:
        return _collect(lambda timeout: [r.value for r in c.poll(timeout=timeout)], args)
    finally:
        c.close()
        b.close()


def _kafka_consumer(args: dict[str, Any]):
    from confluent_kafka import OFFSET_END, Consumer, TopicPartition

    c = Consumer({
        "bootstrap.servers": args["bootstrap"], "group.id": f"lat-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False, "session.timeout.ms": 6000,
        "fetch.queue.backoff.ms": 10, "fetch.wait.max.ms": args.get("fetch_wait", 1),
    })
    c.assign([TopicPartition(args["topic"], 0, OFFSET_END)])
    t_end = time.monotonic() + 1.0  # let it resolve the end offset and start fetching
    while time.monotonic() < t_end:
        c.poll(0.1)
    return c


def _child_kafka_latency(args: dict[str, Any]) -> dict[str, Any]:
    c = _kafka_consumer(args)

    def fetch(timeout: float) -> list[bytes]:
        msg = c.poll(timeout)
        return [] if msg is None or msg.error() else [msg.value()]

    try:
        return _collect(fetch, args)
    finally:
        c.close()


def _child_idle(args: dict[str, Any]) -> dict[str, Any]:
    if args["backend"] == "kafka":
        c = _kafka_consumer(args)
        poll = c.poll
        b = None
    else:
        b, c = _mk_consumer(args)
        poll = c.poll
    seconds = args["seconds"]
    cpu0, t0 = cpu_seconds(), time.monotonic()
    got = 0
    while time.monotonic() - t0 < seconds:
        r = poll(min(0.5, max(0.0, seconds - (time.monotonic() - t0))))
        got += bool(r)
    cpu, wall = cpu_seconds() - cpu0, time.monotonic() - t0
    c.close()
    if b is not None:
        b.close()
    return {"cpu_pct": 100.0 * cpu / wall, "wall": wall, "got": got}


# -- parent side ----------------------------------------------------------------

def _wait_ready(proc) -> None:
    line = proc.stdout.readline()
    if line.strip() != "READY":
        proc.kill()
        raise RuntimeError(f"latency child did not start (said {line!r})")


def _measure(backend: str, cfg: Config, n: int, interval: float, bootstrap: str | None,
             fetch_wait: int = 1) -> dict[str, Any]:
    warm = max(5, min(100, n // 20))
    total = warm + n
    args: dict[str, Any] = {"expect": total, "idle_timeout": 5.0, "fetch_wait": fetch_wait}
    with scratch_dir(cfg.tmp, "latency-") as d:
        if backend == "minikafka":
            from minikafka import Broker, Producer

            b = Broker(d)
            b.create_topic(TOPIC)
            p = Producer(b, linger_ms=0)

            def send(value: bytes) -> None:
                p.send(TOPIC, value, KEY)

            def finish() -> None:
                p.close()
                b.close()

            proc = start_child("latency", {**args, "mode": "mk_latency", "dir": d})
        else:
            from confluent_kafka import Producer as KProducer

            from .tansu import create_topic

            assert bootstrap is not None
            topic = f"lat-{uuid.uuid4().hex[:8]}"
            create_topic(bootstrap, topic)
            kp = KProducer({"bootstrap.servers": bootstrap, "linger.ms": 0})

            def send(value: bytes) -> None:
                kp.produce(topic, value, KEY)
                kp.poll(0)

            def finish() -> None:
                kp.flush(10)

            proc = start_child("latency", {**args, "mode": "kafka_latency", "bootstrap": bootstrap,
                                           "topic": topic})
        try:
            _wait_ready(proc)
            pack, now_ns, sleep = STAMP.pack, time.monotonic_ns, time.sleep
            for i in range(total):
                send(pack(now_ns(), i < warm) + PAD)
                sleep(interval)
        finally:
            finish()
        res = child_result(proc, timeout=60 + total * interval * 3)
    if res["count"] < total:
        raise Stalled(f"{backend} latency: consumer got {res['count']} of {total} records")
    return res


class Stalled(RuntimeError):
    """The consumer stopped receiving before every record arrived."""


def _measure_kafka(cfg: Config, n: int, interval: float, bootstrap: str | None,
                   notes: list[str]) -> dict[str, Any]:
    """With fetch.wait.max.ms=1; if the consumer stalls (seen with Tansu 0.6.0:
    it stops receiving after ~2,000 records), once more with 10 ms, noted."""
    try:
        return _measure("kafka", cfg, n, interval, bootstrap, fetch_wait=1)
    except Stalled as e:
        cfg.log(f"    {e} with fetch.wait.max.ms=1: retrying with fetch.wait.max.ms=10")
        if "fetch.wait.max.ms=10" not in notes:
            notes.append("fetch.wait.max.ms=10")
        return _measure("kafka", cfg, n, interval, bootstrap, fetch_wait=10)


def _idle_cpu(backend: str, cfg: Config, bootstrap: str | None, group: str | None) -> float:
    with scratch_dir(cfg.tmp, "idle-") as d:
        args: dict[str, Any] = {"mode": "idle", "backend": backend, "seconds": cfg.idle_cpu_seconds,
                                "dir": d, "group": group}
        if backend == "minikafka":
            from minikafka import Broker

            with Broker(d) as b:
                b.create_topic(TOPIC)
        else:
            from .tansu import create_topic

            assert bootstrap is not None
            args["topic"] = f"idle-{uuid.uuid4().hex[:8]}"
            args["bootstrap"] = bootstrap
            create_topic(bootstrap, args["topic"])
        res = child_result(start_child("latency", args), timeout=60 + cfg.idle_cpu_seconds)
    return res["cpu_pct"]


def run(cfg: Config, backend: str = "minikafka", bootstrap: str | None = None) -> list[Row]:
    label = "minikafka" if backend == "minikafka" else "confluent-kafka->Tansu"
    section = "latency" if backend == "minikafka" else "peers"
    prefix = "" if backend == "minikafka" else "kafka_"
    rows = []
    notes: list[str] = []

    def measure(n: int, interval: float) -> dict[str, Any]:
        if backend == "kafka":
            return _measure_kafka(cfg, n, interval, bootstrap, notes)
        return _measure(backend, cfg, n, interval, bootstrap)

    cfg.log(f"  {label} latency: active consumer")
    # Tansu 0.6.0 (in memory) falls behind on long runs (fetches slow down as
    # the topic grows), which would measure queueing: fewer records there.
    n = cfg.latency_records if backend == "minikafka" else min(cfg.latency_records, KAFKA_LATENCY_RECORDS)
    act = median_of(cfg.repeat, lambda: measure(n, cfg.latency_interval))
    gap = f"{cfg.latency_interval * 1e3:g} ms apart"
    if notes:
        gap += "; stalled with fetch.wait.max.ms=1, so " + notes[0]
    for q in ("p50", "p99", "p999"):
        vs = None if backend == "minikafka" else f"lat_{q}"
        rows.append(Row(section, f"{label} latency {q}, 2 processes, active poll", n, us=act[q],
                        note=gap if q == "p50" else "",
                        extra={"key": f"{prefix}lat_{q}", **({"vs": vs} if vs else {})}))
    cfg.log(f"  {label} latency: idle wake-up")
    idle = median_of(cfg.repeat, lambda: measure(cfg.idle_records, cfg.idle_interval))
    gap = f"{cfg.idle_interval * 1e3:g} ms apart"
    for q in ("p50", "p99"):
        vs = None if backend == "minikafka" else f"idle_{q}"
        rows.append(Row(section, f"{label} idle wake-up latency {q}", cfg.idle_records, us=idle[q],
                        note=gap if q == "p50" else "",
                        extra={"key": f"{prefix}idle_{q}", **({"vs": vs} if vs else {})}))
    cfg.log(f"  {label} idle consumer CPU")
    groups = [None, "idle-group"] if backend == "minikafka" else [None]
    for group in groups:
        cpu = median_of(cfg.repeat, lambda g=group: {"cpu": _idle_cpu(backend, cfg, bootstrap, g)})["cpu"]
        what = "with group_id (heartbeat thread)" if group else "no group"
        if backend != "minikafka":
            what = "assign(), librdkafka threads"
        rows.append(Row(section, f"{label} idle consumer CPU, {what}", None, other=f"{cpu:.2f} % CPU",
                        note=f"{cfg.idle_cpu_seconds:g} s in poll, no records",
                        extra={"cpu_pct": cpu, "key": f"{prefix}idle_cpu{'_group' if group else ''}"}))
    return rows


if __name__ == "__main__":
    sys.exit(child_main({"mk_latency": _child_mk_latency, "kafka_latency": _child_kafka_latency,
                         "idle": _child_idle}))
