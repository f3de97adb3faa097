"""``minikafka mirror`` as a command of the CLI, in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import minikafka
from tests.cli_helpers import default_sigint

ROOT = Path(__file__).resolve().parent.parent


def _run(*argv: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "minikafka", *argv], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=default_sigint)


def test_mirror_command_copies_then_ctrl_c_exits_130(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    with minikafka.Broker(src) as b:
        b.create_topic("t", partitions=2)
        with minikafka.Producer(b) as p:
            for i in range(20):
                p.send("t", b"%d" % i, partition=i % 2, headers=[("h", b"x")], timestamp_ms=1000 + i)
    proc = _run("mirror", str(src), str(dst), "--topic", "t", "-q")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "copied 20 records" in out
    follow = _run("mirror", str(src), str(dst), "--topic", "t", "--follow", "-q")
    time.sleep(2.0)
    assert follow.poll() is None, follow.communicate()
    follow.send_signal(signal.SIGINT)
    out, err = follow.communicate(timeout=30)
    assert follow.returncode == 130, (out, err)
    with minikafka.Broker(dst) as d:
        assert sum(d.topic("t").end_offsets().values()) == 20


def test_mirror_command_error_is_one_line(tmp_path: Path) -> None:
    minikafka.Broker(tmp_path / "src").close()
    proc = _run("mirror", str(tmp_path / "src"), str(tmp_path / "dst"), "--topic", "absent")
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err.startswith("minikafka: error:") and "absent" in err and "Traceback" not in err


def test_a_killed_follow_mirror_of_a_trickle_copies_nothing_twice(tmp_path: Path) -> None:
    """``--follow`` committed only every 5000 records (or at exit): a
    mirror of a trickle killed with SIGKILL had committed nothing, and the
    next run copied every record again."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    with minikafka.Broker(src) as b:
        b.create_topic("t", partitions=2)
        with minikafka.Producer(b) as p:
            for i in range(10):
                p.send("t", b"%d" % i, partition=i % 2)
    follow = _run("mirror", str(src), str(dst), "--topic", "t", "-g", "m", "--follow", "-q")
    try:
        deadline = time.monotonic() + 60
        committed = 0
        while committed < 10 and time.monotonic() < deadline and follow.poll() is None:
            time.sleep(0.2)
            with minikafka.Broker(src) as b:
                committed = sum(b.committed_offsets("m").values())
        assert committed == 10, follow.poll()
    finally:
        follow.kill()
        follow.communicate(timeout=30)
    with minikafka.Broker(dst) as d:
        assert sum(d.topic("t").end_offsets().values()) == 10
    again = minikafka.mirror(src, dst, "t", group_id="m", progress=False)
    assert again.records == 0
    with minikafka.Broker(dst) as d:
        assert sum(d.topic("t").end_offsets().values()) == 10
