"""The Kafka layer's cost against raw confluent-kafka, measured for a
steady answer: many short rounds, each on a fresh broker, each run in a
fresh process, the two sides in alternating order, compared per round.

benchmarks/kafka_layer.py runs every case in one process against one
broker for the whole run; here its figures moved by ±10 points between
runs, since its broker (and with Tansu, the broker's cost per record)
changes as it fills, and a process's state (its heap, its threads) carries
from one case to the next. This runs the same produce and consume
functions (kafka_layer.produce_raw/produce_mk, consume_raw/consume_mk), but:

- each round starts a new broker (Tansu, or ``--broker mock``:
  librdkafka's mock cluster, benchmarks/mock_cluster.py);
- each run is its own process, which also reports its CPU time per record
  over the timed part (the client's work: its threads and librdkafka's);
- the sides alternate which goes first; the figure is the median over
  rounds of each round's minikafka/raw ratio, with its quartiles.

``--cases iterate`` is consume with minikafka's side reading through
``for r in Consumer(..., stop_at_end=True)`` instead of ``poll`` (raw's
side is the same ``consume()`` loop). ``--cases decode`` is consume with a
value deserializer on both sides (kafka_layer.DECODE).

``--cases latency`` times one record at a time (kafka_layer.latency, a
fresh broker per run) and reports the p50 of send -> receive and each
round's difference to raw; ``--halves`` adds minikafka's producer with
confluent-kafka's consumer and the reverse, to see which half adds what.

``--against PATH`` adds a third side, minikafka from another checkout (a
``git worktree``): an A/B of a change, paired with the same raw runs.

    PYTHONPATH=. python -m benchmarks.kafka_paired [--rounds R] [--records N] [--broker tansu|mock]
        [--cases produce consume iterate decode latency] [--halves] [--against PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator

from . import mock_cluster, tansu

#: This checkout (its benchmarks run every side; its minikafka is the "minikafka" side).
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# One run: a side's produce (into a new topic) or consume (of the filled
# topic), its rate and the process's CPU seconds per record as JSON.
_RUN = r"""
import json, sys
case, side, bootstrap, topic, n, partitions, tree, here = sys.argv[1:9]
sys.path.insert(0, tree)
import minikafka  # from the side's tree; the benchmark code is always this checkout's
sys.path.insert(0, here)
from benchmarks import kafka_layer as kl
from benchmarks.common import make_keys, make_values
n, partitions = int(n), int(partitions)
if case == "latency":  # side: raw, mk, or one half of minikafka (producer, consumer)
    with minikafka.connect(f"kafka://{bootstrap}") as broker:
        p50, p99 = kl.latency(bootstrap, broker, topic, n, side in ("mk", "producer"),
                              consumer_layer=side in ("mk", "consumer"))
    print(json.dumps({"p50": p50, "p99": p99}))
    raise SystemExit(0)
if case == "produce":
    keys, values = make_keys(n), make_values(n)
    parts = kl._partitions(keys, partitions)
    run = kl.produce_raw if side == "raw" else kl.produce_mk
    rate = run(bootstrap, topic, keys, values, parts)
else:
    decode = case == "decode"
    if side == "raw":
        rate, _ = kl.consume_raw(bootstrap, topic, n, read_fields=True, partitions=partitions, decode=decode)
    elif case == "iterate":
        rate, _ = kl.iterate_mk(bootstrap, topic, n, partitions=partitions)
    else:
        rate, _ = kl.consume_mk(bootstrap, topic, n, partitions=partitions, decode=decode)
