"""``Closeable``: context-manager support for the objects users close."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Closeable:
    """``with obj: ...`` calls ``obj.close()`` on exit."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
