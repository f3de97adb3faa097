"""librdkafka's mock cluster as the broker of a benchmark.

librdkafka ships a Kafka-protocol broker written in C for its own tests
(``test.mock.num.brokers``): it keeps records in memory and answers
produce, fetch, metadata and list-offsets requests. Run here in a child
process, it listens on 127.0.0.1 like any broker, so clients reach it by
URL. It costs far less CPU per record than Tansu and does not slow down
as it fills, so more of a benchmark's figure is the client's (Tansu stays
the broker of record: a real server with storage, the one the tests use).

Limits, as measured here: no CreateTopics (a topic is created, with
``PARTITIONS`` partitions, by the first metadata request that names it:
:func:`create_topic`), no consumer groups worth measuring.

    with mock_cluster.broker() as bootstrap: ...
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator

#: Partitions of every topic (the mock cluster's default for auto-created topics).
PARTITIONS = 4

# The child: a client whose mock cluster is the broker. It prints the mock
# broker's port (its only listening socket on 127.0.0.1, found in
# /proc/self/net/tcp by socket inode) and lives until its stdin closes.
_CHILD = r"""
import os, sys
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": "unused:1", "test.mock.num.brokers": 1, "log_level": 0})
p.poll(0.2)
inodes = set()
for fd in os.listdir("/proc/self/fd"):
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        continue
    if target.startswith("socket:["):
        inodes.add(target[8:-1])
ports = []
with open("/proc/self/net/tcp") as f:
    for line in list(f)[1:]:
        fields = line.split()
        if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
            ports.append(int(fields[1].split(":")[1], 16))
print(",".join(f"127.0.0.1:{port}" for port in ports), flush=True)
sys.stdin.read()
"""


@contextlib.contextmanager
def broker(timeout: float = 15.0) -> Iterator[str]:
    """A mock cluster's bootstrap address, for the ``with`` block."""
    proc = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        bootstrap = proc.stdout.readline().strip()
        if not bootstrap:
            proc.kill()
            raise RuntimeError(f"the mock cluster did not start: {proc.communicate(timeout=timeout)[1]}")
        yield bootstrap
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def create_topic(bootstrap: str, name: str, partitions: int = PARTITIONS) -> None:
    """Create ``name`` by asking for its metadata (a producer may create topics)."""
    from confluent_kafka import Producer

    if partitions != PARTITIONS:
        raise ValueError(f"the mock cluster makes topics of {PARTITIONS} partitions, not {partitions}")
    meta = Producer({"bootstrap.servers": bootstrap}).list_topics(name, timeout=10)
    topic = meta.topics.get(name)
    if topic is None or topic.error is not None or len(topic.partitions) != PARTITIONS:
        raise RuntimeError(f"mock cluster: topic {name!r} not created: {topic}")
