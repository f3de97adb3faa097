"""A producer/worker pipeline across processes, with ordering per customer.

The main process writes order events keyed by customer id to a 4-partition
topic. Two worker *processes* join the consumer group ``workers``; the group
splits the partitions between them, and since every event of a customer is
in one partition, each customer's events are handled in order by one worker
at a time. Workers write what they did to a ``receipts`` topic; the main
process reads the receipts and checks that every order was handled, in
order per customer.

Each run tags its orders with a run id, so a run on a directory where an
earlier one was interrupted (its orders partly handled, at least once)
checks only its own. Ctrl-C stops the workers and exits with status 130.

Run:  python examples/pipeline.py [DATA_DIR]
"""

from __future__ import annotations

import json
import multiprocessing as mp
import signal
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence

from runner import run_in_data_dir

import minikafka

CUSTOMERS = [f"customer-{n:02d}" for n in range(20)]
ORDERS_PER_CUSTOMER = 100
WORKERS = 2


def worker(path: str, name: str, stop: mp.synchronize.Event) -> None:
    """Consume orders as a group member; emit one receipt per order."""
    with (
        minikafka.Broker(path) as broker,
        minikafka.Producer(broker, value_serializer=lambda v: json.dumps(v).encode()) as receipts,
        minikafka.Consumer(broker, "orders", group_id="workers", auto_offset_reset="earliest",
                           enable_auto_commit=False, value_deserializer=json.loads) as orders,
    ):
        last_seen: dict[tuple[str, str], int] = {}
        while not stop.is_set():
            batch = orders.poll(timeout=0.1)
            for record in batch:
                order = record.value
                run_customer = (order.get("run", ""), order["customer"])
                # Keyed ordering: within a run, a customer's sequence numbers only go up.
                assert order["seq"] > last_seen.get(run_customer, -1), (order, last_seen)
                last_seen[run_customer] = order["seq"]
                customer = order["customer"]
                receipts.send("receipts", {"worker": name, **order}, key=customer)
            if batch:
                # At-least-once: receipts are written before the offsets are committed.
                receipts.flush()
                orders.commit()


def wait_for_members(broker: minikafka.Broker, group: str, procs: Sequence[mp.process.BaseProcess],
                     timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while len(broker.describe_group(group).members) < len(procs):
        if any(p.exitcode is not None for p in procs):
            raise SystemExit(f"a worker failed before joining: exit codes {[p.exitcode for p in procs]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(broker.describe_group(group).members)} of {len(procs)} "
                               "workers joined")
        time.sleep(0.05)


def make_workers(path: str) -> tuple[list[mp.process.BaseProcess], mp.synchronize.Event]:
    """The worker processes (not started) and the event that stops them."""
    ctx = mp.get_context("spawn")
    # The event first: it starts multiprocessing's resource tracker, which
    # unblocks SIGINT after launching it (start_workers must block it after).
    stop = ctx.Event()
    return [ctx.Process(target=worker, args=(path, f"worker-{n}", stop)) for n in range(WORKERS)], stop


def start_workers(procs: Sequence[mp.process.BaseProcess]) -> None:
    """Start the workers with SIGINT blocked (they inherit the signal mask):
    a Ctrl-C reaches only the main process, which stops them through the
    event. Blocked, not ignored, so a Ctrl-C meanwhile is not lost."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        for p in procs:
            p.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def stop_workers(procs: Sequence[mp.process.BaseProcess], stop: mp.synchronize.Event) -> None:
    """Stop the workers started so far (also after a Ctrl-C in start_workers)."""
    stop.set()
    for p in procs:
        if p.pid is None:  # never started
            continue
        p.join(timeout=30)
        if p.exitcode is None:  # stuck: do not leave it running after the main process
            p.terminate()
            p.join(timeout=5)


def main(path: str) -> None:
    with minikafka.Broker(path) as broker:
        # Re-runnable on one directory: the topics and the group's offsets
        # stay, so a second run handles only its own orders and receipts.
        for name in ("orders", "receipts"):
            if name not in broker.list_topics():
                broker.create_topic(name, partitions=4)
        receipts_start = broker.topic("receipts").end_offsets()
        run = uuid.uuid4().hex[:8]

        procs, stop = make_workers(path)
        try:
            start_workers(procs)
            wait_for_members(broker, "workers", procs)

            total = len(CUSTOMERS) * ORDERS_PER_CUSTOMER
            with minikafka.Producer(broker, value_serializer=lambda v: json.dumps(v).encode()) as producer:
                for seq in range(ORDERS_PER_CUSTOMER):
                    for customer in CUSTOMERS:
                        producer.send("orders", {"run": run, "customer": customer, "seq": seq},
                                      key=customer)
            print(f"sent {total} orders for {len(CUSTOMERS)} customers")

            handled: dict[str, list[int]] = defaultdict(list)
            by_worker: dict[str, int] = defaultdict(int)
            with minikafka.Consumer(broker, value_deserializer=json.loads) as receipts:
                receipts.assign([minikafka.TopicPartition("receipts", p) for p in receipts_start])
                for p, offset in receipts_start.items():
                    receipts.seek(minikafka.TopicPartition("receipts", p), offset)  # from this run on
                deadline = time.monotonic() + 60
                while sum(map(len, handled.values())) < total and time.monotonic() < deadline:
                    for r in receipts.poll(timeout=0.5):
                        if r.value.get("run") == run:  # not an earlier run's leftovers
                            handled[r.value["customer"]].append(r.value["seq"])
                            by_worker[r.value["worker"]] += 1
        finally:
            stop_workers(procs, stop)
        if any(p.exitcode != 0 for p in procs):
            raise SystemExit(f"a worker failed: exit codes {[p.exitcode for p in procs]}")

        for customer in CUSTOMERS:
            assert handled[customer] == list(range(ORDERS_PER_CUSTOMER)), f"{customer} out of order"
        print(f"all {total} orders handled in order per customer; receipts by worker: {dict(by_worker)}")
        print("lag of group workers:", sum(broker.lag("workers").values()))


if __name__ == "__main__":
    run_in_data_dir(main, __doc__, prefix="minikafka-pipeline-")
