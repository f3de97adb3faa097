"""The durability modes (issue 9): with ``fsync=True`` every batch is
msync'ed before its future resolves, and a commit is fdatasync'ed before
``commit()`` returns; with the default (page cache) neither happens.
Proven with ``strace -f`` on a child: after each acknowledgement the child
makes a marker system call (``getppid``), and between two markers the
flush must appear."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from faults_helpers import child_env

CHILD = """
import os, sys, minikafka
b = minikafka.Broker(sys.argv[1], fsync=sys.argv[2] == "1")
b.create_topic("t")
p = minikafka.Producer(b, linger_ms=0)
c = minikafka.Consumer(b, group_id="g")
c.assign([minikafka.TopicPartition("t", 0)])
c.commit({minikafka.TopicPartition("t", 0): 0})  # the offsets file exists: later commits are in place
os.getppid(); os.getppid()  # start marker: two in a row
for i in range(5):
    p.send("t", b"x" * 100).result(5)
    os.getppid()  # acknowledged
for i in range(3):
    c.commit({minikafka.TopicPartition("t", 0): i + 1})
    os.getppid()  # committed
"""

FLUSHES = ("msync", "fsync", "fdatasync")


def trace(tmp_path: Path, fsync: bool) -> list[str]:
    out = tmp_path / "strace.txt"
    subprocess.run(["strace", "-f", "-qq", "-e", "trace=msync,fsync,fdatasync,getppid", "-o", str(out),
                    sys.executable, "-c", textwrap.dedent(CHILD), str(tmp_path / "data"),
                    "1" if fsync else "0"],
                   check=True, env=child_env(), timeout=60, capture_output=True)
    calls = []
    for line in out.read_text().splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2:
            name = parts[1].split("(", 1)[0]
            if name in (*FLUSHES, "getppid"):
                calls.append(name)
    # Keep what follows the start marker.
    for i in range(len(calls) - 1):
        if calls[i] == calls[i + 1] == "getppid":
            return calls[i + 2:]
    raise AssertionError(f"no start marker in {calls}")


def windows(calls: list[str]) -> list[list[str]]:
    """The calls made before each marker (one window per ack or commit)."""
    out, current = [], []
    for name in calls:
        if name == "getppid":
            out.append(current)
            current = []
        else:
            current.append(name)
    return out


pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")


def test_fsync_mode_flushes_before_it_acknowledges(tmp_path: Path) -> None:
    w = windows(trace(tmp_path, fsync=True))
    assert len(w) == 8, w
    for n, calls in enumerate(w[:5]):
        assert "msync" in calls, f"send {n} was acknowledged without an msync: {calls}"
    for n, calls in enumerate(w[5:]):
        assert "fdatasync" in calls or "fsync" in calls, f"commit {n} returned without a sync: {calls}"


def test_default_mode_does_not_flush(tmp_path: Path) -> None:
    w = windows(trace(tmp_path, fsync=False))
    assert len(w) == 8, w
    assert all(not calls for calls in w), f"page-cache mode flushed: {w}"
