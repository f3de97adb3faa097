"""A one-line progress bar on stderr, drawn only on a terminal."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


def render(label: str, done: int, total: int, elapsed: float, width: int = 24) -> str:
    """``label [#####.....]  42%  1.2/2.9 MB  3.1 MB/s`` (no bar if total is 0)."""
    rate = done / elapsed if elapsed > 0 else 0.0
    if total > 0:
        frac = min(max(done / total, 0.0), 1.0)
        fill = int(frac * width)
        bar = f"[{'#' * fill}{'.' * (width - fill)}] {frac * 100:3.0f}%"
        amount = f"{_size(done)}/{_size(total)}"
    else:
        bar, amount = "", _size(done)
    return " ".join(p for p in (label, bar, amount, f"{_size(int(rate))}/s") if p)


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


class Progress:
    """Redraws at most every ``interval`` seconds; ``close()`` erases it.
    Disabled (does nothing) unless ``stream`` is a terminal."""

    def __init__(self, label: str, stream: TextIO | None = None, enabled: bool | None = None,
                 interval: float = 0.1, clock: Callable[[], float] = time.monotonic) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.interval = interval
        self.clock = clock
        self.start = clock()
        self._next = self.start
        self._drawn = 0

    def update(self, done: int, total: int = 0) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if now < self._next:
            return
        self._next = now + self.interval
        line = render(self.label, done, total, now - self.start)
        self.stream.write("\r" + line.ljust(self._drawn))
        self.stream.flush()
        self._drawn = len(line)

    def close(self) -> None:
        if self.enabled and self._drawn:
            self.stream.write("\r" + " " * self._drawn + "\r")
            self.stream.flush()
            self._drawn = 0
