"""The crash soak in the suite (issue 9): a few dozen SIGKILL rounds of
tests/crash.py, and a self-test that its checker does catch a lost and a
forged record. Longer runs: ``python -m tests.crash --rounds 1000``."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import crash
import pytest
from faults_helpers import ROOT, child_env

from minikafka import Broker, Producer


@pytest.mark.slow
def test_crash_soak_rounds() -> None:
    seed = random.randrange(1 << 30)
    done = subprocess.run([sys.executable, "-m", "tests.crash", "--rounds", "20", "--seed", str(seed)],
                          cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=120)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    assert done.returncode == 0, f"{summary}\n{done.stderr[-3000:]}"
    assert summary.startswith("crash soak: rounds=20 ")
    assert " lost=0 corrupt_returned=0 " in summary
    assert "records_checked=0 " not in summary


def test_checker_catches_lost_and_forged_records(tmp_path: Path) -> None:
    data, journal = tmp_path / "data", tmp_path / "journal.jsonl"
    crash.setup(data)
    j = crash.Journal(str(journal))
    with Broker(data) as b, Producer(b) as p:
        for i in range(5):
            meta = p.send("t", partition=0, **crash.record(7, i, "t")).result(5)
            j.write("ack", 7, i, "t", 0, meta.offset)
        # A record that was never sent this way: id of record 9, other bytes.
        forged = crash.record(7, 9, "t")
        forged["value"] = b"not what record 9 holds"
        p.send("t", partition=1, **forged).result(5)
    j.write("ack", 7, 3, "t", 0, 99)  # claims an offset that does not hold it
    os.close(j.fd)
    tally = crash.Tally()
    crash.check(data, journal, tally)
    assert tally.records == 6
    assert tally.lost == 1
    assert tally.corrupt == 1
    assert any("lost" in e for e in tally.errors)


def test_records_are_deterministic_and_varied() -> None:
    made = [crash.record(3, i, "t") for i in range(2000)]
    assert made == [crash.record(3, i, "t") for i in range(2000)]
    assert any(r["value"] is None for r in made)
    assert any(r["key"] is None for r in made)
    assert any("timestamp_ms" in r for r in made)
    assert any(len(r["headers"]) > 1 for r in made)
    assert max(len(r["value"] or b"") for r in made) > 100_000
