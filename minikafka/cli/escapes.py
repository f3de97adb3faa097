"""The backslash escapes of ``-K`` and ``-f``, as kcat reads them.

``\\n`` ``\\t`` ``\\r`` ``\\0`` ``\\\\`` and ``\\xHH`` (two hex digits: any
byte); every other character, a backslash before anything else included,
stands for itself. Text is taken as the bytes the user typed
(``os.fsencode``), so non-ASCII separators stay what they were.
"""

from __future__ import annotations

import os
import re

from .common import UsageError

ESCAPES = {b"n": b"\n", b"t": b"\t", b"r": b"\r", b"0": b"\0", b"\\": b"\\"}
_HEX = re.compile(rb"[0-9A-Fa-f]{2}")


def escape_at(data: bytes, i: int, option: str) -> tuple[bytes, int] | None:
    """The escape starting at ``data[i]`` (a backslash) and the index after
    it, or None if it is no escape; a ``\\x`` without two hex digits is a
    usage error naming ``option``."""
    nxt = data[i + 1:i + 2]
    if nxt in ESCAPES:
        return ESCAPES[nxt], i + 2
    if nxt == b"x":
        if not _HEX.fullmatch(data, i + 2, i + 4):
            bad = data[i:i + 4].decode(errors="replace")
            raise UsageError(f"{option}: bad escape '{bad}': \\x takes two hex digits (\\x1f)")
        return bytes([int(data[i + 2:i + 4], 16)]), i + 4
    return None


def unescape(text: str, option: str) -> bytes:
    """``text`` (a command-line argument) as bytes, its escapes replaced."""
    data = os.fsencode(text)
    out = bytearray()
    i = 0
    while i < len(data):
        c = data[i:i + 1]
        found = escape_at(data, i, option) if c == b"\\" else None
        if found is None:
            out += c
            i += 1
        else:
            out += found[0]
            i = found[1]
    return bytes(out)
