"""SIGINT and SIGTERM as a request to stop reading, not an exception.

``produce`` must write every line it has read before it exits: an
exception raised by a signal could land between a read and the send of
what it returned. :class:`StopSignals` turns the first signal into a flag
(and a byte on a wakeup pipe, so a read waiting in ``select`` returns at
once); a second one interrupts as usual (Ctrl-C twice: leave now).
"""

from __future__ import annotations

import io
import os
import select
import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import BinaryIO

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """While entered: ``signum`` is the first SIGINT/SIGTERM received (0:
    none). Does nothing outside the main thread (signals go there only). A
    signal the process ignores (SIGINT of a background job) stays ignored."""

    def __init__(self) -> None:
        self.signum = 0
        self._previous: dict[int, object] = {}
        self._pipe: tuple[int, int] | None = None
        self._wakeup = -1

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is not threading.main_thread():
            return self
        r, w = os.pipe()
        os.set_blocking(w, False)
        self._pipe = (r, w)
        self._wakeup = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        for sig in SIGNALS:
            if signal.getsignal(sig) is not signal.SIG_IGN:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()
        if self._pipe is not None:
            signal.set_wakeup_fd(self._wakeup)
            for fd in self._pipe:
                os.close(fd)
            self._pipe = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum:  # the second signal: interrupt as without us
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(128 + signum)
        self.signum = signum

    def reader(self, stream: BinaryIO, size: int) -> Callable[[], bytes | None]:
        """A function returning the next bytes of ``stream`` (up to ``size``;
        what is there now), ``b""`` at its end, or None once a signal came."""
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):
            fd = -1
        if fd < 0 or self._pipe is None:
            read = getattr(stream, "read1", stream.read)
            return lambda: None if self.signum else read(size)
        wake = self._pipe[0]

        def read_fd() -> bytes | None:
            while not self.signum:
                ready, _, _ = select.select([fd, wake], [], [])
                if fd in ready and not self.signum:  # a signal wins over input (or its end)
                    return os.read(fd, size)
            return None

        return read_fd
