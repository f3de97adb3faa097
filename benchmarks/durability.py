"""What ``fsync=True`` costs: the same workloads with and without it.

Run:  python -m benchmarks.durability [--rounds R] [--records N] [--dir D]

Each round runs every case once per mode, alternating which mode goes
first, so both see the same machine load; it prints per case the median
of each mode and the median of the per-round ratios fsync/default.
Cases:

- ``bulk``: ``send()`` N records (16-byte keys, 100-byte values) and one
  ``flush()`` — batches of ``batch_size`` bytes, one flush per batch;
- ``acked``: N/20 records each sent and waited for (``result()``) — one
  batch, so one flush, per record: the worst case;
- ``commit``: N/100 ``commit()`` calls of a group.

``--dir`` picks the filesystem measured (default: the system temp dir;
a tmpfs makes ``msync``/``fdatasync`` nearly free, so measure on disk).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable

from minikafka import Broker, Consumer, Producer, TopicPartition

TP = TopicPartition("t", 0)


def bulk(d: str, fsync: bool, n: int) -> float:
    """Records per second."""
    keys = [b"k%015d" % i for i in range(n)]
    value = b"v" * 100
    with Broker(d, fsync=fsync) as b:
        b.create_topic("t")
        with Producer(b) as p:
            send = p.send
            t0 = time.perf_counter()
            for k in keys:
                send("t", value, k)
            p.flush()
            return n / (time.perf_counter() - t0)


def acked(d: str, fsync: bool, n: int) -> float:
    """Records per second, each acknowledged before the next is sent."""
    n = max(1, n // 20)
    with Broker(d, fsync=fsync) as b:
        b.create_topic("t")
        with Producer(b, linger_ms=0) as p:
            t0 = time.perf_counter()
            for i in range(n):
                p.send("t", b"v" * 100, b"k%015d" % i).result(10)
            return n / (time.perf_counter() - t0)


def commit(d: str, fsync: bool, n: int) -> float:
    """Commits per second."""
    n = max(1, n // 100)
    with Broker(d, fsync=fsync) as b:
        b.create_topic("t")
        with Consumer(b, group_id="g", enable_auto_commit=False) as c:
            c.assign([TP])
            t0 = time.perf_counter()
            for i in range(n):
                c.commit({TP: i + 1})
            rate = n / (time.perf_counter() - t0)
            if c.committed(TP) != n:
                raise RuntimeError("commit benchmark: the committed offset is wrong")
            return rate


CASES: dict[str, tuple[Callable[[str, bool, int], float], str]] = {
    "bulk": (bulk, "rec/s"),
    "acked": (acked, "rec/s"),
    "commit": (commit, "commits/s"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--records", type=int, default=50_000)
    ap.add_argument("--dir", default=None, help="where the data directories go")
    args = ap.parse_args()
    rates: dict[tuple[str, bool], list[float]] = {(c, f): [] for c in CASES for f in (False, True)}
    ratios: dict[str, list[float]] = {c: [] for c in CASES}
    for r in range(args.rounds):
        for case, (run, _) in CASES.items():
            got = {}
            for fsync in ((False, True) if r % 2 == 0 else (True, False)):
                with tempfile.TemporaryDirectory(dir=args.dir) as d:
                    got[fsync] = run(d, fsync, args.records)
                rates[case, fsync].append(got[fsync])
            ratios[case].append(got[True] / got[False])
    where = args.dir or tempfile.gettempdir()
    print(f"{args.rounds} interleaved rounds, {args.records:,} records, dir={where}")
    print(f"{'case':10} {'default':>14} {'fsync=True':>14} {'fsync/default':>14}")
    for case, (_, unit) in CASES.items():
        a = statistics.median(rates[case, False])
        b = statistics.median(rates[case, True])
        print(f"{case:10} {a:14,.1f} {b:14,.1f} {statistics.median(ratios[case]):13.3f}x  ({unit})")


if __name__ == "__main__":
    main()
