"""The example scripts run as a user runs them, and print what they claim."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import xxhash

import minikafka

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


@pytest.mark.parametrize("name", ["quickstart.py", "event_sourcing.py", "pipeline.py", "scale_out.py"])
def test_help_prints_usage_and_writes_nothing(tmp_path: Path, name: str) -> None:
    """``--help`` was taken for DATA_DIR: the example ran on a new directory
    named "--help"."""
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0 and proc.stdout.startswith("usage:"), proc.stdout + proc.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["quickstart.py", "event_sourcing.py", "pipeline.py"])
def test_bad_data_dir_arguments_are_usage_errors(tmp_path: Path, name: str) -> None:
    """Extra arguments were ignored; a file as DATA_DIR ended in a traceback."""
    (tmp_path / "a-file").write_text("x")
    for args in (["d1", "d2"], ["a-file"]):
        proc = subprocess.run([sys.executable, str(EXAMPLES / name), *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert proc.returncode == 2 and "usage:" in proc.stderr, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_scale_out_reports_a_bad_url_in_one_line(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(EXAMPLES / "scale_out.py"), "http://example"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr == "scale_out.py: error: unsupported URL scheme 'http' in 'http://example'\n"


def interrupt(name: str, data: Path, ready: Callable[[str, int], bool],
              group: bool = True) -> subprocess.CompletedProcess[str]:
    """Run an example in its own process group as a terminal would, and press
    Ctrl-C (SIGINT to the whole group) once ``ready(stdout so far, pid)`` holds;
    ``group=False``: SIGINT to the main process only, as ``kill -INT`` sends."""
    proc = subprocess.Popen(
        [sys.executable, "-u", str(EXAMPLES / name), str(data)], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # pytest may ignore it
    assert proc.stdout is not None and proc.stderr is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")))  # type: ignore[union-attr]
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not ready("".join(lines), proc.pid):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)
            time.sleep(0.01)
        (os.killpg if group else os.kill)(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
        reader.join(timeout=10)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, "".join(lines), err)


def workers_starting(_: str, pid: int) -> bool:
    """Both pipeline workers are running (still starting: importing)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return False
    cmdlines = []
    for child in children:
        try:
            cmdlines.append(Path(f"/proc/{child}/cmdline").read_bytes())
        except OSError:
            pass
    return sum(b"spawn_main" in c for c in cmdlines) >= 2


def topics_exist(data: Path) -> Callable[[str, int], bool]:
    def ready(*_: object) -> bool:
        if not (data / "minikafka.json").exists():
            return False
        with minikafka.Broker(data) as broker:
            return {"orders", "receipts"} <= set(broker.list_topics())
    return ready


def test_ctrl_c_exits_quietly_and_the_next_run_works(tmp_path: Path) -> None:
    """Ctrl-C printed a KeyboardInterrupt traceback from each process (the
    pipeline's two workers too) instead of exiting with status 130."""
    data = tmp_path / "data"
    # quickstart: during the consumer's idle wait after the records
    proc = interrupt("quickstart.py", data, lambda out, _: "  billing  " in out)
    assert (proc.returncode, proc.stderr) == (130, "interrupted\n"), proc.stdout + proc.stderr
    assert "replayed 10 records" in run_example("quickstart.py", str(data))
    # pipeline: before its workers start, and while they start (they got
    # SIGINT too, and printed a KeyboardInterrupt traceback each)
    data = tmp_path / "pipeline"
    for ready in (topics_exist(data), workers_starting):
        proc = interrupt("pipeline.py", data, ready)
        assert (proc.returncode, proc.stderr) == (130, "interrupted\n"), proc.stdout + proc.stderr
    assert "all 2000 orders handled in order per customer" in run_example("pipeline.py", str(data))


def test_pipeline_stops_its_workers_when_the_main_process_fails(tmp_path: Path) -> None:
    """A failure in the main process (here SIGINT to it alone) left the
    workers running, and the main process waited for them at exit for ever."""
    data = tmp_path / "data"

    def a_worker_joined(*_: object) -> bool:
        if not topics_exist(data)():
            return False
        with minikafka.Broker(data) as broker:
            return len(broker.describe_group("workers").members) > 0

    proc = interrupt("pipeline.py", data, a_worker_joined, group=False)
    assert (proc.returncode, proc.stderr) == (130, "interrupted\n"), proc.stdout + proc.stderr


def test_pipeline_runs_again_after_a_run_whose_workers_did_not_commit(tmp_path: Path) -> None:
    """At-least-once after an interrupted run: the next run's workers get
    the earlier orders again before their own. Its workers failed their
    ordering assertion (seq 0 of this run after seq 99 of the last), or it
    counted the earlier receipts as its own; orders now carry a run id."""
    data = tmp_path / "data"
    run_example("pipeline.py", str(data))
    with minikafka.Broker(data) as broker:  # as if the workers had stopped before committing
        broker.alter_group_offsets("workers", {minikafka.TopicPartition("orders", p): 0
                                               for p in range(4)})
    out = run_example("pipeline.py", str(data))
    assert "all 2000 orders handled in order per customer" in out
    assert "lag of group workers: 0" in out


@pytest.mark.parametrize("name", ["quickstart.py", "event_sourcing.py", "pipeline.py"])
def test_a_foreign_directory_is_refused_in_one_line(tmp_path: Path, name: str) -> None:
    """A non-empty directory that is not minikafka's is refused untouched;
    the example printed the refusal as a traceback."""
    (tmp_path / "notes.txt").write_text("mine")
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), str(tmp_path)], capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.startswith(f"{name}: error: ") and "not a minikafka data directory" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
