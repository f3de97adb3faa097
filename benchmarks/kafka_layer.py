"""What minikafka's Kafka backend costs on top of confluent-kafka.

Same broker, same client settings, same records, interleaved A/B (raw,
minikafka, raw, minikafka, ...), median of ``--repeat`` runs. The broker:
Tansu (benchmarks/tansu.py, the default: a real server with storage) or,
with ``--broker mock``, librdkafka's mock cluster (benchmarks/mock_cluster.py:
in C, in memory, far less CPU per record than Tansu and no drift as it
fills; 4 partitions, not 3). benchmarks/kafka_paired.py is the steadier
measure: a fresh broker per round and each run in its own process.

- produce: one call per keyed record, then flush. raw =
  ``confluent_kafka.Producer.produce(topic, value, key)`` with a delivery
  callback counting acknowledgements and ``poll(0)`` after each, as
  confluent-kafka's examples do (librdkafka's default partitioner, in C,
  places the keys; minikafka computes xxh3 in Python, part of its cost);
  minikafka = ``minikafka.Producer.send`` on
  ``connect("kafka://...")`` (the front half checks the record and
  computes the partition; a RecordFuture per record), the futures
  dropped as raw's messages are. ``produce, futures kept``: minikafka
  keeps every future and reads each one's metadata after the flush (what
  that costs is mostly the garbage collector walking the live futures).
  Both producers first write one acknowledged warm-up record, outside the
  timing: a new idempotent librdkafka producer gets its first
  acknowledgement 0, 500 or 1000 ms after it starts (the producer-id
  request, at random on Tansu), which would otherwise be most of the
  figure.
- consume: ``assign`` from the beginning, read every record (the warm-up
  record too); the clock runs from the first batch received to the last
  record (``first record``: from ``assign`` to the first batch, which
  includes minikafka's start-offset lookup and librdkafka's first fetch).
  raw = ``consume(500, 0)`` skipping error events (when nothing is queued,
  ``consume(1, 0.1)`` then ``consume(499, 0)``: what minikafka's fetch
  does); minikafka = ``minikafka.Consumer.poll(max_records=500)`` building
  ``Record`` tuples.
- latency: one record every 2 ms, ``linger.ms=0``, ``fetch.wait.max.ms=1``,
  a consumer thread in the same process takes the receive time (after a
  warm-up record arrived); p50/p99 of receive - send.

The minikafka side is the public Producer/Consumer (what an application
calls); ``benchmarks/run.py --only kafka`` prints the same rows.

    PYTHONPATH=. python -m benchmarks.kafka_layer [--records N] [--repeat R] [--broker tansu|mock]
"""

from __future__ import annotations

import argparse
import operator
import statistics
import tempfile
import threading
import time
import uuid
from typing import Any

from . import mock_cluster, tansu
from .common import make_keys, make_values, percentile

CLIENT = {"enable.idempotence": True, "linger.ms": 5}
CONSUMER = {"fetch.wait.max.ms": 10, "enable.auto.commit": False, "enable.partition.eof": True}
# Tansu answers a fetch with no new data only at fetch.wait.max.ms: keep it short for latency.
LATENCY_CONSUMER = {**CONSUMER, "fetch.wait.max.ms": 1}
PARTITIONS = 3
#: [CPU seconds of the process in the last produce/consume function's
#: timed part, the process time when it started] (benchmarks/kafka_paired.py).
CPU = [0.0, 0.0]
#: One record each producer writes (and waits for) before its clock starts.
WARM_UP = b"warm-up"


def _partitions(keys: list[bytes], partitions: int = PARTITIONS) -> list[int]:
    from minikafka.partitioners import xxh3

    return [xxh3(k, partitions) for k in keys]


def produce_raw(bootstrap: str, topic: str, keys: list[bytes], values: list[bytes],
                parts: list[int]) -> float:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, **CLIENT})
    p.produce(topic, WARM_UP, partition=0)
    if p.flush(30):
        raise RuntimeError("raw producer: warm-up record not acknowledged")
    produce, poll = p.produce, p.poll
    acked = [0]

    def report(err: Any, msg: Any) -> None:
        if err is None:
            acked[0] += 1

    t0 = time.perf_counter()
    CPU[1] = time.process_time()
    for k, v in zip(keys, values, strict=True):
        try:
            produce(topic, v, k, on_delivery=report)
        except BufferError:
            poll(0.005)
            produce(topic, v, k, on_delivery=report)
        poll(0)
    p.flush(60)
    elapsed = time.perf_counter() - t0
    CPU[0] = time.process_time() - CPU[1]
    assert acked[0] == len(values), acked
    return len(values) / elapsed


