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


SHELL_TAGS = {"sh", "bash", "shell", "console"}


def command_blocks() -> list[tuple[str, list[str]]]:
    """The shell blocks of README.md and docs/getting-started.md that run the
    ``minikafka`` command, as their lines (the install lines left out)."""
    out = []
    for doc in (ROOT / "README.md", ROOT / "docs" / "getting-started.md"):
        text = doc.read_text()
        for m in FENCE.finditer(text):
            lines = [ln for ln in m.group(2).splitlines() if ln.strip()]
            if m.group(1).strip().lower() in SHELL_TAGS and any(ln.startswith("minikafka ") for ln in lines):
                line = text.count("\n", 0, m.start()) + 1
                runnable = [ln for ln in lines if "pip install" not in ln]
                out.append((f"{doc.relative_to(ROOT)}:{line}", runnable))
    return out


COMMAND_BLOCKS = command_blocks()
COMMENT = re.compile(r"\s+#\s*(.*)$")


def test_the_readme_has_a_command_block() -> None:
    assert any(name.startswith("README.md") for name, _ in COMMAND_BLOCKS)


@pytest.mark.parametrize("lines", [lines for _, lines in COMMAND_BLOCKS],
                         ids=[name for name, _ in COMMAND_BLOCKS])
def test_command_block_runs_as_shown(lines: list[str], tmp_path: Path) -> None:
    """Each line runs in one directory, in order, with `minikafka` on PATH
    (this checkout's); a line's `# prints: X` comment is its whole output."""
    shim = tmp_path / "bin" / "minikafka"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m minikafka "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MINIKAFKA_DATA", None)
    exports = [ln for ln in lines if ln.startswith("export ")]
    for ln in lines:
        if ln.startswith("export "):
            continue
        m = COMMENT.search(ln)
        command = ln[: m.start()] if m else ln
        script = "; ".join([*(COMMENT.sub("", e) for e in exports), f'export PATH="{shim.parent}:$PATH"',
                            command])
        proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, f"{ln}\n{proc.stdout}\n{proc.stderr}"
        if m and m.group(1).startswith("prints: "):
            assert proc.stdout.rstrip("\n") == m.group(1)[len("prints: "):], ln


def shared_dir_blocks(doc: str) -> list[str]:
    """The python blocks of ``doc`` that open the relative directory "data"."""
    return [code for name, code in BLOCKS if name.split(":")[0] == doc and 'Broker("data")' in code]


@pytest.mark.parametrize("doc", ["README.md", "docs/getting-started.md"])
def test_blocks_on_one_data_directory_run_in_turn_and_again(doc: str, tmp_path: Path) -> None:
    """A reader runs the blocks one after the other in one directory, and
    again (getting-started says to): the README's second block created the
    topic its first one had made, and raised TopicExistsError."""
    codes = shared_dir_blocks(doc)
    assert codes, doc
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for code in codes * 2:
        proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
