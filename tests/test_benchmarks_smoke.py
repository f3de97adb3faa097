"""Smoke test: the benchmark suite still runs and prints its table.

Not a timing gate: ``--quick`` uses tiny sizes and the figures mean nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MAIN_ROWS = (
    "produce: send() per record + flush",
    "produce: send_many() bulk",
    "consume: poll() to the end",
    "consume: for record in consumer",
    "commit (group offsets), default",
    "commit (group offsets), fsync=True",
    "minikafka latency p50",
    "minikafka latency p99",
    "minikafka idle wake-up latency p50",
    "minikafka idle consumer CPU",
    "ceiling: bare loop, pack_into mmap",
    "ceiling: bare loop, unpack_from mmap",
    "targets:",
    "send per call >= 1,000,000 rec/s",
)


def test_quick_run_prints_the_table(tmp_path):
    json_path = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--quick", "--no-peers", "--json", str(json_path),
         "--tmp", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    missing = [row for row in MAIN_ROWS if row not in out]
    assert not missing, f"rows missing from the table: {missing}\n{out}"
    assert "FAILED" not in out, out
    assert json_path.exists()
    # data files are cleaned up: only the JSON file is left in the --tmp dir
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.json"]


def test_paired_kafka_benchmark_runs_on_the_mock_cluster(monkeypatch):
    """benchmarks/kafka_paired.py end to end on librdkafka's mock cluster
    (benchmarks/mock_cluster.py): every side's produce, consume and iterate run in
    their own processes and report a rate and CPU per record, the latency
    runs their percentiles."""
    monkeypatch.syspath_prepend(ROOT)
    from benchmarks import kafka_paired, mock_cluster

    with mock_cluster.broker() as bootstrap:
        assert bootstrap.startswith("127.0.0.1:")
        mock_cluster.create_topic(bootstrap, "smoke")
        with pytest.raises(ValueError, match="4 partitions"):
            mock_cluster.create_topic(bootstrap, "three", partitions=3)
    # 3,000 records: several 500-record batches, so the consume rate (timed from the first) is measured
    got = kafka_paired.measure("mock", 1, 3000, {"raw": ROOT, "minikafka": ROOT},
                               ("produce", "consume", "iterate", "decode", "latency"), latency_records=20)
    assert set(got) == {f"{case}/{side}" for case in ("produce", "consume", "iterate", "decode", "latency")
                        for side in ("raw", "minikafka")}
    for key, figures in got.items():
        if key.startswith("latency"):
            assert 0 < figures["p50"][0] <= figures["p99"][0]
        else:
            assert len(figures["rate"]) == 1 and figures["rate"][0] > 0 and figures["cpu_us"][0] > 0
