"""Scaling (``run.py --scale``): large logs, large values, 16 partitions.

Every measurement runs in a fresh child process (``python -m
benchmarks.scale ARGS``) so that its peak RSS (``ru_maxrss``) is its own:
one child produces the log (``send`` per record + ``flush``), a second
reads it to the end with ``poll``, a third times ``seek`` + ``poll(1)``
and ``offsets_for_times`` at random points of it.
"""

from __future__ import annotations

import random
import sys
import time
from typing import Any

from .common import (
    Config,
    Row,
    child_main,
    make_keys,
    max_rss_mib,
    median_of,
    poll_all,
    run_child,
    scratch_dir,
    value_pool,
)

TOPIC = "bench"
CHUNK = 100_000


# -- child side ---------------------------------------------------------------

def _child_produce(args: dict[str, Any]) -> dict[str, Any]:
    from minikafka import Broker, Producer

    n, size, partitions = args["records"], args["value_size"], args["partitions"]
    chunk = min(CHUNK, n)
    keys = make_keys(chunk)
    pool = value_pool(size, max(1, min(1024, (16 << 20) // size)))
    values = [pool[i % len(pool)] for i in range(chunk)]
    base_rss = max_rss_mib()
    with Broker(args["dir"]) as b:
        b.create_topic(TOPIC, partitions=partitions)
        p = Producer(b)
        send = p.send
        t0 = time.perf_counter()
        for i in range(0, n, chunk):
            m = min(chunk, n - i)
            for k, v in zip(keys[:m] if m < chunk else keys, values, strict=False):
                send(TOPIC, v, k)
        p.flush()
        dt = time.perf_counter() - t0
        p.close()
    return {"rate": n / dt, "mb_s": n * size / dt / 1e6, "rss": max_rss_mib(), "base_rss": base_rss}


def _child_consume(args: dict[str, Any]) -> dict[str, Any]:
    from minikafka import Broker

    n = args["records"]
    base_rss = max_rss_mib()
    with Broker(args["dir"]) as b:
        dt = poll_all(b, TOPIC, n)
    return {"rate": n / dt, "mb_s": n * args["value_size"] / dt / 1e6, "rss": max_rss_mib(),
            "base_rss": base_rss}


def _child_seek(args: dict[str, Any]) -> dict[str, Any]:
    from minikafka import Broker, Consumer, TopicPartition

    samples = args["samples"]
    rng = random.Random(42)
    tp = TopicPartition(TOPIC, 0)
    with Broker(args["dir"]) as b:
        c = Consumer(b)
        c.assign([tp])
        end = c.end_offsets([tp])[tp]
        c.seek(tp, 0)
        first_ts = c.poll(1.0, max_records=1)[0].timestamp
        c.seek(tp, end - 1)
        last_ts = c.poll(1.0, max_records=1)[0].timestamp
        offsets = [rng.randrange(end) for _ in range(samples)]
        t0 = time.perf_counter()
        for off in offsets:
            c.seek(tp, off)
            r = c.poll(0, max_records=1)
            if not r or r[0].offset != off:
                raise RuntimeError(f"seek to {off} returned {r[:1]}")
        t_seek = time.perf_counter() - t0
        stamps = [rng.randint(first_ts, last_ts) for _ in range(samples)]
        t0 = time.perf_counter()
        for ts in stamps:
            if c.offsets_for_times({tp: ts})[tp] is None:
                raise RuntimeError(f"offsets_for_times({ts}) found nothing in {first_ts}..{last_ts}")
        t_times = time.perf_counter() - t0
        c.close()
    return {"seek_us": t_seek / samples * 1e6, "times_us": t_times / samples * 1e6, "rss": max_rss_mib()}


# -- parent side ----------------------------------------------------------------

def _sizes(cfg: Config) -> dict[str, int]:
    if cfg.quick:
        return {"small": 20_000, "large": 200_000, "kib": 5_000, "k64": 500, "samples": 100}
    return {"small": 1_000_000, "large": 10_000_000, "kib": 1_000_000, "k64": 16_000, "samples": 500}


def _fmt_n(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


def _one(cfg: Config, n: int, size: int, partitions: int, seek: bool) -> dict[str, float]:
    with scratch_dir(cfg.tmp, "scale-") as d:
        common = {"dir": d, "records": n, "value_size": size, "partitions": partitions}
        prod = run_child("scale", {**common, "mode": "produce"})
        cons = run_child("scale", {**common, "mode": "consume"})
        out = {"p_rate": prod["rate"], "p_mb": prod["mb_s"], "p_rss": prod["rss"],
               "c_rate": cons["rate"], "c_mb": cons["mb_s"], "c_rss": cons["rss"]}
        if seek:
            s = run_child("scale", {**common, "mode": "seek", "samples": _sizes(cfg)["samples"]})
            out.update(seek_us=s["seek_us"], times_us=s["times_us"])
    return out


def run(cfg: Config) -> list[Row]:
    sz = _sizes(cfg)
    rows: list[Row] = []
    results: dict[str, dict[str, float]] = {}
    plan = [
        ("small", sz["small"], 100, 1, True),
        ("large", sz["large"], 100, 1, True),
        ("kib", sz["kib"], 1024, 1, False),
        ("k64", sz["k64"], 65536, 1, False),
        ("p16", sz["small"], 100, 16, False),
    ]
    for name, n, size, parts, seek in plan:
        cfg.log(f"  scale: {_fmt_n(n)} records x {size} B, {parts} partition(s)")
        results[name] = r = median_of(cfg.repeat, lambda n=n, s=size, p=parts, k=seek: _one(cfg, n, s, p, k))
        what = f"{_fmt_n(n)} x " + (f"{size} B" if size < 1024 else f"{size // 1024} KiB")
        if parts > 1:
            what += f", {parts} partitions (keyed)"
        big = size >= 1024
        rows.append(Row("scale", f"scale produce send() {what}", n, rate=r["p_rate"],
                        other=f"RSS {r['p_rss']:.0f} MiB",
                        note=f"{r['p_mb']:.0f} MB/s" if big else "",
                        extra={"key": f"scale_{name}_p", "rss": r["p_rss"]}))
        rows.append(Row("scale", f"scale consume poll() {what}", n, rate=r["c_rate"],
                        other=f"RSS {r['c_rss']:.0f} MiB",
                        note=f"{r['c_mb']:.0f} MB/s" if big else "",
                        extra={"key": f"scale_{name}_c", "rss": r["c_rss"]}))
    small, large = results["small"], results["large"]
    for key, label in (("seek_us", "seek() + poll(max_records=1)"), ("times_us", "offsets_for_times()")):
        for name in ("small", "large"):
            n = sz[name]
            note = ""
            if name == "large":
                note = f"{large[key] / small[key]:.2f}x the {_fmt_n(sz['small'])} figure"
            rows.append(Row("scale", f"scale {label} in a {_fmt_n(n)}-record log", sz["samples"],
                            us=results[name][key], note=note, extra={"key": f"scale_{key}_{name}"}))
    p16 = results["p16"]
    rows.append(Row("scale", "scale 16 vs 1 partition(s): produce, consume rate ratio", sz["small"],
                    other=f"{p16['p_rate'] / small['p_rate']:.2f}x / {p16['c_rate'] / small['c_rate']:.2f}x",
                    note="16-partition rate / 1-partition rate"))
    return rows


if __name__ == "__main__":
    sys.exit(child_main({"produce": _child_produce, "consume": _child_consume, "seek": _child_seek}))
