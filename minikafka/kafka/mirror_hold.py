"""A mirror's hold on its group: one running mirror per group.

A mirror reads with ``assign()`` and commits as its group, so it is never
a member of that group: another mirror of the same group saw no live
member and copied everything a second time. While it runs, a mirror now
holds its group, and a second one is refused before it copies anything:

- on a data directory: a flock on ``groups/<group>/mirror.lock`` (the
  kernel drops it when the process dies);
- on a Kafka cluster: membership of the group ``<group>.mirror-lock``,
  subscribed to the mirrored topic with every partition paused (it reads
  nothing). A mirror that finds that group in use (not ``empty`` or
  ``dead``: Tansu 0.6 reports no members but does report the state)
  waits up to 1.5 sessions for it to become free (a holder that died
  keeps it until its session times out), and is refused without joining
  if it does not, so the running one is not disturbed. Otherwise it joins:
  an established holder keeps its partitions (cooperative-sticky), so a
  newcomer whose first assignment lacks some is refused and leaves.
  Mirrors that start together split the partitions: the one given
  partition 0 waits for the others to leave and holds, so exactly one
  runs (and they do not all leave at once: Tansu 0.6 then never completes
  a join of that group again). The progress group itself cannot be used:
  Kafka refuses the commits of a consumer that is not a member of a group
  that has members.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import InvalidArgumentError
from .errors import TimeoutError

#: Suffix of the Kafka group whose membership is the hold.
LOCK_SUFFIX = ".mirror-lock"
#: Session of the hold's member unless the broker's config sets one: Apache
#: Kafka's smallest by default (group.min.session.timeout.ms).
SESSION_MS = 6000
HEARTBEAT_MS = 1000
POLL = 0.2  # seconds between two polls of the holding member (it must answer rebalances)
STATE_POLL = 0.5  # seconds between two looks at the state of a lock group in use
#: Group states in which nobody is in the group.
FREE = frozenset({"empty", "dead", "unknown"})


def _refused(group: str, how: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"group {group!r} is held by another running mirror ({how}): two mirrors of one group "
        f"would both copy every record; wait for it to finish, or choose another group_id / -g")


@contextmanager
def hold_group(broker: Any, group: str, topic: str, partitions: int) -> Iterator[None]:
    """Hold ``group`` on ``broker`` (the mirror's source) until the block
    ends; ``InvalidArgumentError`` if another mirror holds it."""
    from ..broker import Broker
    from .admin import KafkaBroker

    if isinstance(broker, Broker):
        with _hold_directory(broker, group):
            yield
    elif isinstance(broker, KafkaBroker):
        with _hold_kafka(broker, group, topic, partitions):
            yield
    else:  # some other broker: no way to hold a group there
        yield


@contextmanager
def _hold_directory(broker: Any, group: str) -> Iterator[None]:
    from ..locking import FileLock

    store = broker.offset_store(group)
    os.makedirs(store.dir, exist_ok=True)
    lock = FileLock(os.path.join(store.dir, "mirror.lock"))
    try:
        if not lock.acquire(blocking=False):
            pids = lock.holders()
            raise _refused(group, f"pid {', '.join(map(str, pids))}" if pids
                           else f"it holds {lock.path}")
        yield
    finally:
        lock.close()  # closing the descriptor drops the flock


@contextmanager
def _hold_kafka(broker: Any, group: str, topic: str, partitions: int) -> Iterator[None]:
    from confluent_kafka import Consumer

    from .errors import make_client
    from .logs import ClientLog

    lock_group = group + LOCK_SUFFIX
    base = {**broker.config, **broker.consumer_config}
    session_ms = int(base.get("session.timeout.ms", SESSION_MS))
    # In use: a running holder, or one that died less than a session ago.
    state = broker.group_state(lock_group)
    free_by = time.monotonic() + 1.5 * session_ms / 1000
    while state not in FREE:
        if time.monotonic() >= free_by:
            raise _refused(group, f"its group {lock_group!r} is {state}")
        time.sleep(STATE_POLL)
        state = broker.group_state(lock_group)
    config = {
        "session.timeout.ms": session_ms,
        "heartbeat.interval.ms": min(HEARTBEAT_MS, max(1, session_ms // 3)),
        **base,
        "group.id": lock_group,
        "enable.auto.commit": False,
        "partition.assignment.strategy": "cooperative-sticky",
    }
    log = ClientLog()
    consumer: Any = make_client(Consumer, config, "mirror's group hold", log)
    owned: set[int] = set()
    answered: list[bool] = []  # set by the first assignment, empty or not

    def on_assign(c: Any, parts: list[Any]) -> None:
        answered.append(True)
        owned.update(p.partition for p in parts)
        c.incremental_assign(parts)
        c.pause(parts)  # holding, not reading

    def on_revoke(c: Any, parts: list[Any]) -> None:
        owned.difference_update(p.partition for p in parts)
        c.incremental_unassign(parts)

    def wait(until: Callable[[], bool]) -> bool:
        deadline = time.monotonic() + broker.request_timeout + session_ms / 1000
        while not until():
            if time.monotonic() >= deadline:
                return False
            consumer.poll(POLL)
        return True

    everything = set(range(partitions))
    stop = threading.Event()
    thread: threading.Thread | None = None
    try:
        consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_revoke)
        since = time.monotonic()
        if not wait(lambda: bool(answered)):
            raise log.explain(TimeoutError(
                f"holding group {group!r} for the mirror: no assignment in {lock_group!r} within "
                f"{time.monotonic() - since:.0f} s (is the cluster reachable?)"), since)
        # An established holder keeps its partitions (cooperative-sticky), so
        # a newcomer's first assignment lacks some. Mirrors that start together
        # split them: the one given partition 0 waits for the others to leave.
        if 0 not in owned or not wait(lambda: owned == everything):
            raise _refused(group, f"a member of {lock_group!r} holds partitions of {topic!r}")

        def keep() -> None:
            while not stop.is_set():
                consumer.poll(POLL)  # serves rebalances, so a refused newcomer is answered

        thread = threading.Thread(target=keep, name="minikafka-mirror-hold", daemon=True)
        thread.start()
        yield
    finally:
        stop.set()
        if thread is not None:
            thread.join()
        consumer.close()  # leaves the group: the next mirror may hold it