def produce_mk(bootstrap: str, topic: str, keys: list[bytes], values: list[bytes],
               parts: list[int], keep: bool = False) -> float:
    """``keep``: hold every future and check its partition after the flush."""
    import minikafka

    with minikafka.connect(f"kafka://{bootstrap}", producer_config=CLIENT) as broker:
        p = minikafka.Producer(broker, linger_ms=CLIENT["linger.ms"])
        p.send(topic, WARM_UP, partition=0).result(30)
        send = p.send
        t0 = time.perf_counter()
        CPU[1] = time.process_time()
        if keep:
            futures = [send(topic, v, k) for k, v in zip(keys, values, strict=True)]
        else:
            for k, v in zip(keys, values, strict=True):
                send(topic, v, k)
        p.flush(60)
        if keep:
            assert [f.result(0).partition for f in futures] == parts
        elapsed = time.perf_counter() - t0
        CPU[0] = time.process_time() - CPU[1]
        p.close()
    return len(values) / elapsed


#: The deserializer of the "decode" cases: C-level, any bytes (latin-1), so
#: what is measured is the layer's way of applying one.
DECODE = operator.methodcaller("decode", "latin-1")


def consume_raw(bootstrap: str, topic: str, n: int, read_fields: bool = False,
                partitions: int = PARTITIONS, decode: bool = False) -> tuple[float, float]:
    """(records/s from the first batch on, seconds from assign to the first
    batch). ``read_fields``: also read what a Record holds (key, value,
    offset, timestamp, headers), as any application does; ``decode``: and
    pass each value through :data:`DECODE`."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"raw-{uuid.uuid4().hex}", **CONSUMER})
    t0 = time.perf_counter()
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got = 0
    first: tuple[float, int] | None = None
    deadline = time.monotonic() + 120
    consume = c.consume
    while got < n and time.monotonic() < deadline:
        # As KafkaConsumerBackend.fetch: consume(500, t) would wait out t for
        # a full 500 at the end; take what is queued, else wait for one.
        messages = consume(500, 0)
        if not messages:
            messages = consume(1, 0.1)
            if messages:
                messages += consume(499, 0)
        for m in messages:
            if m.error() is None:
                if decode:
                    v = m.value()
                    m.key(), None if v is None else DECODE(v), m.offset(), m.timestamp(), m.headers()
                elif read_fields:
                    m.key(), m.value(), m.offset(), m.timestamp(), m.headers()
                got += 1
        if first is None and got:
            first = (time.perf_counter(), got)
            CPU[1] = time.process_time()
    end = time.perf_counter()
    CPU[0] = time.process_time() - CPU[1]
    c.close()
    assert got == n and first is not None, got
    return (n - first[1]) / (end - first[0]), first[0] - t0


def consume_mk(bootstrap: str, topic: str, n: int, partitions: int = PARTITIONS,
               decode: bool = False) -> tuple[float, float]:
    """As :func:`consume_raw`, through ``minikafka.Consumer.poll``
    (``decode``: with ``value_deserializer=DECODE``)."""
    import minikafka

    with minikafka.connect(f"kafka://{bootstrap}", consumer_config=CONSUMER) as broker:
        c = minikafka.Consumer(broker, auto_offset_reset="earliest",
                               value_deserializer=DECODE if decode else None)
        t0 = time.perf_counter()
        c.assign([minikafka.TopicPartition(topic, p) for p in range(partitions)])
        got = 0
        first: tuple[float, int] | None = None
        deadline = time.monotonic() + 120
        while got < n and time.monotonic() < deadline:
            for r in c.poll(timeout=0.1, max_records=500):
                r.key, r.value, r.offset, r.timestamp, r.headers  # noqa: B018  (as read_fields)
                got += 1
            if first is None and got:
                first = (time.perf_counter(), got)
                CPU[1] = time.process_time()
        end = time.perf_counter()
        CPU[0] = time.process_time() - CPU[1]
        c.close()
    assert got == n and first is not None, got
    return (n - first[1]) / (end - first[0]), first[0] - t0


def iterate_mk(bootstrap: str, topic: str, n: int, partitions: int = PARTITIONS) -> tuple[float, float]:
    """As :func:`consume_mk`, through ``for r in Consumer(..., stop_at_end=True)``
    (which asks ``at_end()`` before every batch)."""
    import minikafka

    with minikafka.connect(f"kafka://{bootstrap}", consumer_config=CONSUMER) as broker:
        c = minikafka.Consumer(broker, auto_offset_reset="earliest", stop_at_end=True)
        t0 = time.perf_counter()
        c.assign([minikafka.TopicPartition(topic, p) for p in range(partitions)])
        got = 0
        first = 0.0
        for r in c:
            r.key, r.value, r.offset, r.timestamp, r.headers  # noqa: B018  (as read_fields)
            got += 1
            if got == 1:
                first = time.perf_counter()
                CPU[1] = time.process_time()
        end = time.perf_counter()
        CPU[0] = time.process_time() - CPU[1]
        c.close()
    assert got == n, got
    return (n - 1) / (end - first), first - t0


def latency(bootstrap: str, broker: Any, topic: str, count: int, layer: bool,
            consumer_layer: bool | None = None) -> tuple[float, float]:
    """p50, p99 of send -> receive (µs), one record at a time, linger.ms=0;
    ``layer``: minikafka's Producer (and Consumer, unless ``consumer_layer``
    says otherwise), else confluent-kafka's."""
    from confluent_kafka import Consumer, Producer
    from confluent_kafka import TopicPartition as KTP

    import minikafka
    from minikafka import TopicPartition

    receiving_layer = layer if consumer_layer is None else consumer_layer
    end = broker.topic(topic).end_offsets()[0]
    received: list[float] = []
    ready = threading.Event()
    warm = threading.Event()  # the consumer has received a warm-up record: fetching is steady
    stop = threading.Event()

    def take(value: bytes, now: float) -> None:
        if value == b"warm-up":
            warm.set()
        else:
            received.append(now - float(value))

    def receive() -> None:
        if receiving_layer:
            with minikafka.connect(f"kafka://{bootstrap}", consumer_config=LATENCY_CONSUMER) as b:
                c = minikafka.Consumer(b)
                c.assign([TopicPartition(topic, 0)])
                c.seek(TopicPartition(topic, 0), end)
                c.position(TopicPartition(topic, 0))
                ready.set()
                while not stop.is_set():
                    for r in c.poll(timeout=0.05, max_records=10):
                        take(r.value, time.perf_counter())
                c.close()
        else:
            c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"lat-{uuid.uuid4().hex}",
                          **LATENCY_CONSUMER})
            c.assign([KTP(topic, 0, end)])
            ready.set()
            while not stop.is_set():
                for m in c.consume(1, 0.05):  # consume(n) would wait for n records
                    if m.error() is None:
                        take(m.value(), time.perf_counter())
            c.close()

    thread = threading.Thread(target=receive)
    thread.start()
    ready.wait()
    config = {"bootstrap.servers": bootstrap, **CLIENT, "linger.ms": 0}
    deadline = time.monotonic() + 30
    if layer:
        with minikafka.connect(f"kafka://{bootstrap}", producer_config=config) as b:
            w = minikafka.Producer(b, linger_ms=0)
            while not warm.wait(0.01) and time.monotonic() < deadline:
                w.send(topic, b"warm-up", partition=0)
            for _ in range(count):
                w.send(topic, repr(time.perf_counter()).encode(), partition=0)
                time.sleep(0.002)
            w.flush(30)
            w.close()
    else:
        p = Producer(config)
        while not warm.wait(0.01) and time.monotonic() < deadline:
            p.produce(topic, b"warm-up", partition=0)
            p.poll(0)
        for _ in range(count):
            p.produce(topic, repr(time.perf_counter()).encode(), partition=0)
            p.poll(0)
            time.sleep(0.002)
        p.flush(30)
    deadline = time.monotonic() + 10
    while len(received) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join()
    if len(received) < count:
        raise RuntimeError(f"latency ({'minikafka' if layer else 'raw'}): {len(received)} of {count} "
                           f"records arrived (warm-up seen: {warm.is_set()})")
    lat = sorted(x * 1e6 for x in received)
    return percentile(lat, 0.5), percentile(lat, 0.99)


