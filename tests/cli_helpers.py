"""Run the command line in-process (``main(argv)``) or as the real console
script in a subprocess."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

from minikafka.cli import main

ROOT = Path(__file__).resolve().parent.parent


def default_sigint() -> None:
    """``preexec_fn`` for a child that is sent SIGINT: a shell without job
    control starts background jobs with SIGINT ignored, children inherit
    that, and Python then installs no KeyboardInterrupt handler — so a
    suite run as ``.ci/run &`` would see Ctrl-C tests hang."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Result(NamedTuple):
    status: int
    out: bytes
    err: str

    @property
    def text(self) -> str:
        return self.out.decode()

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()


def cli(*argv: Any, stdin: bytes = b"") -> Result:
    """``main(argv)`` with stdin/stdout/stderr replaced."""
    out, err = io.BytesIO(), io.StringIO()
    saved = sys.stdin, sys.stdout, sys.stderr
    wrapped_in = sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
    wrapped_out = sys.stdout = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
    sys.stderr = err
    try:
        try:
            status = main([str(a) for a in argv])
        except SystemExit as e:  # argparse: --help, usage errors
            status = int(e.code or 0)
        wrapped_out.flush()
        data = out.getvalue()
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
        wrapped_in.detach()
        wrapped_out.detach()
    return Result(status, data, err.getvalue())


def script() -> list[str]:
    """The installed ``minikafka`` console script next to this interpreter
    (pip install -e . puts it there, as CI does); else the same entry point
    run by this interpreter (``pyproject.toml`` is checked separately)."""
    path = Path(sys.executable).parent / "minikafka"
    if path.exists():
        return [str(path)]
    return [sys.executable, "-c", "import sys; from minikafka.cli import main; sys.exit(main())"]


def env(**extra: str) -> dict[str, str]:
    e = {**os.environ, **extra}
    e["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), e.get("PYTHONPATH", "")) if p)
    return e


def run(*argv: Any, stdin: bytes = b"", timeout: float = 30, **kw: Any) -> Result:
    """The real console script in a subprocess."""
    proc = subprocess.run(script() + [str(a) for a in argv], input=stdin, capture_output=True,
                          timeout=timeout, env=env(), **kw)
    return Result(proc.returncode, proc.stdout, proc.stderr.decode())
