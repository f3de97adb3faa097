"""examples/scale_out.py runs unchanged on a directory and on a Kafka URL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_scale_out_example_on_both_backends(tmp_path: Path, kafka_url: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "scale_out.py"),
                          str(tmp_path / "data"), kafka_url],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert str(tmp_path / "data") in out.stdout and kafka_url in out.stdout