def measure(bootstrap: str, records: int, repeat: int, latency_records: int,
            mock: bool = False) -> dict[str, float]:
    """Medians of every case, raw and minikafka interleaved, on one broker
    (``mock``: a mock cluster, benchmarks/mock_cluster.py)."""
    import minikafka

    n = mock_cluster.PARTITIONS if mock else PARTITIONS
    keys, values = make_keys(records), make_values(records)
    parts = _partitions(keys, n)
    figures: dict[str, list[float]] = {}
    broker = minikafka.connect(f"kafka://{bootstrap}")

    def create(topic: str, partitions: int) -> None:
        if mock:
            mock_cluster.create_topic(bootstrap, topic, partitions)
        else:
            broker.create_topic(topic, partitions=partitions)

    try:
        for _ in range(repeat):
            for side in ("raw", "mk"):
                topic = f"kb-{side}-{uuid.uuid4().hex[:8]}"
                create(topic, n)
                if side == "raw":
                    figures.setdefault("produce raw", []).append(
                        produce_raw(bootstrap, topic, keys, values, parts))
                    rate, first = consume_raw(bootstrap, topic, records + 1, partitions=n)
                    figures.setdefault("consume raw", []).append(rate)
                    figures.setdefault("first raw", []).append(first * 1000)
                    rate, first = consume_raw(bootstrap, topic, records + 1, read_fields=True, partitions=n)
                    figures.setdefault("consume-fields raw", []).append(rate)
                else:
                    figures.setdefault("produce mk", []).append(
                        produce_mk(bootstrap, topic, keys, values, parts))
                    rate, first = consume_mk(bootstrap, topic, records + 1, partitions=n)
                    figures.setdefault("consume mk", []).append(rate)
                    figures.setdefault("first mk", []).append(first * 1000)
                    figures["consume-fields mk"] = figures["consume mk"]
                    kept = f"kb-kept-{uuid.uuid4().hex[:8]}"
                    create(kept, n)
                    figures.setdefault("produce-kept mk", []).append(
                        produce_mk(bootstrap, kept, keys, values, parts, keep=True))
        figures["produce-kept raw"] = figures["produce raw"]
        lat_topic = f"kb-lat-{uuid.uuid4().hex[:8]}"
        create(lat_topic, 1 if not mock else n)
        for _ in range(repeat):
            for layer in (False, True):
                p50, p99 = latency(bootstrap, broker, lat_topic, latency_records, layer)
                side = "mk" if layer else "raw"
                figures.setdefault(f"latency p50 {side}", []).append(p50)
                figures.setdefault(f"latency p99 {side}", []).append(p99)
    finally:
        broker.close()
    return {k: statistics.median(v) for k, v in figures.items()}


