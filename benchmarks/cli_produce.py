"""How fast ``minikafka produce`` writes lines: 100-byte values, one
partition, through the real command in a subprocess (startup included).

    python benchmarks/cli_produce.py [--lines N] [--repeat R] [--keys] [--tmp DIR]

Each run pipes N lines (from a file made first, via stdin) into
``python -m minikafka -d DIR produce T -p 0`` and times the whole process;
the figure is the median of R runs. ``--file`` times ``produce --file``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_input(path: str, lines: int, keys: bool) -> None:
    rng = random.Random(1)
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789"
    pool = [bytes(rng.choice(alphabet) for _ in range(100)) for _ in range(1024)]
    with open(path, "wb") as f:
        for i in range(lines):
            f.write((b"key-%010d:" % i if keys else b"") + pool[i % 1024] + b"\n")


def run_once(data: str, input_path: str, keys: bool, use_file: bool) -> float:
    env = {**os.environ, "PYTHONPATH": ROOT}
    cmd = [sys.executable, "-m", "minikafka", "-d", data]
    subprocess.run([*cmd, "topics", "create", "bench", "--segment-bytes", str(256 << 20)],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    produce = cmd + ["produce", "bench", "-p", "0"] + (["-K", ":"] if keys else [])
    start = time.perf_counter()
    if use_file:
        subprocess.run([*produce, "--file", input_path], check=True, env=env)
    else:
        with open(input_path, "rb") as f:
            subprocess.run(produce, stdin=f, check=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keys", action="store_true", help="lines are KEY:VALUE (16-byte keys), -K :")
    ap.add_argument("--file", action="store_true", help="produce --file instead of stdin")
    ap.add_argument("--tmp", default=None)
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="mk-cli-", dir=args.tmp)
    try:
        input_path = os.path.join(base, "lines")
        make_input(input_path, args.lines, args.keys)
        times = []
        for i in range(args.repeat):
            data = os.path.join(base, f"data{i}")
            times.append(run_once(data, input_path, args.keys, args.file))
            shutil.rmtree(data)
        t = statistics.median(times)
        how = "--file" if args.file else "stdin"
        print(f"minikafka produce ({how}{', -K' if args.keys else ''}): {args.lines:,} lines of 100-byte "
              f"values in {t:.2f} s (median of {args.repeat}): {args.lines / t:,.0f} lines/s "
              f"(runs: {', '.join(f'{x:.2f}' for x in times)} s)")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
