"""minikafka in one page: create a topic, produce, consume with a group, replay.

Run:  python examples/quickstart.py [DATA_DIR]

Without DATA_DIR the log lives in a temporary directory removed at the end.
"""

from __future__ import annotations

import json

from runner import run_in_data_dir

import minikafka


def main(path: str) -> None:
    with minikafka.Broker(path) as broker:
        # A topic with 3 partitions; records with the same key share a partition.
        if "orders" not in broker.list_topics():
            broker.create_topic("orders", partitions=3)

        # Produce: send() batches in memory and returns a future; flush() writes.
        with minikafka.Producer(broker, value_serializer=lambda v: json.dumps(v).encode()) as producer:
            futures = [
                producer.send("orders", {"order": n, "item": item}, key=customer)
                for n, (customer, item) in enumerate(
                    [("alice", "book"), ("bob", "lamp"), ("alice", "pen"), ("carol", "mug"), ("bob", "desk")]
                )
            ]
            producer.flush()
            first = futures[0].result()
            print(f"produced {len(futures)} records; the first went to partition "
                  f"{first.partition} at offset {first.offset}")

        # Consume as a member of group "billing"; it commits what it has read,
        # so a restart of the group continues where it stopped.
        with minikafka.Consumer(broker, "orders", group_id="billing", auto_offset_reset="earliest",
                                value_deserializer=json.loads, consumer_timeout=0.5) as consumer:
            for record in consumer:
                where = f"p{record.partition}@{record.offset}"
                print(f"  billing  {where}  {record.key.decode()}: {record.value}")
        print("lag of group billing:", {f"{tp.topic}[{tp.partition}]": n
                                        for tp, n in sorted(broker.lag("billing").items())})

        # Replay: a consumer without a group reads the whole log again, any time.
        with minikafka.Consumer(broker, value_deserializer=json.loads) as replay:
            tps = [minikafka.TopicPartition("orders", p) for p in range(3)]
            replay.assign(tps)
            replay.seek_to_beginning(*tps)
            records = replay.poll(timeout=1.0)
            while batch := replay.poll(timeout=0.1):
                records.extend(batch)
        items = sorted(r.value["item"] for r in records)
        print(f"replayed {len(records)} records from the beginning: {items}")


if __name__ == "__main__":
    run_in_data_dir(main, __doc__, prefix="minikafka-quickstart-")
