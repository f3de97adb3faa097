"""The example scripts run as a user runs them, and print what they claim."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import xxhash

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, *args: str, timeout: float = 120) -> str:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_quickstart_without_arguments_uses_a_temporary_directory() -> None:
    out = run_example("quickstart.py")
    assert "produced 5 records" in out
    assert out.count("  billing  ") == 5
    assert "replayed 5 records from the beginning: ['book', 'desk', 'lamp', 'mug', 'pen']" in out


def test_quickstart_twice_on_one_directory_continues_the_group(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    run_example("quickstart.py", data)
    out = run_example("quickstart.py", data)
    # The topic survives; the group "billing" resumes after its commit, so it
    # sees only the second run's 5 records while a replay sees all 10.
    assert out.count("  billing  ") == 5
    assert "replayed 10 records from the beginning" in out
    assert "'orders[0]': 0, 'orders[1]': 0, 'orders[2]': 0" in out


def test_event_sourcing_rebuilds_the_same_state_from_a_snapshot(tmp_path: Path) -> None:
    for _ in range(2):  # re-runnable on one directory
        out = run_example("event_sourcing.py", str(tmp_path / "data"))
        assert "recorded 5050 events" in out
        assert "full replay == snapshot + tail" in out


@pytest.mark.slow
def test_pipeline_keeps_per_customer_order_across_worker_processes(tmp_path: Path) -> None:
    for _ in range(2):  # a second run on the same directory continues (no TopicExistsError)
        out = run_example("pipeline.py", str(tmp_path / "data"))
        assert "all 2000 orders handled in order per customer" in out
        assert "lag of group workers: 0" in out


def test_readme_example_runs(tmp_path: Path) -> None:
    readme = (EXAMPLES.parent / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    partition = xxhash.xxh3_64_intdigest(b"alice") % 3
    assert proc.stdout.splitlines() == [f"{partition} 0 b'alice' b'{{\"item\": \"book\"}}'"]
