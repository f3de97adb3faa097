"""Event sourcing: the log is the source of truth; state is a fold over it.

Bank accounts receive ``opened`` / ``deposited`` / ``withdrawn`` events keyed
by account id, so each account's events stay in order on one partition. The
balances are never stored: they are rebuilt by replaying the topic. A
snapshot records the balances together with the offsets it covers, so a
later rebuild replays only what came after it, and gets the same answer
as a full replay.

Run:  python examples/event_sourcing.py [DATA_DIR]
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable

from runner import run_in_data_dir

import minikafka

TOPIC = "accounts"
PARTITIONS = 4


def encode(event: dict) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


def apply(balances: dict[str, int], event: dict) -> None:
    """The whole domain logic: how one event changes the state."""
    account = event["account"]
    if event["type"] == "opened":
        balances[account] = 0
    elif event["type"] == "deposited":
        balances[account] += event["amount"]
    elif event["type"] == "withdrawn":
        balances[account] -= event["amount"]


def record_events(broker: minikafka.Broker, events: Iterable[dict]) -> int:
    with minikafka.Producer(broker, value_serializer=encode) as producer:
        futures = [producer.send(TOPIC, e, key=e["account"]) for e in events]
    return len(futures)  # close() flushed: every future has its offset


def replay(broker: minikafka.Broker, start: dict[int, int] | None = None,
           balances: dict[str, int] | None = None) -> tuple[dict[str, int], dict[int, int]]:
    """Fold the events from ``start`` (partition -> offset; default: the
    beginning) to the current end; return the state and the offsets it covers."""
    balances = dict(balances or {})
    tps = [minikafka.TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
    with minikafka.Consumer(broker, value_deserializer=json.loads) as consumer:
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, (start or {}).get(tp.partition, 0))
        end = consumer.end_offsets(tps)
        while any(consumer.position(tp) < end[tp] for tp in tps):
            for record in consumer.poll(timeout=1.0):
                apply(balances, record.value)
        return balances, {tp.partition: consumer.position(tp) for tp in tps}


def main(path: str) -> None:
    rng = random.Random(7)
    accounts = [f"acct-{n:03d}" for n in range(50)]
    with minikafka.Broker(path) as broker:
        if TOPIC not in broker.list_topics():
            broker.create_topic(TOPIC, partitions=PARTITIONS)

        def day_of_events(n: int) -> list[dict]:
            return [{"type": rng.choice(["deposited", "deposited", "withdrawn"]),
                     "account": rng.choice(accounts), "amount": rng.randint(1, 500)} for _ in range(n)]

        opened = record_events(broker, ({"type": "opened", "account": a} for a in accounts))
        written = record_events(broker, day_of_events(5_000))
        print(f"recorded {opened + written} events")

        # A snapshot: the state plus the offsets it covers (store both, together).
        snapshot, covered = replay(broker)
        print(f"snapshot at offsets {covered}: total balance {sum(snapshot.values())}")

        written = record_events(broker, day_of_events(2_000))
        print(f"recorded {written} more events")

        full, _ = replay(broker)
        incremental, offsets = replay(broker, start=covered, balances=snapshot)
        assert full == incremental, "a replay from the snapshot must equal a full replay"
        top = sorted(full.items(), key=lambda kv: -kv[1])[:3]
        print(f"rebuilt {len(full)} accounts (full replay == snapshot + tail); now at offsets {offsets}")
        print("richest:", ", ".join(f"{a}={b}" for a, b in top))


if __name__ == "__main__":
    run_in_data_dir(main, __doc__, prefix="minikafka-events-")
