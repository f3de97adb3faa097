"""Every ```python block in README.md and docs/*.md runs.

Each block runs in a fresh temporary directory as its own program. A block
that defines ``test_`` functions is a pytest file: it runs under pytest
with the minikafka plugin (its fixtures are what such blocks show).
Signatures and sketches are tagged ``text`` (or another language), never
``python``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```", re.S | re.M)
PYTHON_TAGS = {"python", "py", "python3"}


def blocks() -> list[tuple[str, str]]:
    out = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = doc.read_text()
        for m in FENCE.finditer(text):
            if m.group(1).strip().lower() in PYTHON_TAGS:
                line = text.count("\n", 0, m.start()) + 1
                out.append((f"{doc.relative_to(ROOT)}:{line}", m.group(2)))
    return out


BLOCKS = blocks()


def test_the_docs_have_python_blocks() -> None:
    assert len(BLOCKS) >= 15
    names = {name.split(":")[0] for name, _ in BLOCKS}
    for doc in ("README.md", "docs/asyncio.md", "docs/testing.md", "docs/getting-started.md",
                "docs/concepts.md"):
        assert doc in names, doc


@pytest.mark.parametrize("code", [code for _, code in BLOCKS], ids=[name for name, _ in BLOCKS])
def test_python_block_runs(code: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if re.search(r"^def test_|^async def test_", code, re.M):
        (tmp_path / "test_block.py").write_text(code)
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # only the plugin under test
        env.pop("PYTEST_ADDOPTS", None)
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "minikafka.testing.plugin",
               "-p", "no:cacheprovider", "test_block.py"]
    else:
        cmd = [sys.executable, "-c", code]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    if cmd[1:3] == ["-m", "pytest"]:
        assert " passed" in proc.stdout and "failed" not in proc.stdout, proc.stdout
