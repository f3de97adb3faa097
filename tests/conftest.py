"""Shared fixtures for the minikafka test suite.

Every test gets its own data directory under ``tmp_path``. ``broker`` is a
Broker on it with 1 MiB segments; ``make_broker`` opens further Brokers
(on the same path by default) and closes all of them after the test.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from kafka_broker import (  # noqa: F401  (Kafka broker, two-backend fixtures)
    backend,
    frozen_kafka,
    kafka_bootstrap,
    kafka_url,
)

import minikafka

DEFAULT_SEGMENT_BYTES = 1 << 20

# Hypothesis example counts (tests that pin max_examples keep theirs): "dev"
# keeps the default run fast; CI (the CI environment variable, as CI
# services and .ci/run set it) runs more. HYPOTHESIS_PROFILE overrides both.
settings.register_profile("dev", max_examples=100)
settings.register_profile("ci", max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE")
                      or ("ci" if os.environ.get("CI", "").lower() not in ("", "0", "false") else "dev"))


def _close_quietly(obj: Any) -> None:
    try:
        obj.close()
    except minikafka.ClosedError:
        pass


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """The data directory of this test (not created in advance)."""
    return tmp_path / "data"


@pytest.fixture
def make_broker(data_dir: Path) -> Iterable[Callable[..., minikafka.Broker]]:
    """Factory: ``make_broker(path=None, **options)`` opens a Broker (on the
    test's data directory unless ``path`` is given); all are closed at the end."""
    opened: list[minikafka.Broker] = []

    def make(path: str | Path | None = None, **options: Any) -> minikafka.Broker:
        options.setdefault("segment_bytes", DEFAULT_SEGMENT_BYTES)
        broker = minikafka.Broker(data_dir if path is None else path, **options)
        opened.append(broker)
        return broker

    yield make
    for broker in reversed(opened):
        _close_quietly(broker)


@pytest.fixture
def broker(make_broker: Callable[..., minikafka.Broker]) -> minikafka.Broker:
    """A Broker on ``tmp_path / "data"`` with 1 MiB segments, closed after the test."""
    return make_broker()


@pytest.fixture
def producer(broker: minikafka.Broker) -> Iterable[minikafka.Producer]:
    """A Producer with default options on ``broker``, closed after the test."""
    p = minikafka.Producer(broker)
    yield p
    _close_quietly(p)


@pytest.fixture
def make_consumer(broker: minikafka.Broker) -> Iterable[Callable[..., minikafka.Consumer]]:
    """Factory: ``make_consumer(*topics, broker=None, **options)``; all closed at the end."""
    opened: list[minikafka.Consumer] = []

    def make(*topics: str, broker: minikafka.Broker | None = None, **options: Any) -> minikafka.Consumer:
        consumer = minikafka.Consumer(broker if broker is not None else default_broker, *topics, **options)
        opened.append(consumer)
        return consumer

    default_broker = broker
    yield make
    for consumer in reversed(opened):
        _close_quietly(consumer)


@pytest.fixture
def produce(broker: minikafka.Broker) -> Callable[..., list[minikafka.RecordMetadata]]:
    """``produce(topic, values, broker=None, **send_kwargs)``: send each value with a
    fresh Producer, flush, close, and return the RecordMetadata of every record."""

    def send_all(topic: str, values: Iterable[Any], *, broker: minikafka.Broker | None = None,
                 **send_kwargs: Any) -> list[minikafka.RecordMetadata]:
        with minikafka.Producer(broker if broker is not None else default_broker) as p:
            futures = [p.send(topic, value, **send_kwargs) for value in values]
            p.flush()
            return [f.result(timeout=5) for f in futures]

    default_broker = broker
    return send_all


def drain(consumer: minikafka.Consumer, count: int, timeout: float = 5.0) -> list[minikafka.Record]:
    """Poll until ``count`` records arrived or ``timeout`` passed; return them all."""
    out: list[minikafka.Record] = []
    deadline = time.monotonic() + timeout
    while len(out) < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        out.extend(consumer.poll(timeout=min(remaining, 0.5)))
    return out


@pytest.fixture
def drain_records() -> Callable[..., list[minikafka.Record]]:
    """``drain_records(consumer, count, timeout=5.0)`` polls until ``count`` records arrived."""
    return drain
