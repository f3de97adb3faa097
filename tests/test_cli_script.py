"""The real ``minikafka`` console script (and ``python -m minikafka``) in
subprocesses: round trips, exit statuses, Ctrl-C and a closed pipe."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
import tomllib

import pytest

import minikafka
import minikafka.testing
from tests.cli_helpers import ROOT, default_sigint, env, run, script


def test_pyproject_declares_the_console_script():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["scripts"]["minikafka"] == "minikafka.cli:main"


def test_round_trip_through_the_console_script(tmp_path):
    d = tmp_path / "data"
    assert run("-d", d, "topics", "create", "t", "-p", "2").status == 0
    lines = b"".join(b"key%d\tvalue %d\n" % (i, i) for i in range(50))
    r = run("-d", d, "produce", "t", "-K", r"\t", stdin=lines)
    assert r.status == 0 and r.err == ""
    r = run("-d", d, "produce", "t", "-p", "1", "-H", "src=test", stdin=b"with header\n")
    assert r.status == 0
    r = run("-d", d, "consume", "t", "-e", "-J")
    recs = [json.loads(line) for line in r.lines]
    assert r.status == 0 and len(recs) == 51
    keyed = {x["key"]: x for x in recs if x["key"] is not None}
    with minikafka.Broker(d) as broker:
        topic = broker.topic("t")
        for i in range(50):
            x = keyed[f"key{i}"]
            assert x["value"] == f"value {i}" and x["partition"] == topic.partition_for(f"key{i}".encode())
    [h] = [x for x in recs if x["key"] is None]
    assert h["partition"] == 1 and h["headers"] == [["src", "test"]] and h["value"] == "with header"
    r = run("-d", d, "consume", "t", "-e", "-p", "1", "-o", "-1", "-f", r"%o %s\n")
    assert r.lines == [f"{h['offset']} with header"]


def test_python_dash_m(tmp_path):
    d = tmp_path / "data"
    cmd = [sys.executable, "-m", "minikafka", "-d", str(d)]
    subprocess.run([*cmd, "topics", "create", "t"], check=True, env=env(), capture_output=True)
    subprocess.run([*cmd, "produce", "t"], input=b"hello\n", check=True, env=env())
    out = subprocess.run([*cmd, "consume", "t", "-c", "1"], check=True, env=env(), capture_output=True)
    assert out.stdout == b"hello\n"
    help_ = subprocess.run([sys.executable, "-m", "minikafka", "--help"], env=env(), capture_output=True)
    assert help_.returncode == 0 and b"usage: minikafka" in help_.stdout


def test_exit_statuses_and_one_line_errors(tmp_path):
    d = tmp_path / "data"
    run("-d", d, "topics", "create", "t")
    r = run("-d", d, "consume", "nope", "-e")
    assert (r.status, r.out) == (1, b"") and r.err == "minikafka: error: topic 'nope' does not exist\n"
    r = run("-d", d, "consume", "t", "-o", "sideways")
    assert r.status == 2 and r.err.splitlines()[-1].startswith("minikafka: error: -o")
    r = run("-d", d, "--debug", "consume", "nope", "-e")
    assert r.status == 1 and "Traceback" in r.err and "TopicNotFoundError" in r.err
    (d / "topics" / "t" / "0" / "00000000000000000000.index").unlink(missing_ok=True)
    run("-d", d, "produce", "t", stdin=b"a\n")
    (d / "topics" / "t" / "0" / "00000000000000000000.index").unlink()
    r = run("-d", d, "check")
    assert r.status == 1 and "missing" in r.lines[0]
    assert run("-d", d, "check", "--repair").status == 0
    assert run("-d", d, "check").status == 0


def _wait_lines(proc: subprocess.Popen[bytes], n: int) -> list[bytes]:
    assert proc.stdout is not None
    return [proc.stdout.readline() for _ in range(n)]


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_exits_having_committed_what_it_printed(tmp_path, sig, status):
    d = tmp_path / "data"
    run("-d", d, "topics", "create", "t")
    run("-d", d, "produce", "t", stdin=b"".join(b"r%d\n" % i for i in range(5)))
    proc = subprocess.Popen([*script(), "-d", str(d), "consume", "t", "-g", "g"], env=env(),
                            preexec_fn=default_sigint,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    tp = minikafka.TopicPartition("t", 0)
    try:
        assert _wait_lines(proc, 5) == [b"r%d\n" % i for i in range(5)]
        with minikafka.Broker(d) as broker:  # an idle follower commits within about a second
            deadline = time.monotonic() + 10
            while broker.committed_offsets("g").get(tp) != 5 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert broker.committed_offsets("g") == {tp: 5}
        run("-d", d, "produce", "t", stdin=b"s1\ns2\n")
        assert _wait_lines(proc, 2) == [b"s1\n", b"s2\n"]
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == status and err == b""
    with minikafka.Broker(d) as broker:
        assert broker.committed_offsets("g") == {tp: 7}


def test_closed_pipe_exits_quietly(tmp_path):
    d = tmp_path / "data"
    run("-d", d, "topics", "create", "t")
    run("-d", d, "produce", "t", stdin=b"x" * 100 + b"\n" + b"".join(b"%d\n" % i for i in range(200_000)))
    proc = subprocess.Popen([*script(), "-d", str(d), "consume", "t", "-e"], env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"x" * 100 + b"\n"
        proc.stdout.close()  # as `| head -1` does
        err = proc.stderr.read() if proc.stderr else b""
        proc.wait(timeout=20)
    finally:
        proc.kill()
    assert err == b"" and proc.returncode == 141


def test_closed_pipe_before_a_small_output_is_quiet_too(tmp_path):
    d = tmp_path / "data"
    for name in ("a", "b"):
        run("-d", d, "topics", "create", name)
    proc = subprocess.Popen([*script(), "-d", str(d), "topics", "list"], env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.close()  # before the command writes (or, rarely, after: then status 0)
    _, err = proc.communicate(timeout=20)
    assert err == b"" and proc.returncode in (0, 141)


def _end_offset(d, topic: str, n: int, timeout: float = 20) -> int:
    """The topic's end offset once it reaches ``n`` (or at the timeout)."""
    deadline = time.monotonic() + timeout
    with minikafka.Broker(d) as broker:
        while True:
            end = sum(broker.topic(topic).end_offsets().values())
            if end >= n or time.monotonic() > deadline:
                return end
            time.sleep(0.05)


