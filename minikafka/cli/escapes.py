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
# An escape, or a \x that is not one (fewer than two hex digits follow).
_ESCAPE = re.compile(rb"\\(?:([ntr0\\])|x([0-9A-Fa-f]{2})|(x))")


def unescape_bytes(data: bytes, option: str) -> bytes:
    """``data`` with its escapes replaced; a ``\\x`` without two hex digits
    is a usage error naming ``option``."""

    def replace(m: re.Match[bytes]) -> bytes:
        simple, hex_digits, bad = m.groups()
        if bad:
            shown = data[m.start():m.start() + 4].decode(errors="replace")
            raise UsageError(f"{option}: bad escape '{shown}': \\x takes two hex digits (\\x1f)")
        return ESCAPES[simple] if simple else bytes([int(hex_digits, 16)])

    return _ESCAPE.sub(replace, data)


def unescape(text: str, option: str) -> bytes:
    """``text`` (a command-line argument) as bytes, its escapes replaced."""
    return unescape_bytes(os.fsencode(text), option)
