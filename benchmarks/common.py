"""Shared pieces: result rows, timing, test data, child processes, machine info."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY_SIZE = 16
VALUE_SIZE = 100
POOL = 1024  # distinct values cycled through (memory stays small at 10M records)


@dataclass
class Row:
    """One line of the table.

    ``rate`` is records/s, ``us`` microseconds; ``other`` free text (RSS,
    CPU %); ``adv`` is how many times better minikafka is than this row
    (for rates minikafka/this, for times this/minikafka).
    """

    section: str
    case: str
    records: int | None = None
    rate: float | None = None
    us: float | None = None
    other: str = ""
    adv: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Config:
    records: int = 200_000
    repeat: int = 3
    quick: bool = False
    slow_records: int = 20_000  # diskcache, persist-queue, litequeue
    latency_records: int = 10_000
    latency_interval: float = 0.0002
    idle_records: int = 100
    idle_interval: float = 0.015
    idle_cpu_seconds: float = 3.0
    commits: int = 2000
    fsync_commits: int = 200
    tmp: str = ""
    log: Callable[[str], None] = print


def median_of(repeat: int, fn: Callable[[], dict[str, float]]) -> dict[str, float]:
    """Run ``fn`` ``repeat`` times; the median of every figure it returns."""
    runs = [fn() for _ in range(max(1, repeat))]
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def make_keys(n: int) -> list[bytes]:
    return [b"%016d" % i for i in range(n)]


def value_pool(size: int = VALUE_SIZE, count: int = POOL) -> list[bytes]:
    blob = os.urandom(size * count)
    return [blob[i * size:(i + 1) * size] for i in range(count)]


def make_values(n: int, size: int = VALUE_SIZE) -> list[bytes]:
    pool = value_pool(size, min(POOL, max(1, n)))
    return [pool[i % len(pool)] for i in range(n)]


@contextlib.contextmanager
def scratch_dir(base: str, prefix: str) -> Iterator[str]:
    """A fresh directory under ``base``, removed afterwards."""
    d = tempfile.mkdtemp(prefix=prefix, dir=base)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO_ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def start_child(module: str, args: dict[str, Any]) -> subprocess.Popen[str]:
    """``python -m benchmarks.<module> '<json args>'``: stdout is a pipe of lines."""
    return subprocess.Popen(
        [sys.executable, "-m", f"benchmarks.{module}", json.dumps(args)],
        cwd=REPO_ROOT, env=child_env(), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, text=True,
    )


def child_result(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    """The last JSON line the child printed; raises if it failed."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuntimeError(f"benchmark child {proc.args[2:3]} timed out after {timeout:.0f} s") from None
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark child {proc.args[2:3]} failed (exit {proc.returncode})")
    return json.loads(lines[-1])


def run_child(module: str, args: dict[str, Any], timeout: float = 1800) -> dict[str, Any]:
    return child_result(start_child(module, args), timeout)


def child_main(handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]]) -> None:
    """Entry point of a child: argv[1] is the JSON args with a "mode"."""
    args = json.loads(sys.argv[1])
    result = handlers[args["mode"]](args)
    print(json.dumps(result), flush=True)


def poll_all(broker: Any, topic: str, n: int, **options: Any) -> float:
    """Seconds for a new earliest-reset Consumer (with ``options``) to poll
    ``n`` records of ``topic`` (creating the consumer included)."""
    from minikafka import Consumer

    t0 = time.perf_counter()
    c = Consumer(broker, topic, auto_offset_reset="earliest", **options)
    got = 0
    while got < n:
        records = c.poll(timeout=1.0)
        if not records:
            break
        got += len(records)
    dt = time.perf_counter() - t0
    c.close()
    if got != n:
        raise RuntimeError(f"poll read {got} records of {topic!r}, expected {n}")
    return dt


def max_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def cpu_seconds() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def machine_info() -> dict[str, str]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        rev = ""
    import minikafka

    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "minikafka": f"{minikafka.__version__}" + (f" (git {rev})" if rev else ""),
    }


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values) + 0.5) - 1))
    return sorted_values[i]
