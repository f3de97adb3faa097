"""The shipped annotations (py.typed) accept what the API documents: a user
script calling it as docs/api.md says type-checks under ``mypy --strict``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("mypy")


def mypy_strict(tmp_path: Path, source: str) -> tuple[int, str]:
    script = tmp_path / "user_script.py"
    script.write_text(textwrap.dedent(source))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
         "--cache-dir", str(tmp_path / ".mypy_cache"), str(script)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    return done.returncode, done.stdout + done.stderr


def test_documented_header_values_type_check(tmp_path: Path) -> None:
    # api.md: header values may be bytes-like, str or None, as a mapping or
    # a sequence of pairs; the annotation allowed only bytes.
    code, out = mypy_strict(tmp_path, """
        import minikafka

        def produce(broker: minikafka.Broker) -> None:
            with minikafka.Producer(broker) as producer:
                producer.send("t", b"v", headers={"a": "text"})
                producer.send("t", b"v", headers={"a": None, "b": b"x"})
                producer.send("t", b"v", headers=[("a", None), ("b", "x")])
                producer.send("t", b"v", headers=[("a", bytearray(b"x")), ("b", memoryview(b"y"))])
                producer.send("t", b"v", headers=(("a", b"x"),))

        async def produce_async(broker: minikafka.Broker) -> None:
            async with minikafka.AsyncProducer(broker) as producer:
                await producer.send_and_wait("t", b"v", headers={"a": "text"})
        """)
    assert code == 0, out
