"""``Closeable``: context-manager support for the objects users close."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Closeable:
    """``with obj: ...`` calls ``obj.close()`` on exit; entering a closed
    object raises ClosedError, as a closed file does."""

    def close(self) -> None:
        raise NotImplementedError

    def _check_open(self) -> None:
        """Raise ClosedError if ``close()`` was called."""

    def __enter__(self) -> Self:
        self._check_open()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