def rows(cfg: Any, bootstrap: str) -> list[Any]:
    """benchmarks/run.py rows: the Kafka backend beside confluent-kafka, same broker, same run."""
    from .common import Row

    med = measure(bootstrap, cfg.records, cfg.repeat, 100)
    out = []
    for op in ("produce", "produce-kept", "consume-fields"):
        raw, mk = med[f"{op} raw"], med[f"{op} mk"]
        if op != "produce-kept":
            out.append(Row("kafka layer", f"confluent-kafka {op}", cfg.records, raw))
        out.append(Row("kafka layer", f"minikafka kafka:// {op}", cfg.records, mk,
                       note=f"cost {(1 - mk / raw) * 100:.1f}% vs raw"))
    for q in ("p50", "p99"):
        raw, mk = med[f"latency {q} raw"], med[f"latency {q} mk"]
        out.append(Row("kafka layer", f"confluent-kafka latency {q}", None, None, raw))
        out.append(Row("kafka layer", f"minikafka kafka:// latency {q}", None, None, mk,
                       note=f"{mk - raw:+.0f} µs vs raw"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    # Tansu 0.6: a consumer following a partition written one record at a time
    # stalls for seconds after a few hundred records (raw confluent-kafka too;
    # the records are there: a new consumer reads them). Keep the runs short.
    ap.add_argument("--latency-records", type=int, default=100)
    ap.add_argument("--broker", choices=("tansu", "mock"), default="tansu")
    args = ap.parse_args()
    mock = args.broker == "mock"
    with tempfile.TemporaryDirectory(prefix="minikafka-kbench-") as tmp, \
            (mock_cluster.broker() if mock else tansu.broker(tmp)) as bootstrap:
        med = measure(bootstrap, args.records, args.repeat, args.latency_records, mock=mock)
    where = "librdkafka's mock cluster" if mock else "Tansu"
    print(f"Kafka backend vs confluent-kafka, {where} on 127.0.0.1, {args.records:,} records "
          f"(16 B key, 100 B value), median of {args.repeat}, interleaved")
    print(f"{'case':<30}{'confluent-kafka':>16}{'minikafka':>14}{'cost':>10}")
    for op, label in (("produce", "produce"), ("produce-kept", "produce, futures kept"),
                      ("consume", "consume"), ("consume-fields", "consume-fields")):
        raw, mk = med[f"{op} raw"], med[f"{op} mk"]
        print(f"{label + ' (rec/s)':<30}{raw:>16,.0f}{mk:>14,.0f}{(1 - mk / raw) * 100:>9.1f}%")
    raw, mk = med["first raw"], med["first mk"]
    print(f"{'first record (ms)':<30}{raw:>16,.1f}{mk:>14,.1f}{mk - raw:>+8.1f}ms")
    for q in ("p50", "p99"):
        raw, mk = med[f"latency {q} raw"], med[f"latency {q} mk"]
        print(f"{'latency ' + q + ' (µs)':<30}{raw:>16,.0f}{mk:>14,.0f}{mk - raw:>+9.0f}µs")
    print("produce: futures dropped, as raw's messages; produce, futures kept: minikafka holds every "
          "future and reads it after the flush (against the same raw figure)")
    print("consume: raw consume() only; consume-fields: the raw loop also reads key, value, offset, "
          "timestamp and headers (minikafka's loop reads them in both); both from the first batch on")
    print("targets: throughput cost <= 15%, added latency <= 100 µs")


if __name__ == "__main__":
    main()