print(json.dumps({"rate": rate, "cpu_us": kl.CPU[0] / n * 1e6}))
"""


@contextlib.contextmanager
def _broker(kind: str) -> Iterator[str]:
    if kind == "mock":
        with mock_cluster.broker() as bootstrap:
            yield bootstrap
    else:
        with tempfile.TemporaryDirectory(prefix="minikafka-kpaired-") as tmp, tansu.broker(tmp) as bootstrap:
            yield bootstrap


def _create(kind: str, bootstrap: str, topic: str, partitions: int) -> None:
    if kind == "mock":
        mock_cluster.create_topic(bootstrap, topic, partitions)
    else:
        tansu.create_topic(bootstrap, topic, partitions)


def _run(tree: str, case: str, side: str, bootstrap: str, topic: str, n: int,
         partitions: int) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", _RUN, case, side, bootstrap, topic, str(n), str(partitions),
                          tree, HERE], capture_output=True, text=True, env=env, cwd=tree, timeout=600)
    if out.returncode:
        raise RuntimeError(f"{case} {side} ({tree}) failed:\n{out.stderr[-2000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def measure(kind: str, rounds: int, records: int, sides: dict[str, str],
            cases: tuple[str, ...] = ("produce", "consume"),
            latency_records: int = 100) -> dict[str, dict[str, list[float]]]:
    """{case/side: {"rate": [...], "cpu_us": [...]}} (latency: {"p50": [...],
    "p99": [...]}), one entry per round. ``sides``: name -> source tree;
    "raw" is confluent-kafka used directly, "producer"/"consumer" one half
    of minikafka (latency)."""
    partitions = mock_cluster.PARTITIONS if kind == "mock" else 3
    got: dict[str, dict[str, list[float]]] = {}
    names = list(sides)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        with _broker(kind) as bootstrap:
            produced = ""
            for case in cases:
                for name in order:
                    if case == "latency":
                        topic = f"kp-{uuid.uuid4().hex[:10]}"
                    elif case == "produce":
                        topic = f"kp-{uuid.uuid4().hex[:10]}"
                        _create(kind, bootstrap, topic, partitions)
                        produced = produced or topic
                    else:
                        if not produced:  # consume only: fill a topic with the raw producer
                            produced = f"kp-{uuid.uuid4().hex[:10]}"
                            _create(kind, bootstrap, produced, partitions)
                            _run(sides[name], "produce", "raw", bootstrap, produced, records, partitions)
                        topic = produced
                    side = name if name in ("raw", "producer", "consumer") else "mk"
                    # a produced topic holds the producer's warm-up record too
                    n = {"consume": records + 1, "iterate": records + 1, "decode": records + 1,
                         "latency": latency_records}.get(case, records)
                    if case == "latency":  # its own broker: a broker that served other runs adds noise
                        with _broker(kind) as own:
                            _create(kind, own, topic, partitions)
                            fig = _run(sides[name], case, side, own, topic, n, partitions)
                    else:
                        fig = _run(sides[name], case, side, bootstrap, topic, n, partitions)
                    for k, v in fig.items():
                        got.setdefault(f"{case}/{name}", {}).setdefault(k, []).append(v)
        print(f"round {r + 1}/{rounds}: " + ", ".join(
            f"{key} {figs['rate'][-1]:,.0f}/s" if "rate" in figs else f"{key} p50 {figs['p50'][-1]:,.0f} µs"
            for key, figs in got.items()), file=sys.stderr, flush=True)
    return got


def _quartiles(xs: list[float]) -> tuple[float, float, float]:
    if len(xs) < 2:
        return xs[0], xs[0], xs[0]
    q1, q2, q3 = statistics.quantiles(xs, n=4)
    return q1, q2, q3


def report(got: dict[str, dict[str, list[float]]], sides: dict[str, str], cases: tuple[str, ...]) -> None:
    if any(case != "latency" for case in cases):
        print(f"{'case':<22}{'rec/s (median)':>16}{'cost vs raw, per round: median [q1, q3]':>42}"
              f"{'CPU µs/rec':>12}{'+ vs raw':>10}")
    for case in cases:
        if case == "latency":
            _report_latency(got, sides)
            continue
        raw = got[f"{case}/raw"]
        for name in sides:
            figs = got[f"{case}/{name}"]
            costs = [(1 - a / b) * 100 for a, b in zip(figs["rate"], raw["rate"], strict=True)]
            q1, q2, q3 = _quartiles(costs)
            extra = statistics.median(a - b for a, b in zip(figs["cpu_us"], raw["cpu_us"], strict=True))
            cost = "" if name == "raw" else f"{q2:.1f}% [{q1:.1f}, {q3:.1f}]"
            print(f"{case + ' ' + name:<22}{statistics.median(figs['rate']):>16,.0f}{cost:>42}"
                  f"{statistics.median(figs['cpu_us']):>12.2f}{'' if name == 'raw' else f'{extra:+.2f}':>10}")


def _report_latency(got: dict[str, dict[str, list[float]]], sides: dict[str, str]) -> None:
    raw = got["latency/raw"]["p50"]
    print(f"{'latency':<22}{'p50 µs (median)':>16}{'added vs raw, per round: median [q1, q3]':>42}")
    for name in sides:
        p50 = got[f"latency/{name}"]["p50"]
        q1, q2, q3 = _quartiles([a - b for a, b in zip(p50, raw, strict=True)])
        added = "" if name == "raw" else f"{q2:+.0f} µs [{q1:+.0f}, {q3:+.0f}]"
        print(f"{'latency ' + name:<22}{statistics.median(p50):>16,.0f}{added:>42}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--broker", choices=("tansu", "mock"), default="tansu")
    ap.add_argument("--cases", nargs="+", choices=("produce", "consume", "iterate", "decode", "latency"),
                    default=["produce", "consume"])
    ap.add_argument("--against", metavar="PATH", help="also minikafka from this checkout")
    ap.add_argument("--halves", action="store_true",
                    help="latency: also minikafka's producer alone and its consumer alone")
    # Tansu 0.6 stalls a consumer following a partition written one record at
    # a time after a few hundred records (kafka_layer.py): keep it short there.
    ap.add_argument("--latency-records", type=int, default=None, help="default: 100 on Tansu, 400 on mock")
    args = ap.parse_args()
    sides = {"raw": HERE, "minikafka": HERE}
    if args.halves:
        sides.update(producer=HERE, consumer=HERE)
    if args.against:
        sides["against"] = os.path.abspath(args.against)
    cases = tuple(args.cases)
    latency_records = args.latency_records or (400 if args.broker == "mock" else 100)
    got = measure(args.broker, args.rounds, args.records, sides, cases, latency_records)
    where = "librdkafka's mock cluster" if args.broker == "mock" else "Tansu"
    print(f"Kafka layer vs confluent-kafka: {where} on 127.0.0.1, a fresh broker per round, "
          f"{args.rounds} rounds of {args.records:,} records (16 B key, 100 B value), "
          f"each run its own process")
    report(got, sides, cases)
    print("cost: 1 - minikafka/raw throughput within a round; CPU: the client process's, per record "
          "(raw consume reads key, value, offset, timestamp and headers, as minikafka's Records hold)")


if __name__ == "__main__":
    main()
