"""Retention: which closed segments of a partition have expired.

Retention only ever removes whole segments, oldest first, never the active
one, and only by unlinking: processes that still map a segment keep a
valid mapping (nothing is truncated, so no SIGBUS). The partition's writer
applies it, with the writer lock held.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

from .files import unlink_quietly
from .format import index_name, segment_name
from .options import TopicConfig


def _size_on_disk(directory: str, base: int) -> int:
    size = 0
    for name in (segment_name(base), index_name(base)):
        try:
            size += os.stat(os.path.join(directory, name)).st_size
        except FileNotFoundError:
            pass
    return size


def expired(directory: str, bases: list[int], config: TopicConfig,
            seal: Callable[[int], tuple[int, int] | None]) -> Iterator[int]:
    """Bases of the segments past ``retention_ms`` (by their sealed max
    timestamp) or beyond ``retention_bytes`` (segment + index sizes),
    oldest first; stops at the first segment that is kept."""
    if config.retention_ms is None and config.retention_bytes is None:
        return
    sizes = {b: _size_on_disk(directory, b) for b in bases}
    total = sum(sizes.values())
    now_ms = int(time.time() * 1000)
    for b in bases[:-1]:  # never the active segment
        old = False
        if config.retention_ms is not None:
            info = seal(b)
            old = info is not None and info[0] < now_ms - config.retention_ms
        if not old and config.retention_bytes is not None:
            old = total - sizes[b] >= config.retention_bytes
        if not old:
            return
        yield b
        total -= sizes[b]


def remove_segment(directory: str, base: int) -> None:
    """Unlink a segment and its index (see the module docstring)."""
    for name in (segment_name(base), index_name(base)):
        unlink_quietly(os.path.join(directory, name))


def remove_orphan_indexes(directory: str, first_base: int) -> None:
    """Unlink index files older than the first segment: a writer killed
    between the two unlinks of ``remove_segment`` leaves one, which nothing
    else would ever delete (and ``check`` reports)."""
    for name in os.listdir(directory):
        if (len(name) == 26 and name.endswith(".index") and name[:20].isdigit()
                and int(name[:20]) < first_base):
            unlink_quietly(os.path.join(directory, name))
