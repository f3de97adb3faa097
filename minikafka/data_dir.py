"""The data directory's format marker, ``<data>/minikafka.json``.

The marker says a directory is minikafka's and which on-disk format it
holds (``{"format": 1}``). It is written once, when a directory becomes a
data directory, and never changed; a newer format is refused, never
rewritten.

Creation rule: only an empty directory (or one holding nothing but
minikafka's own entries, from before the marker existed) becomes a data
directory — never someone else's files. Many processes may open a new
directory at once: each writes the marker under a name of its own and
renames it into place (the contents are identical, so the last rename
wins harmlessly), and one that finds a marker appeared while it looked
reads that one instead of calling it a foreign file.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from .errors import CorruptLogError, InvalidArgumentError
from .format import DATA_DIR_VERSION

MARKER = "minikafka.json"


def open_data_dir(path: Path, own_entries: frozenset[str]) -> None:
    """Make ``path`` a data directory, or check that it is one this
    minikafka reads (``CorruptLogError`` if not; ``InvalidArgumentError``
    for a directory of other files)."""
    marker = path / MARKER
    if path.exists() and not path.is_dir():  # else "Not a directory: <path>/minikafka.json"
        raise InvalidArgumentError(f"{path} is a file, not a data directory")
    while True:
        try:
            text = marker.read_text()
        except FileNotFoundError:
            if _create(path, own_entries):
                return
            continue  # another process wrote it while we looked: read that one
        _check(marker, text)
        return


def _create(path: Path, own_entries: frozenset[str]) -> bool:
    """Write the marker into an empty ``path``; False if one appeared meanwhile."""
    os.makedirs(path, exist_ok=True)
    names = os.listdir(path)
    if MARKER in names:
        return False
    foreign = sorted(n for n in names if n not in own_entries and not n.startswith(f"{MARKER}."))
    if foreign:
        raise InvalidArgumentError(
            f"{path} is not a minikafka data directory (no {MARKER}) and is not "
            f"empty ({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}): "
            f"refusing to take it over")
    write_marker(path)
    return True


def write_marker(path: Path) -> None:
    """Write (or, for ``check``'s repair, rewrite) ``path``'s marker whole:
    under a name of this thread's own, renamed into place."""
    tmp = path / f"{MARKER}.{os.getpid()}.{threading.get_ident()}.tmp"
    tmp.write_text(json.dumps({"format": DATA_DIR_VERSION}) + "\n")
    os.replace(tmp, path / MARKER)


def _check(marker: Path, text: str) -> None:
    try:
        meta = json.loads(text)
    except ValueError as e:
        raise CorruptLogError(f"{marker}: not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise CorruptLogError(f"{marker}: must be a JSON object, not {type(meta).__name__}")
    version = meta.get("format", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise CorruptLogError(f"{marker}: data format must be an int, not {version!r}")
    if version > DATA_DIR_VERSION:
        raise CorruptLogError(
            f"{marker}: data format {version} is newer than this minikafka reads ({DATA_DIR_VERSION})")
