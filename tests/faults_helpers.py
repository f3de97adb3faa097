"""Helpers shared by the tests/test_faults_*.py files (issue 9).

Everything here goes through the public API or the documented on-disk
layout (docs/format.md), so the tests survive refactors of the core.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import minikafka

ROOT = Path(__file__).resolve().parent.parent


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_child(code: str, *args: str, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (minikafka importable); a child
    that outlives ``timeout`` is killed and the test fails saying so."""
    try:
        return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                              capture_output=True, text=True, timeout=timeout, env=child_env())
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"child did not finish within {timeout} s (hang): {e.stderr!r}") from None


def start_child(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


def read_all(broker: minikafka.Broker, topic: str, partition: int = 0,
             timeout: float = 2.0) -> list[minikafka.Record]:
    """Every retained record of one partition, read by a fresh group-less
    consumer until its end offset (bounded by ``timeout``)."""
    tp = minikafka.TopicPartition(topic, partition)
    with minikafka.Consumer(broker, auto_offset_reset="earliest") as c:
        c.assign([tp])
        c.seek_to_beginning(tp)
        end = c.end_offsets([tp])[tp]
        out: list[minikafka.Record] = []
        deadline = time.monotonic() + timeout
        while c.position(tp) < end and time.monotonic() < deadline:
            out.extend(c.poll(timeout=0.05))
        return out


def call_bounded(fn: Callable[[], Any], timeout: float) -> tuple[bool, Any]:
    """Run ``fn`` in a daemon thread: (True, result or exception) if it
    returned within ``timeout``, else (False, None). Only for calls that
    do not hold process-wide resources when stuck."""
    import threading

    box: list[Any] = []

    def run() -> None:
        try:
            box.append(fn())
        except BaseException as e:
            box.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    return (not t.is_alive(), box[0] if box else None)
