"""Interleaved A/B of the hot paths between two source trees.

Run:  python benchmarks/ab.py BASE_TREE [NEW_TREE] [--rounds R] [--records N] [--cases ...]

Each round runs every case once in BASE_TREE and once in NEW_TREE (default:
this checkout), alternating which goes first, each in a fresh interpreter
(``PYTHONPATH`` set to the tree), so both see the same machine load. The
driver uses only the public API, so it runs unchanged against older trees.
Both trees are byte-compiled first, and each case collects garbage before
its timed region (a collection due to the setup's allocations would
otherwise land in one tree's figure by luck).
``--cpu`` divides by the process's CPU time instead of wall time. Prints
per case the median rate of each tree and the median of the
per-round ratios NEW/BASE (> 1: the new tree is faster), and for the
cross-process latency case the median p50 in µs (< 1: lower is better).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

DRIVER = r'''
import gc, json, sys, tempfile, time
import minikafka
from minikafka import Broker, Consumer, Producer
case, n = sys.argv[1], int(sys.argv[2])
keys = [b"k%015d" % i for i in range(n)]
values = [bytes([65 + i % 26]) * 100 for i in range(1024)]
values = [values[i % 1024] for i in range(n)]
with tempfile.TemporaryDirectory() as d, Broker(d) as b:
    b.create_topic("t")
    if case == "send":
        p = Producer(b)
        send = p.send
        gc.collect(); t0, c0 = time.perf_counter(), time.process_time()
        for k, v in zip(keys, values):
            send("t", v, k)
        p.flush()
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        p.close()
    elif case == "send_linger0":
        # linger_ms=0: every send is its own batch, so this times the write
        # path once per record (locks, tail, pwritev, publish, doorbell).
        p = Producer(b, linger_ms=0)
        send = p.send
        m = n // 10
        gc.collect(); t0, c0 = time.perf_counter(), time.process_time()
        for k, v in zip(keys[:m], values[:m]):
            send("t", v, k)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        n = m
        p.close()
    elif case == "commit":
        # Group offsets: one commit({tp: offset}) per "record" (n // 100 of them).
        from minikafka import TopicPartition
        with Producer(b) as p:
            p.send("t", b"x")
        c = Consumer(b, "t", group_id="g", auto_offset_reset="earliest")
        c.poll(timeout=1.0)
        tp = TopicPartition("t", 0)
        m = n // 100
        gc.collect(); t0, c0 = time.perf_counter(), time.process_time()
        for i in range(m):
            c.commit({tp: 1 + i % 2})
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        n = m
        c.close()
    elif case == "send_many":
        with Producer(b) as p:
            gc.collect(); t0, c0 = time.perf_counter(), time.process_time()
            p.send_many("t", values, keys)
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    elif case == "alternate":
        # Two brokers on one directory (as two processes would be) append
        # 16 KiB batches in turn: every append first follows the batch the
        # other one appended (the cross-writer path).
        with Broker(d) as b2:
            p1, p2 = Producer(b), Producer(b2)
            m = 120
            gc.collect(); t0, c0 = time.perf_counter(), time.process_time()
            for i in range(0, n, 2 * m):
                p1.send_many("t", values[i:i + m], keys[i:i + m])
                p2.send_many("t", values[i + m:i + 2 * m], keys[i + m:i + 2 * m])
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
            p1.close(); p2.close()
    else:
        with Producer(b) as p:
            p.send_many("t", values, keys)
        opts = {"value_deserializer": bytes.decode} if case == "poll_str" else {}
        gc.collect(); t0, c0 = time.perf_counter(), time.process_time()
        c = Consumer(b, "t", auto_offset_reset="earliest", **opts)
        got = 0
        while got < n:
            records = c.poll(timeout=1.0)
            if not records:
                break
            got += len(records)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        c.close()
        assert got == n, got
print(json.dumps({"rate": n / dt, "cpu_rate": n / cpu}))
'''

CASES = ("send", "send_linger0", "send_many", "commit", "poll", "poll_str", "alternate", "latency")


def run_case(tree: str, case: str, n: int, cpu: bool = False) -> float:
    env = dict(os.environ, PYTHONPATH=tree)
    if case == "latency":
        out = os.path.join("/tmp", f"ab-lat-{os.getpid()}.json")
        subprocess.run([sys.executable, "benchmarks/run.py", "--only", "latency", "--no-peers",
                        "--repeat", "1", "--json", out], cwd=tree, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(out) as f:
            rows = json.load(f)["rows"]
        os.unlink(out)
        return next(r["us"] for r in rows if r.get("extra", {}).get("key") == "lat_p50")
    proc = subprocess.run([sys.executable, "-c", DRIVER, case, str(n)], cwd=tree, env=env,
                          check=True, capture_output=True, text=True)
    return float(json.loads(proc.stdout)["cpu_rate" if cpu else "rate"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base")
    ap.add_argument("new", nargs="?", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    ap.add_argument("--raw", action="store_true", help="also print every round's figures")
    ap.add_argument("--cpu", action="store_true",
                    help="rates per CPU second of the process (all its threads) instead of per wall "
                         "second: less sensitive to other load on a shared machine")
    args = ap.parse_args()
    # Byte-compile both trees first: with PYTHONDONTWRITEBYTECODE set (as
    # on CI machines) every fresh interpreter would otherwise compile the
    # modules a case imports lazily inside its timed region.
    for tree in (args.base, args.new):
        subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(tree, "minikafka")],
                       check=True, stdout=subprocess.DEVNULL)
    results: dict[str, dict[str, list[float]]] = {c: {"base": [], "new": []} for c in args.cases}
    for r in range(args.rounds):
        for case in args.cases:
            order = [("base", args.base), ("new", args.new)]
            if r % 2:
                order.reverse()
            for name, tree in order:
                results[case][name].append(run_case(tree, case, args.records, args.cpu))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    print(f"{args.rounds} interleaved rounds, {args.records:,} records, rates per "
          f"{'CPU' if args.cpu else 'wall'} second; base={args.base} new={args.new}")
    print(f"{'case':12s} {'base':>14s} {'new':>14s} {'new/base':>9s}")
    for case in args.cases:
        base, new = results[case]["base"], results[case]["new"]
        ratio = statistics.median(b2 / b1 for b1, b2 in zip(base, new, strict=True))
        unit = "µs p50" if case == "latency" else "rec/s"
        print(f"{case:12s} {statistics.median(base):>14,.1f} {statistics.median(new):>14,.1f} "
              f"{ratio:>8.3f}x  ({unit})")
        if args.raw:
            print(f"    base {', '.join(f'{x:,.1f}' for x in base)}")
            print(f"    new  {', '.join(f'{x:,.1f}' for x in new)}")
    if "poll" in results and "poll_str" in results:
        within = [s / p for p, s in zip(results["poll"]["new"], results["poll_str"]["new"], strict=True)]
        within_b = [s / p for p, s in zip(results["poll"]["base"], results["poll_str"]["base"], strict=True)]
        print(f"poll_str/poll within a round: new {statistics.median(within):.3f}x, "
              f"base {statistics.median(within_b):.3f}x")


if __name__ == "__main__":
    main()
