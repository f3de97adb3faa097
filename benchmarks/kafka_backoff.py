"""The Kafka producer's ``SENDER_BACKOFF`` against confluent-kafka, interleaved.

How long the delivery poller stays away after the sending thread served
the reports (minikafka/kafka/producing.py) decides how often it takes the
GIL from that thread. Each round produces ``--records`` keyed records with
raw confluent-kafka (``produce`` + ``poll(0)``) and with minikafka's
``Producer.send`` (futures dropped) once per backoff, interleaved, on one
Tansu broker; prints each median as a ratio of raw's.

    PYTHONPATH=. python -m benchmarks.kafka_backoff --records 100000 --rounds 9 --backoff 0.002 0.01 0.05
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import uuid

from . import tansu
from .common import make_keys, make_values
from .kafka_layer import PARTITIONS, _partitions, produce_mk, produce_raw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--backoff", type=float, nargs="+", default=[0.002, 0.01, 0.05])
    args = ap.parse_args()

    import minikafka
    from minikafka.kafka import producing

    keys, values = make_keys(args.records), make_values(args.records)
    parts = _partitions(keys)
    rates: dict[str, list[float]] = {"raw": [], **{f"backoff {b:g} s": [] for b in args.backoff}}
    default = producing.SENDER_BACKOFF
    with tempfile.TemporaryDirectory(prefix="minikafka-kbench-") as tmp, tansu.broker(tmp) as bootstrap:
        broker = minikafka.connect(f"kafka://{bootstrap}")
        try:
            for _ in range(args.rounds):
                for name in rates:
                    topic = f"kb-{uuid.uuid4().hex[:8]}"
                    broker.create_topic(topic, partitions=PARTITIONS)
                    if name == "raw":
                        rates[name].append(produce_raw(bootstrap, topic, keys, values, parts))
                        continue
                    producing.SENDER_BACKOFF = float(name.split()[1])
                    try:
                        rates[name].append(produce_mk(bootstrap, topic, keys, values, parts))
                    finally:
                        producing.SENDER_BACKOFF = default
        finally:
            broker.close()
    raw = statistics.median(rates["raw"])
    print(f"produce, {args.records:,} records, median of {args.rounds} interleaved rounds")
    for name, runs in rates.items():
        med = statistics.median(runs)
        print(f"{name:<18}{med:>12,.0f} rec/s  {med / raw:.3f}x raw")


if __name__ == "__main__":
    main()
