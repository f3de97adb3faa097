"""How records are written: kcat ``-f`` format strings and ``-J`` JSON.

JSON: keys, values and header values that are valid UTF-8 are JSON
strings; other bytes are an object ``{"base64": "..."}``; null is ``null``.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from typing import Any

from ..records import Record
from .escapes import escape_at

Part = Callable[[Record], bytes]


def text(data: bytes | None) -> Any:
    """A key, value or header value as JSON: str, {"base64": ...} or None."""
    if data is None:
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode()}


def record_json(r: Record) -> dict[str, Any]:
    return {
        "topic": r.topic, "partition": r.partition, "offset": r.offset, "timestamp": r.timestamp,
        "key": text(r.key), "value": text(r.value),
        "headers": [[name, text(value)] for name, value in r.headers],
    }


_encode = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps(**kw) builds one per call


def json_line(r: Record) -> bytes:
    return _encode(record_json(r)).encode() + b"\n"


def _headers(r: Record) -> bytes:
    return b",".join(n.encode() if v is None else n.encode() + b"=" + v for n, v in r.headers)


_TOKENS: dict[str, Part] = {
    "t": lambda r: r.topic.encode(),
    "p": lambda r: b"%d" % r.partition,
    "o": lambda r: b"%d" % r.offset,
    "T": lambda r: b"%d" % r.timestamp,
    "k": lambda r: r.key or b"",
    "s": lambda r: r.value or b"",
    "K": lambda r: b"%d" % (-1 if r.key is None else len(r.key)),
    "S": lambda r: b"%d" % (-1 if r.value is None else len(r.value)),
    "h": _headers,
}


class FormatError(ValueError):
    pass


def compile_format(fmt: str) -> Callable[[Record], bytes]:
    """A function writing one record as ``fmt`` says (kcat's tokens: %t %p
    %o %k %s %T %h %K %S, %% for a percent sign; the escapes of
    :mod:`.escapes`: \\n \\t \\r \\0 \\\\ \\xHH)."""
    data = os.fsencode(fmt)
    parts: list[bytes | Part] = []
    lit = bytearray()
    i = 0
    while i < len(data):
        c = data[i:i + 1]
        if c == b"%":
            nxt = data[i + 1:i + 2]
            if nxt == b"%":
                lit += b"%"
            elif nxt and nxt.decode("latin-1") in _TOKENS:
                if lit:
                    parts.append(bytes(lit))
                    lit = bytearray()
                parts.append(_TOKENS[nxt.decode("latin-1")])
            elif nxt:
                raise FormatError(f"-f: unknown token %{os.fsdecode(data[i + 1:])[0]} "
                                  f"(use %t %p %o %k %s %T %h %K %S or %%)")
            else:
                raise FormatError("-f: the format ends with a lone %")
            i += 2
            continue
        found = escape_at(data, i, "-f") if c == b"\\" else None
        if found is None:
            lit += c
            i += 1
        else:
            lit += found[0]
            i = found[1]
    if lit:
        parts.append(bytes(lit))
    if len(parts) == 2 and parts[0] is _TOKENS["s"] and parts[1] == b"\n":
        return lambda r: (r.value or b"") + b"\n"  # the default, kept cheap
    fns = [p if callable(p) else (lambda r, b=p: b) for p in parts]
    return lambda r: b"".join([f(r) for f in fns])
