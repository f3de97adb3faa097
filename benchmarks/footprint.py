"""Disk footprint and time of a test-sized broker vs the default.

Run:  python -m benchmarks.footprint [--repeat R]

The case is the one docs/testing.md quotes: a test that creates 10 topics of
4 partitions and writes one 100-byte record to each partition. "allocated"
is the disk the data directory takes (st_blocks, so preallocated segment
space counts); "time" is open broker + create topics + produce + close,
median of ``--repeat`` runs, the two configurations interleaved.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import minikafka
from minikafka.testing import TEST_SEGMENT_BYTES


def allocated(path: str) -> int:
    return sum(os.stat(os.path.join(d, f)).st_blocks * 512
               for d, _, files in os.walk(path) for f in files)


def one_test(segment_bytes: int | None) -> tuple[int, float]:
    with tempfile.TemporaryDirectory(prefix="footprint-") as d:
        options = {} if segment_bytes is None else {"segment_bytes": segment_bytes}
        t0 = time.perf_counter()
        with minikafka.Broker(d, **options) as broker:
            for n in range(10):
                broker.create_topic(f"topic-{n}", partitions=4)
            with minikafka.Producer(broker) as p:
                for n in range(10):
                    for part in range(4):
                        p.send(f"topic-{n}", b"x" * 100, partition=part)
            used = allocated(d)
        return used, time.perf_counter() - t0


def fixture_cost(n: int = 50) -> float:
    """Seconds per ``minikafka_broker`` set-up and tear-down (an empty broker)."""
    with tempfile.TemporaryDirectory(prefix="footprint-") as d:
        t0 = time.perf_counter()
        for i in range(n):
            minikafka.Broker(os.path.join(d, str(i)), segment_bytes=TEST_SEGMENT_BYTES).close()
        return (time.perf_counter() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    results: dict[str, list[tuple[int, float]]] = {"default (16 MiB segments)": [],
                                                   f"test-sized ({TEST_SEGMENT_BYTES // 1024} KiB)": []}
    for _ in range(a.repeat):
        for label, seg in zip(results, (None, TEST_SEGMENT_BYTES), strict=True):
            results[label].append(one_test(seg))
    print(f"{'10 topics x 4 partitions, 1 record each':42} {'allocated':>12} {'time':>10}")
    for label, runs in results.items():
        used = statistics.median(u for u, _ in runs)
        secs = statistics.median(t for _, t in runs)
        print(f"{label:42} {used / 1e6:>9.2f} MB {secs * 1000:>7.1f} ms")
    cost = statistics.median(fixture_cost() for _ in range(a.repeat))
    print(f"{'minikafka_broker fixture (open + close)':42} {'':>12} {cost * 1000:>7.2f} ms")


if __name__ == "__main__":
    main()
