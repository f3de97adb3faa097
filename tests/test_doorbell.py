"""The futex doorbell that wakes waiting readers across processes, and the
polling fallback used where it is unavailable."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import minikafka
from minikafka.doorbell import open_doorbell

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="futex doorbell is Linux-only")


@pytest.fixture(autouse=True)
def _futex_allowed(monkeypatch) -> None:
    monkeypatch.delenv("MINIKAFKA_NO_FUTEX", raising=False)


def send_later(path: Path, value: bytes, delay: float) -> str:
    """Code for a child process that sends ``value`` to topic t after ``delay``."""
    return (
        "import minikafka, time\n"
        f"with minikafka.Broker({str(path)!r}) as b, minikafka.Producer(b) as p:\n"
        f"    time.sleep({delay})\n"
        f"    p.send('t', {value!r})\n"
    )


def wait_in_thread(bell, seen: int, seconds: float) -> tuple[threading.Thread, list[float]]:
    took: list[float] = []

    def run() -> None:
        start = time.monotonic()
        bell.wait(seen, seconds)
        took.append(time.monotonic() - start)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, took


def test_ring_from_another_mapping_wakes_a_waiter(tmp_path: Path) -> None:
    waiter = open_doorbell(str(tmp_path / "doorbell"))
    ringer = open_doorbell(str(tmp_path / "doorbell"))  # a second mapping, as another process has
    assert waiter is not None and ringer is not None
    thread, took = wait_in_thread(waiter, waiter.value(), 10.0)
    time.sleep(0.2)  # let it fall asleep
    ringer.ring()
    thread.join(5)
    assert took and took[0] < 2.0, "the ring did not wake the waiter"


def test_wait_returns_at_once_when_a_ring_came_after_the_read(tmp_path: Path) -> None:
    bell = open_doorbell(str(tmp_path / "doorbell"))
    assert bell is not None
    seen = bell.value()
    bell.ring()
    assert bell.value() != seen
    start = time.monotonic()
    bell.wait(seen, 10.0)
    assert time.monotonic() - start < 1.0


def test_wait_times_out_without_a_ring(tmp_path: Path) -> None:
    bell = open_doorbell(str(tmp_path / "doorbell"))
    assert bell is not None
    start = time.monotonic()
    bell.wait(bell.value(), 0.05)
    assert 0.04 <= time.monotonic() - start < 2.0


def test_ring_from_another_process_wakes_a_waiter(tmp_path: Path) -> None:
    path = str(tmp_path / "doorbell")
    bell = open_doorbell(path)
    assert bell is not None
    thread, took = wait_in_thread(bell, bell.value(), 30.0)
    code = f"from minikafka.doorbell import open_doorbell; open_doorbell({path!r}).ring()"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    thread.join(30)
    assert took and took[0] < 20.0


def test_doorbell_file_is_one_page_and_never_shrinks(tmp_path: Path) -> None:
    path = tmp_path / "doorbell"
    path.write_bytes(b"\0" * 3 * 4096)
    assert open_doorbell(str(path)) is not None
    assert path.stat().st_size == 3 * 4096
    fresh = tmp_path / "other"
    assert open_doorbell(str(fresh)) is not None
    assert fresh.stat().st_size >= 4
    assert open_doorbell(str(tmp_path / "third")).value() == 0


def test_broker_uses_the_doorbell_and_an_append_in_another_process_wakes_poll(make_broker) -> None:
    # poll_interval is the polling fallback's bound; a huge value shows the
    # wake-up came from the doorbell, not from polling.
    broker = make_broker(poll_interval=30.0)
    assert broker.waker.doorbell is not None
    assert (broker.path / "doorbell").exists()
    broker.create_topic("t")
    consumer = minikafka.Consumer(broker, "t", auto_offset_reset="earliest")
    assert consumer.poll(timeout=0.2) == []
    child = subprocess.Popen([sys.executable, "-c", send_later(broker.path, b"hello", 0.5)])
    try:
        start = time.monotonic()
        records = consumer.poll(timeout=20.0)
        waited = time.monotonic() - start
    finally:
        child.wait(60)
    assert [r.value for r in records] == [b"hello"]
    assert waited < 10.0
    consumer.close()


def test_close_from_another_thread_ends_a_blocked_poll(make_broker) -> None:
    broker = make_broker()
    broker.create_topic("t")
    consumer = minikafka.Consumer(broker, "t")
    took: list[float] = []

    def run() -> None:
        start = time.monotonic()
        consumer.poll(timeout=30.0)
        took.append(time.monotonic() - start)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.3)
    consumer.close()
    thread.join(10)
    assert took and took[0] < 5.0


def test_without_futexes_readers_poll_and_still_see_other_processes(make_broker, monkeypatch) -> None:
    monkeypatch.setenv("MINIKAFKA_NO_FUTEX", "1")
    broker = make_broker()
    assert broker.waker.doorbell is None
    broker.create_topic("t")
    consumer = minikafka.Consumer(broker, "t", auto_offset_reset="earliest")
    assert consumer.poll(timeout=0.05) == []
    subprocess.run([sys.executable, "-c", send_later(broker.path, b"polled", 0.3)], check=True, timeout=60)
    records = consumer.poll(timeout=10.0)
    assert [r.value for r in records] == [b"polled"]
    # In-process appends still wake a waiting poll through the condition.
    got: list[list[minikafka.Record]] = []
    thread = threading.Thread(target=lambda: got.append(consumer.poll(timeout=10.0)))
    thread.start()
    time.sleep(0.2)
    with minikafka.Producer(broker) as p:
        p.send("t", b"local")
    thread.join(10)
    assert [r.value for r in got[0]] == [b"local"]
    consumer.close()


def test_an_unusable_doorbell_file_means_polling_not_an_error(tmp_path: Path) -> None:
    (tmp_path / "doorbell").mkdir()  # cannot be opened as a file
    assert open_doorbell(str(tmp_path / "doorbell")) is None
    with minikafka.Broker(tmp_path) as broker:
        assert broker.waker.doorbell is None
        broker.create_topic("t")
        with minikafka.Producer(broker) as p:
            p.send("t", b"x")
        c = minikafka.Consumer(broker, "t", auto_offset_reset="earliest")
        assert [r.value for r in c.poll(timeout=5)] == [b"x"]
        c.close()


def test_waiter_count_is_raised_while_a_reader_sleeps(tmp_path: Path) -> None:
    waiter = open_doorbell(str(tmp_path / "doorbell"))
    ringer = open_doorbell(str(tmp_path / "doorbell"))
    assert waiter is not None and ringer is not None
    assert ringer.waiters() == 0
    thread, took = wait_in_thread(waiter, waiter.value(), 10.0)
    deadline = time.monotonic() + 5
    while ringer.waiters() != 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ringer.waiters() == 1  # seen through another mapping
    ringer.ring()
    thread.join(5)
    assert took and took[0] < 2.0
    assert ringer.waiters() == 0


def test_ring_calls_futex_wake_only_when_someone_waits(tmp_path: Path) -> None:
    bell = open_doorbell(str(tmp_path / "doorbell"))
    assert bell is not None
    calls: list[int] = []
    real = bell._syscall

    def counting(nr, addr, op, *rest):
        calls.append(op)
        return real(nr, addr, op, *rest)

    bell._syscall = counting
    before = bell.value()
    for _ in range(100):
        bell.ring()
    assert calls == []  # nobody waits: no syscall at all
    assert bell.value() != before  # but the word still changes
    thread, took = wait_in_thread(bell, bell.value(), 10.0)
    deadline = time.monotonic() + 5
    while bell.waiters() != 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    bell.ring()
    thread.join(5)
    assert took and took[0] < 2.0
    assert 1 in calls  # FUTEX_WAKE, once somebody waited


def test_writing_records_leaves_the_global_random_alone(make_broker) -> None:
    """Each ring drew its new word from the global ``random``, so a producer
    (its linger thread too) moved a user's seeded sequence, and hypothesis
    warned that a strategy used ``random``. The doorbell has its own now."""
    import random

    broker = make_broker()
    broker.create_topic("t")
    random.seed(1234)
    state = random.getstate()
    with minikafka.Producer(broker, linger_ms=0) as p:
        for i in range(5):
            p.send("t", b"%d" % i)
        p.flush()
    with minikafka.Producer(broker, linger_ms=1) as p:  # rung from the linger thread
        p.send("t", b"late")
        time.sleep(0.05)
    assert broker.topic("t").end_offsets() == {0: 6}
    assert random.getstate() == state