@pytest.mark.parametrize(("sig", "status", "flags"), [
    (signal.SIGINT, 130, []), (signal.SIGTERM, 143, []), (signal.SIGTERM, 143, ["-H", "h=1"]),
])
def test_produce_interrupted_writes_every_line_read_and_says_so(tmp_path, sig, status, flags):
    d = tmp_path / "data"
    run("-d", d, "topics", "create", "t", "-p", "2")
    proc = subprocess.Popen([*script(), "-d", str(d), "produce", "t", *flags], env=env(),
                            preexec_fn=default_sigint, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    try:
        proc.stdin.write(b"".join(b"line %d\n" % i for i in range(100)) + b"unfinished")
        proc.stdin.flush()  # the pipe stays open: produce is waiting for more
        assert _end_offset(d, "t", 100) == 100
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    name = signal.Signals(sig).name
    assert proc.returncode == status
    assert err.decode() == (f"minikafka: produce interrupted by {name}: 100 records written; "
                            f"10 bytes of an unfinished last line were not\n")
    with minikafka.Broker(d) as broker:
        values = sorted(r.value for r in minikafka.testing.read_topic(broker, "t"))
    assert values == sorted(b"line %d" % i for i in range(100))


def test_produce_to_a_partition_out_of_range_fails_before_reading_input(tmp_path):
    d = tmp_path / "data"
    run("-d", d, "topics", "create", "t", "-p", "3")
    proc = subprocess.Popen([*script(), "-d", str(d), "produce", "t", "-p", "7"], env=env(),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:  # stdin stays open and empty: the error must not wait for a line
        status = proc.wait(timeout=20)
        err = proc.stderr.read() if proc.stderr else b""
    finally:
        proc.kill()
    assert status == 1 and err == b"minikafka: error: -p 7: topic 't' has partitions 0..2\n"


@pytest.mark.parametrize(("fd", "argv", "message"), [
    (0, ["produce", "t"], "standard input is closed (give --file PATH to read a file)"),
    (1, ["consume", "t", "-e"], "standard output is closed: nowhere to write the records"),
])
def test_a_closed_standard_stream_is_one_clear_line(tmp_path, fd, argv, message):
    d = tmp_path / "data"
    run("-d", d, "topics", "create", "t")
    run("-d", d, "produce", "t", stdin=b"a\n")
    proc = subprocess.run([*script(), "-d", str(d), *argv], env=env(), stderr=subprocess.PIPE,
                          preexec_fn=lambda: os.close(fd), timeout=30)  # as `<&-` / `>&-` do
    assert proc.returncode == 1 and proc.stderr.decode() == f"minikafka: error: {message}\n"


def test_produce_stops_at_a_line_too_large_without_reading_all_of_it(tmp_path):
    d = tmp_path / "data"
    run("-d", d, "topics", "create", "t")
    proc = subprocess.Popen([*script(), "-d", str(d), "produce", "t"], env=env(), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stderr is not None

    def endless() -> None:  # one line that never ends (a binary file, say)
        try:
            proc.stdin.write(b"ok\n")
            while True:
                proc.stdin.write(b"x" * 65536)
        except (BrokenPipeError, ValueError, OSError):
            pass

    writer = threading.Thread(target=endless, daemon=True)
    writer.start()
    try:
        status = proc.wait(timeout=30)
        err = proc.stderr.read().decode()
    finally:
        proc.kill()
    assert status == 1 and err.startswith("minikafka: error: line 2 (over ")
    assert "the 1 lines before it were written" in err
    with minikafka.Broker(d) as broker:
        assert [r.value for r in minikafka.testing.read_topic(broker, "t")] == [b"ok"]


def test_library_warnings_are_named_lines_on_stderr(tmp_path):
    d = tmp_path / "data"
    for name in ("a", "b"):
        run("-d", d, "topics", "create", name)
    (d / "topics" / "b" / "topic.json").write_text("{garbage")
    r = run("-d", d, "topics", "describe", "a")
    assert r.status == 0 and r.err.startswith("minikafka: warning: topic 'b' skipped at open: ")
    assert all(line.startswith("minikafka: warning: ") for line in r.err.splitlines())


def test_options_keep_the_bytes_typed_even_if_not_utf8(tmp_path):
    d = tmp_path / "data"
    run("-d", d, "topics", "create", "t")
    argv = [*map(os.fsencode, script()), b"-d", os.fsencode(d), b"produce", b"t", b"-K", b"\xff",
            b"-H", b"h=\xfe"]
    proc = subprocess.run(argv, input=b"k\xffv\n", env=env(), capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    with minikafka.Broker(d) as broker:
        [r] = minikafka.testing.read_topic(broker, "t")
    assert (r.key, r.value, list(r.headers)) == (b"k", b"v", [("h", b"\xfe")])
    out = subprocess.run([*map(os.fsencode, script()), b"-d", os.fsencode(d), b"consume", b"t", b"-e",
                          b"-f", b"%k\xfd%s\n"], env=env(), capture_output=True, timeout=30)
    assert out.stdout == b"k\xfdv\n"


def _has_open(pid: int, path, timeout: float = 20) -> bool:
    """Whether process ``pid`` opens ``path`` within ``timeout`` (Linux /proc)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(path) for fd in os.listdir(f"/proc/{pid}/fd")):
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to see the wait")
def test_sigterm_while_joining_a_group_exits_143(tmp_path):
    d = tmp_path / "data"
    run("-d", d, "topics", "create", "t")
    assert run("-d", d, "groups", "reset", "g", "--topic", "t", "--to-earliest", "--execute").status == 0
    lock = d / "groups" / "g" / "lock"
    proc = subprocess.Popen([*script(), "-d", str(d), "consume", "t", "-g", "g"], env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with open(lock, "rb") as held:
            fcntl.flock(held, fcntl.LOCK_EX)  # the join waits for the group lock
            assert _has_open(proc.pid, lock)
            time.sleep(0.3)  # into the flock wait
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
        # released: leaving the group (close) takes the lock too
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 143 and err == b""


def test_text_output_is_utf8_whatever_the_locale(tmp_path):
    d = tmp_path / "data"
    run("-d", d, "topics", "create", "t")
    run("-d", d, "produce", "t", stdin="grüße\n".encode())
    run("-d", d, "consume", "t", "-e", "-g", "grüße")
    seg = d / "topics" / "t" / "0" / "00000000000000000000.log"
    ascii_env = env(PYTHONIOENCODING="ascii")
    for argv, want in ((["-d", d, "groups", "list"], "grüße\n"),
                       (["dump", seg, "-J"], '"value": "grüße"')):
        proc = subprocess.run(script() + [str(a) for a in argv], env=ascii_env, capture_output=True,
                              timeout=30)
        assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
        assert want.encode() in proc.stdout


def _group_topic(d, records_per_partition: int = 100) -> None:
    with minikafka.Broker(d) as broker:
        broker.create_topic("t", partitions=4)
        with minikafka.Producer(broker) as producer:
            for p in range(4):
                producer.send_many("t", [b"p%d-%d" % (p, i) for i in range(records_per_partition)],
                                   partition=p)


def test_consume_e_in_a_group_waits_for_the_partitions_handed_over(tmp_path):
    """-e -g joining a group whose live member holds every partition: the
    partitions assigned to it are taken over, read to their end, then it
    exits (it used to exit at once with nothing, its assignment still empty)."""
    d = tmp_path / "data"
    _group_topic(d)
    with minikafka.Broker(d) as broker, minikafka.Consumer(
            broker, group_id="g", auto_offset_reset="earliest", enable_auto_commit=False) as a:
        a.subscribe(["t"])
        a.poll(timeout=5, max_records=1)
        assert len(a.assignment()) == 4
        proc = subprocess.Popen([*script(), "-d", str(d), "consume", "t", "-g", "g", "-e"], env=env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            time.sleep(2)  # a holds its partitions (it does not poll) while the CLI joins
            deadline = time.monotonic() + 20
            mine: set[int] = set()
            while proc.poll() is None and time.monotonic() < deadline:
                a.poll(timeout=0.1, max_records=1)  # gives up what the rebalance moved
                if not mine and len(a.assignment()) == 2:  # kept until the CLI leaves
                    mine = {tp.partition for tp in a.assignment()}
            out, err = proc.communicate(timeout=20)
        finally:
            proc.kill()
    assert proc.returncode == 0 and err == b""
    lines = out.splitlines()
    assert len(lines) == 200 and len(mine) == 2
    assert {int(line.split(b"-")[0][1:]) for line in lines} == {0, 1, 2, 3} - mine


def test_consume_g_commits_what_it_printed_of_a_partition_taken_away(tmp_path):
    """A rebalance moves partitions from a CLI consumer (which commits only
    every COMMIT_EVERY seconds, here never by itself) to a new member: what
    the CLI printed of them is committed before they go, so the new owner
    does not print it again; and the CLI's later commits of the partitions
    it keeps still work (a commit naming a partition it lost stored nothing)."""
    d = tmp_path / "data"
    _group_topic(d)
    code = ("import sys; import minikafka.cli.commands.consume as c; c.COMMIT_EVERY = 3600; "
            "from minikafka.cli import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.Popen([sys.executable, "-c", code, "-d", str(d), "consume", "t", "-g", "g"],
                            env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert len(_wait_lines(proc, 400)) == 400
        with minikafka.Broker(d) as broker, minikafka.Consumer(
                broker, group_id="g", auto_offset_reset="earliest", enable_auto_commit=False) as a:
            assert broker.committed_offsets("g") == {}  # nothing committed yet
            a.subscribe(["t"])
            got: list[minikafka.Record] = []
            deadline = time.monotonic() + 20
            while len(a.assignment()) < 2 and time.monotonic() < deadline:
                got += a.poll(timeout=0.1)
            got += a.poll(timeout=1)
            mine = a.assignment()
            assert len(mine) == 2
            assert got == []  # the CLI's commits on revoke: nothing printed twice
            assert {tp: a.committed(tp) for tp in mine} == {tp: 100 for tp in mine}
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=20)
            assert proc.returncode == 143 and err == b""
            assert broker.committed_offsets("g") == {minikafka.TopicPartition("t", p): 100 for p in range(4)}
    finally:
        proc.kill()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="FIONREAD on a pipe's write end")
def test_closed_pipe_commits_only_what_the_reader_read(tmp_path):
    """consume -g | head: the records still in the pipe when its reader
    went away were never read, so they are not committed (it used to
    commit every write that had fit into the pipe: 10000 records here)."""
    d = tmp_path / "data"
    run("-d", d, "topics", "create", "t")
    run("-d", d, "produce", "t", stdin=b"".join(b"r%04d\n" % (i % 10000) for i in range(30_000)))
    proc = subprocess.Popen([*script(), "-d", str(d), "consume", "t", "-g", "g"], env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        got = b""
        while len(got) < 18:  # exactly three lines, as a reader that then exits
            got += os.read(fd, 18 - len(got))
        time.sleep(0.5)  # the pipe fills up behind them
        proc.stdout.close()
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert got == b"r0000\nr0001\nr0002\n"
    assert proc.returncode == 141 and err == b""
    with minikafka.Broker(d) as broker:
        assert broker.committed_offsets("g") == {minikafka.TopicPartition("t", 0): 3}


@pytest.mark.parametrize("argv", [["topics", "list"], ["consume", "t"], ["produce", "t"]])
def test_ctrl_c_while_a_kafka_cluster_does_not_answer_exits_130_at_once(argv):
    """The topic's metadata was one librdkafka call waiting all of
    request_timeout (30 s), where no signal reaches Python: Ctrl-C of a
    command whose cluster was down did nothing for 30 s. Now it is asked
    for in slices of a quarter second."""
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([*script(), "-d", f"kafka://127.0.0.1:{port}", *argv], env=env(),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=default_sigint)
    try:
        time.sleep(2)  # started, and waiting for the cluster
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        started = time.monotonic()
        out, _ = proc.communicate(timeout=10)
        assert time.monotonic() - started < 3
    finally:
        proc.kill()
        proc.wait()
    assert (proc.returncode, out) == (130, b"")
