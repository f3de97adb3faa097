"""asyncio consumer vs sync consumer: cross-process latency and idle CPU.

Run:  python -m benchmarks.aio_latency [--records N] [--repeat R] [--idle-seconds S]

Same method as benchmarks/latency.py (its stamps, child processes and
statistics): this process produces one record at a time with a send stamp;
the child consumes with ``Consumer.poll`` (sync) or ``await
AsyncConsumer.getmany`` (async) and times each record from its stamp. The
sync and async runs alternate (A/B interleaved), each figure is the median
of ``--repeat`` runs, and the ratio async/sync is printed per case. Idle CPU:
the child waits with no records for ``--idle-seconds``; CPU % is the child
process's user+system time over wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from typing import Any

from .common import child_main, child_result, cpu_seconds, percentile, start_child
from .latency import KEY, PAD, STAMP, TOPIC, _wait_ready


def _open(args: dict[str, Any]):
    from minikafka import Broker

    return Broker(args["dir"])


def _child_sync(args: dict[str, Any]) -> dict[str, Any]:
    from minikafka import Consumer

    b = _open(args)
    c = Consumer(b, TOPIC, auto_offset_reset="latest", enable_auto_commit=False)
    c.poll(0)
    now_ns, unpack = time.monotonic_ns, STAMP.unpack_from
    samples: list[int] = []
    count = 0
    print("READY", flush=True)
    limit = time.monotonic() + 10
    while count < args["expect"] and time.monotonic() < limit:
        records = c.poll(timeout=0.5)
        now = now_ns()
        for r in records:
            sent, warm = unpack(r.value)
            count += 1
            if not warm:
                samples.append(now - sent)
        if records:
            limit = time.monotonic() + 10
    c.close()
    b.close()
    return {"count": count, "samples": samples}


def _child_async(args: dict[str, Any]) -> dict[str, Any]:
    from minikafka import AsyncConsumer

    async def main() -> dict[str, Any]:
        b = _open(args)
        c = AsyncConsumer(b, TOPIC, auto_offset_reset="latest", enable_auto_commit=False)
        await c.poll(0)
        now_ns, unpack = time.monotonic_ns, STAMP.unpack_from
        samples: list[int] = []
        count = 0
        print("READY", flush=True)
        limit = time.monotonic() + 10
        while count < args["expect"] and time.monotonic() < limit:
            batches = await c.getmany(timeout_ms=500)
            now = now_ns()
            for records in batches.values():
                for r in records:
                    sent, warm = unpack(r.value)
                    count += 1
                    if not warm:
                        samples.append(now - sent)
            if batches:
                limit = time.monotonic() + 10
        await c.close()
        b.close()
        return {"count": count, "samples": samples}

    return asyncio.run(main())


def _child_idle(args: dict[str, Any]) -> dict[str, Any]:
    from minikafka import AsyncConsumer, Consumer

    b = _open(args)
    seconds = args["seconds"]
    if args["kind"] == "sync":
        c = Consumer(b, TOPIC, group_id=args.get("group"), enable_auto_commit=False)
        c.poll(0)
        cpu0, t0 = cpu_seconds(), time.monotonic()
        while time.monotonic() - t0 < seconds:
            c.poll(timeout=min(0.5, max(0.0, seconds - (time.monotonic() - t0))))
        cpu, wall = cpu_seconds() - cpu0, time.monotonic() - t0
        c.close()
    else:
        async def main() -> tuple[float, float]:
            c = AsyncConsumer(b, TOPIC, group_id=args.get("group"), enable_auto_commit=False)
            await c.poll(0)
            cpu0, t0 = cpu_seconds(), time.monotonic()
            while time.monotonic() - t0 < seconds:
                await c.poll(timeout=min(0.5, max(0.0, seconds - (time.monotonic() - t0))))
            result = cpu_seconds() - cpu0, time.monotonic() - t0
            await c.close()
            return result

        cpu, wall = asyncio.run(main())
    b.close()
    return {"cpu_pct": 100.0 * cpu / wall}


def _latency(kind: str, n: int, interval: float) -> dict[str, float]:
    from minikafka import Broker, Producer

    warm = max(5, min(100, n // 20))
    total = warm + n
    with tempfile.TemporaryDirectory(prefix="aio-lat-") as d:
        b = Broker(d)
        b.create_topic(TOPIC)
        p = Producer(b, linger_ms=0)
        proc = start_child("aio_latency", {"mode": kind, "dir": d, "expect": total})
        try:
            _wait_ready(proc)
            time.sleep(0.2)
            pack, now_ns, sleep = STAMP.pack, time.monotonic_ns, time.sleep
            for i in range(total):
                p.send(TOPIC, pack(now_ns(), i < warm) + PAD, KEY)
                sleep(interval)
        finally:
            p.close()
            b.close()
        res = child_result(proc, timeout=60 + total * interval * 3)
    if res["count"] < total:
        raise RuntimeError(f"{kind}: consumer got {res['count']} of {total} records")
    samples = sorted(res["samples"])
    return {"p50": percentile(samples, 0.5) / 1000, "p99": percentile(samples, 0.99) / 1000}


def _idle(kind: str, seconds: float, group: str | None) -> float:
    from minikafka import Broker

    with tempfile.TemporaryDirectory(prefix="aio-idle-") as d:
        with Broker(d) as b:
            b.create_topic(TOPIC)
        args = {"mode": "idle", "kind": kind, "dir": d, "seconds": seconds, "group": group}
        return float(child_result(start_child("aio_latency", args), timeout=60 + seconds)["cpu_pct"])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--records", type=int, default=5000)
    ap.add_argument("--idle-records", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--idle-seconds", type=float, default=3.0)
    a = ap.parse_args(argv)
    results: dict[str, dict[str, list[float]]] = {}
    for name, kind_pair in (("active", (a.records, 0.0002)), ("idle", (a.idle_records, 0.015))):
        for _ in range(a.repeat):
            for kind in ("sync", "async"):  # interleaved A/B
                r = _latency(kind, *kind_pair)
                for q in ("p50", "p99"):
                    results.setdefault(f"{name} {q}", {}).setdefault(kind, []).append(r[q])
    for group in (None, "g"):
        for _ in range(a.repeat):
            for kind in ("sync", "async"):
                label = "idle CPU %" + (", with group_id" if group else ", no group")
                results.setdefault(label, {}).setdefault(kind, []).append(_idle(kind, a.idle_seconds, group))
    print(f"{'case':40} {'sync':>10} {'async':>10} {'async/sync':>11}")
    for label, by_kind in results.items():
        s, x = statistics.median(by_kind["sync"]), statistics.median(by_kind["async"])
        unit = "" if "CPU" in label else " µs"
        print(f"{label:40} {s:>8.1f}{unit:3} {x:>8.1f}{unit:3} {x / s if s else float('nan'):>9.2f}x")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("{"):
        sys.exit(child_main({"sync": _child_sync, "async": _child_async, "idle": _child_idle}))
    main()
