"""``HeldFile``: a small file's parsed content, parsed again only once the
file was replaced (written elsewhere, renamed into place).

The key is (inode, mtime, size) from one ``stat``, and the file last read
is held open. Without the held descriptor its inode is freed by the next
replace and may be reused by the one after; with a coarse timestamp and an
equal size that file would then look unchanged, and the cache would keep
the old content (seen with ``state.json``: a member never adopted its new
assignment).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import IO, Generic, TypeVar

T = TypeVar("T")
FileKey = tuple[int, int, int]


def file_key(st: os.stat_result) -> FileKey:
    return st.st_ino, st.st_mtime_ns, st.st_size


class HeldFile(Generic[T]):
    """``parse(file, path)`` of the file at ``path``, cached by its key.

    Not thread-safe: the caller serializes (each user holds its own, or a lock).
    """

    def __init__(self, path: str, parse: Callable[[IO[bytes], str], T]) -> None:
        self.path = path
        self._parse = parse
        self.key: FileKey | None = None  # set to None to parse again at the next get()
        self._value: T | None = None
        self._held: IO[bytes] | None = None  # the file ``_value`` was parsed from

    def changed(self) -> bool:
        """Whether the file was replaced (or removed) since the last get(): one stat."""
        try:
            return file_key(os.stat(self.path)) != self.key
        except FileNotFoundError:
            return self.key is not None

    def get(self) -> T | None:
        """The parsed content; None if the file does not exist. What
        ``parse`` raises (and OSErrors other than a missing file) propagate."""
        try:
            key: FileKey | None = file_key(os.stat(self.path))
        except FileNotFoundError:
            key = None
        if key is not None and key == self.key:
            return self._value
        try:
            f = open(self.path, "rb")  # noqa: SIM115 (held open past this call: see the module docstring)
        except FileNotFoundError:
            self.close()
            return None
        try:
            st = os.fstat(f.fileno())
            value = self._parse(f, self.path)
        except BaseException:
            f.close()
            raise
        self.close()
        self._held, self.key, self._value = f, file_key(st), value
        return value

    def close(self) -> None:
        held, self._held, self.key, self._value = self._held, None, None, None
        if held is not None:
            held.close()
