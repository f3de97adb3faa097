"""The command line given ``-d kafka://...``: the cluster, not a local
directory named ``kafka:``."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from cli_helpers import cli


def test_topics_produce_consume_on_a_kafka_url(kafka_url: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    name = f"cli-{uuid.uuid4().hex[:8]}"
    r = cli("-d", kafka_url, "topics", "create", name, "-p", "2")
    assert r.status == 0, r.err
    assert name in cli("-d", kafka_url, "topics", "list").lines
    r = cli("-d", kafka_url, "produce", name, "-K", ":", stdin=b"a:1\nb:2\n")
    assert r.status == 0, r.err
    r = cli("-d", kafka_url, "consume", name, "-e", "-f", "%k=%s\n")
    assert r.status == 0, r.err
    assert sorted(r.lines) == ["a=1", "b=2"]
    assert cli("-d", kafka_url, "topics", "delete", name).status == 0
    assert os.listdir(tmp_path) == []  # before: a directory "kafka:" held all of it


def test_check_on_a_kafka_url_is_one_clear_line(kafka_url: str) -> None:
    r = cli("-d", kafka_url, "check")
    assert r.status == 1
    assert r.err == ("minikafka: error: check works on a data directory only, "
                     f"not on a Kafka cluster ({kafka_url})\n")


def test_topics_describe_and_alter_on_a_kafka_url(kafka_url: str) -> None:
    """describe read the directory's topic config and segment files, which a
    Kafka topic has not (AttributeError); alter called a method the Kafka
    broker has not. Now: offsets per partition, and one line saying where
    retention is changed."""
    name = f"cli-{uuid.uuid4().hex[:8]}"
    assert cli("-d", kafka_url, "topics", "create", name, "-p", "2").status == 0
    try:
        assert cli("-d", kafka_url, "produce", name, "-p", "1", stdin=b"a\nb\n").status == 0
        r = cli("-d", kafka_url, "topics", "describe", name)
        assert r.status == 0, r.err
        assert r.lines[0] == f"Topic: {name}  PartitionCount: 2"
        assert [line.split() for line in r.lines[1:]] == [
            ["PARTITION", "BEGIN-OFFSET", "END-OFFSET", "RECORDS"],
            ["0", "0", "0", "0"], ["1", "0", "2", "2"]]
        r = cli("-d", kafka_url, "topics", "alter", name, "--retention-ms", "1000")
        assert r.status == 1
        assert r.err.startswith("minikafka: error: topics alter works on a data directory only")
        assert len(r.err.splitlines()) == 1
    finally:
        cli("-d", kafka_url, "topics", "delete", name)
