"""librdkafka's log goes through ``logging`` (logger ``minikafka.kafka``),
not straight to stderr; a timeout says the cause it logged."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kafka_broker import _free_port

import minikafka

ROOT = Path(__file__).resolve().parent.parent


def test_an_unreachable_cluster_logs_through_logging_and_the_timeout_says_why(
        capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    """librdkafka printed ~20 lines a second on stderr (fd 2) while the
    call waited, and the TimeoutError did not say why."""
    caplog.set_level(logging.ERROR, logger="minikafka.kafka")
    with minikafka.connect(f"kafka://127.0.0.1:{_free_port()}", request_timeout=2) as k:
        with pytest.raises(minikafka.TimeoutError, match="Connection refused"):
            k.list_topics()
        with pytest.raises(minikafka.TimeoutError, match="Connection refused"):
            k.committed_offsets("g")
    assert capfd.readouterr().err == ""
    lines = [r for r in caplog.records if r.name == "minikafka.kafka"]
    assert lines and any("Connection refused" in r.getMessage() for r in lines)


def test_a_consumer_and_a_producer_log_through_logging(capfd: pytest.CaptureFixture[str]) -> None:
    with minikafka.connect(f"kafka://127.0.0.1:{_free_port()}", request_timeout=2,
                           producer_config={"message.timeout.ms": 1500}) as k:
        with minikafka.Consumer(k, group_id="g", enable_auto_commit=False) as c, \
                pytest.raises(minikafka.TimeoutError, match="Connection refused"):
            c.assign([minikafka.TopicPartition("t", 0)])  # reads the committed offset
        p = minikafka.Producer(k)
        try:
            with pytest.raises(minikafka.TimeoutError):
                p.send("t", b"x", partition=0)  # looks the topic up: no cluster
        finally:
            p.close(timeout=2)
    assert capfd.readouterr().err == ""


def test_the_cli_says_one_line_for_an_unreachable_cluster(tmp_path: Path) -> None:
    with minikafka.Broker(tmp_path / "src") as b:
        b.create_topic("t")
        with minikafka.Producer(b) as p:
            p.send("t", b"x")
    # the command's own timeout (30 s) shortened: request_timeout's default
    code = ("import sys; from minikafka.kafka.admin import KafkaBroker; "
            "KafkaBroker.__init__.__kwdefaults__['request_timeout'] = 2.0; "
            "from minikafka.cli import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", code, "mirror", str(tmp_path / "src"),
                           f"kafka://127.0.0.1:{_free_port()}", "-t", "t", "-q"],
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr[:2000]
    assert lines[0].startswith("minikafka: error:") and "Connection refused" in lines[0]
