"""Where the time of one ``Producer.send()`` goes: an ablation.

Run:  python benchmarks/ablate_send.py [--records N]

Prints ns per record for the real ``send`` + ``flush`` loop, for the same loop
with batch writes (``Partition.append``) replaced by a no-op, and for the
pieces of Python work every call does, each timed alone in a loop over the
same records. Medians of 5 runs. This explains a figure in
docs/performance.md; it is not part of the main suite.
"""

from __future__ import annotations

import argparse
import statistics
import struct
import tempfile
import threading
import time
from collections.abc import Callable

import xxhash

import minikafka
from minikafka import partition


def median_ns(fn: Callable[[], float], n: int, runs: int = 5) -> float:
    return statistics.median(fn() for _ in range(runs)) / n * 1e9


def send_loop(keys: list[bytes], values: list[bytes]) -> float:
    with tempfile.TemporaryDirectory() as d, minikafka.Broker(d) as b:
        b.create_topic("t")
        p = minikafka.Producer(b)
        send = p.send
        t0 = time.perf_counter()
        for k, v in zip(keys, values, strict=True):
            send("t", v, k)
        p.flush()
        dt = time.perf_counter() - t0
        p.close()
        return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=200_000)
    n = ap.parse_args().records
    keys = [b"k%015d" % i for i in range(n)]
    values = [bytes(100)] * n
    rows: list[tuple[str, float]] = [("send() + flush, real", median_ns(lambda: send_loop(keys, values), n))]

    real_append = partition.Partition.append
    counter = [0]

    def no_append(self, batch):
        counter[0] += batch.count
        return counter[0] - batch.count

    partition.Partition.append = no_append  # type: ignore[method-assign]
    try:
        rows.append(("send() + flush, batch writes a no-op", median_ns(lambda: send_loop(keys, values), n)))
    finally:
        partition.Partition.append = real_append  # type: ignore[method-assign]

    def loop(body: Callable[[bytes, bytes], object]) -> float:
        t0 = time.perf_counter()
        for k, v in zip(keys, values, strict=True):
            body(k, v)
        return time.perf_counter() - t0

    def call(topic, value=None, key=None, *, partition=None, headers=None, timestamp_ms=None):
        return None

    lock = threading.RLock()
    pack = struct.Struct("<qiiI").pack
    buf = bytearray()

    def locked(k: bytes, v: bytes) -> None:
        lock.acquire()
        lock.release()

    def append(k: bytes, v: bytes) -> None:
        nonlocal buf
        buf += pack(0, 16, 100, 0)
        buf += k
        buf += v
        if len(buf) > 16384:
            buf = bytearray()

    now = time.time_ns
    pieces: list[tuple[str, Callable[[bytes, bytes], object]]] = [
        ("  loop alone", lambda k, v: None),
        ("  a call with send()'s signature", lambda k, v: call("t", v, k)),
        ("  clock: time_ns() // 1_000_000", lambda k, v: now() // 1_000_000),
        ("  key hash: xxh3_64 % 4", lambda k, v: xxhash.xxh3_64_intdigest(k) % 4),
        ("  producer lock: acquire + release", locked),
        ("  future: a 3-tuple subclass", lambda k, v: tuple.__new__(minikafka.RecordFuture, (k, 0, 0))),
        ("  encode: pack prefix + 2 bytearray +=", append),
    ]
    for name, body in pieces:
        rows.append((name, median_ns(lambda body=body: loop(body), n)))
    print(f"{n:,} records, 100-byte values, 16-byte keys, 1 partition; ns per record, median of 5")
    for name, ns in rows:
        print(f"{name:45s} {ns:8.0f}")
    print("(piece rows include the loop's own cost, the 'loop alone' row)")


if __name__ == "__main__":
    main()
