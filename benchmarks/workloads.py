"""minikafka cases in this process: produce, consume, commit cost."""

from __future__ import annotations

import statistics
import time

from minikafka import Broker, Consumer, Producer, TopicPartition

from .common import Config, Row, make_keys, make_values, median_of, poll_all, scratch_dir

TOPIC = "bench"


TEXT_TOPIC = "bench-text"
_TO_ASCII = bytes(65 + i % 26 for i in range(256))  # any byte -> a letter


def _fill(broker: Broker, keys: list[bytes], values: list[bytes], partitions: int = 1,
          topic: str = TOPIC) -> None:
    """Write the records (untimed set-up) through the bulk path."""
    broker.create_topic(topic, partitions=partitions)
    with Producer(broker) as p:
        step = 100_000
        for i in range(0, len(values), step):
            p.send_many(topic, values[i:i + step], keys[i:i + step])


def produce(cfg: Config, keys: list[bytes], values: list[bytes]) -> list[Row]:
    n = len(values)

    def send_per_call() -> dict[str, float]:
        with scratch_dir(cfg.tmp, "mk-send-") as d, Broker(d) as b:
            b.create_topic(TOPIC)
            p = Producer(b)
            send = p.send
            t0 = time.perf_counter()
            for k, v in zip(keys, values, strict=True):
                send(TOPIC, v, k)
            p.flush()
            dt = time.perf_counter() - t0
            p.close()
        return {"rate": n / dt}

    def bulk() -> dict[str, float]:
        with scratch_dir(cfg.tmp, "mk-bulk-") as d, Broker(d) as b:
            b.create_topic(TOPIC)
            p = Producer(b)
            t0 = time.perf_counter()
            p.send_many(TOPIC, values, keys)
            dt = time.perf_counter() - t0
            p.close()
        return {"rate": n / dt}

    cfg.log("  minikafka produce: send per call")
    r_send = median_of(cfg.repeat, send_per_call)
    cfg.log("  minikafka produce: send_many")
    r_bulk = median_of(cfg.repeat, bulk)
    return [
        Row("minikafka", "produce: send() per record + flush", n, rate=r_send["rate"],
            extra={"key": "mk_send"}),
        Row("minikafka", "produce: send_many() bulk", n, rate=r_bulk["rate"],
            note="one call with all records", extra={"key": "mk_bulk"}),
    ]


def consume(cfg: Config, keys: list[bytes], values: list[bytes]) -> list[Row]:
    n = len(values)
    rows = []
    with scratch_dir(cfg.tmp, "mk-consume-") as d, Broker(d) as b:
        _fill(b, keys, values)
        # The same records with every value byte mapped to a letter, so
        # that bytes.decode (UTF-8) accepts them.
        _fill(b, keys, [v.translate(_TO_ASCII) for v in values], topic=TEXT_TOPIC)

        def poll() -> dict[str, float]:
            return {"rate": n / poll_all(b, TOPIC, n)}

        def poll_str() -> dict[str, float]:
            return {"rate": n / poll_all(b, TEXT_TOPIC, n, value_deserializer=bytes.decode)}

        def iterate() -> dict[str, float]:
            t0 = time.perf_counter()
            c = Consumer(b, TOPIC, auto_offset_reset="earliest", consumer_timeout=1.0)
            got = 0
            for _record in c:
                got += 1
                if got == n:
                    break
            dt = time.perf_counter() - t0
            c.close()
            if got != n:
                raise RuntimeError(f"iteration read {got} records, expected {n}")
            return {"rate": n / dt}

        cfg.log("  minikafka consume: poll, and poll with a str value_deserializer, interleaved")
        pairs = [(poll(), poll_str()) for _ in range(max(1, cfg.repeat))]
        r_poll = {"rate": statistics.median(a["rate"] for a, _ in pairs)}
        r_str = {"rate": statistics.median(b["rate"] for _, b in pairs)}
        cfg.log("  minikafka consume: iteration")
        r_iter = median_of(cfg.repeat, iterate)
        rows.append(Row("minikafka", "consume: poll() to the end (Record objects)", n,
                        rate=r_poll["rate"], note="max_poll_records=500", extra={"key": "mk_poll"}))
        rows.append(Row("minikafka", "consume: poll(), value_deserializer=bytes.decode", n,
                        rate=r_str["rate"], note="str values", extra={"key": "mk_poll_str"}))
        rows.append(Row("minikafka", "consume: for record in consumer", n, rate=r_iter["rate"],
                        extra={"key": "mk_iter"}))
    return rows


def commit(cfg: Config) -> list[Row]:
    rows = []
    for fsync, count in ((False, cfg.commits), (True, cfg.fsync_commits)):
        def once(fsync: bool = fsync, count: int = count) -> dict[str, float]:
            with scratch_dir(cfg.tmp, "mk-commit-") as d, Broker(d, fsync=fsync) as b:
                b.create_topic(TOPIC)
                with Producer(b) as p:
                    p.send(TOPIC, b"x")
                c = Consumer(b, TOPIC, group_id="bench-group", enable_auto_commit=False,
                             auto_offset_reset="earliest")
                deadline = time.monotonic() + 10
                while not c.assignment() and time.monotonic() < deadline:
                    c.poll(timeout=0.05)
                tp = TopicPartition(TOPIC, 0)
                commit_ = c.commit
                t0 = time.perf_counter()
                for i in range(count):
                    commit_({tp: i + 1})
                dt = time.perf_counter() - t0
                if c.committed(tp) != count:
                    raise RuntimeError("commit benchmark: committed offset is wrong")
                c.close()
            return {"us": dt / count * 1e6}

        mode = "fsync=True" if fsync else "default (fsync=False)"
        cfg.log(f"  minikafka commit: {mode}")
        r = median_of(cfg.repeat, once)
        rows.append(Row("minikafka", f"commit (group offsets), {mode}", count, us=r["us"],
                        note="µs per commit({tp: offset})"))
    return rows


def run(cfg: Config, only: set[str]) -> list[Row]:
    rows: list[Row] = []
    n = cfg.records
    keys, values = make_keys(n), make_values(n)
    if "produce" in only:
        rows += produce(cfg, keys, values)
    if "consume" in only:
        rows += consume(cfg, keys, values)
    if "commit" in only:
        rows += commit(cfg)
    return rows

