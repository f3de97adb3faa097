"""Standard output that can tell, once its reader has gone, what it read.

``consume -g`` commits the records it wrote. Into a pipe, a record is
written long before it is read: when ``| head`` exits, up to a pipe's
capacity of records were written and never read. On Linux ``FIONREAD``
on the write end still counts the unread bytes after the reader closed,
so :attr:`PipeOutput.read_upto` says exactly which bytes the reader took.
Elsewhere (a file, a terminal, no such ioctl) every byte written counts
as read, as before.
"""

from __future__ import annotations

import fcntl
import os
import stat
import struct
import termios
from typing import BinaryIO

F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)  # Linux
MAX_PIPE = 1 << 20  # the largest pipe capacity by default (/proc/sys/fs/pipe-max-size)


class PipeOutput:
    """Writes ``stream``'s bytes; counts them in :attr:`written` (a write
    cut short by a closed pipe included)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.written = 0
        self._fd = -1
        try:
            fd = stream.fileno()
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                stream.flush()
                self._fd = fd
        except (AttributeError, OSError, ValueError):
            pass
        self.capacity = self._capacity()

    def _capacity(self) -> int:
        """Most bytes the pipe holds unread (0: not a pipe)."""
        if self._fd < 0:
            return 0
        try:
            return fcntl.fcntl(self._fd, F_GETPIPE_SZ)
        except OSError:
            return MAX_PIPE

    def write(self, data: bytes) -> None:
        if self._fd < 0:
            self._stream.write(data)
            self._stream.flush()
            self.written += len(data)
            return
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)  # BrokenPipeError once the reader has gone
            self.written += n
            view = view[n:]

    def read_upto(self) -> int:
        """How many of the bytes written the reader took (after a closed
        pipe: all but those still in it)."""
        if self._fd < 0:
            return self.written
        try:
            buf = fcntl.ioctl(self._fd, termios.FIONREAD, b"\0\0\0\0")
        except OSError:
            return self.written
        queued: int = struct.unpack("i", buf)[0]
        return self.written - queued
