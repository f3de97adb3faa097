"""How records are written: kcat ``-f`` format strings and ``-J`` JSON.

JSON: keys, values and header values that are valid UTF-8 are JSON
strings; other bytes are an object ``{"base64": "..."}``; null is ``null``.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Callable
from typing import Any

from ..records import Record
from .escapes import unescape_bytes

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


_TOKEN = re.compile(rb"%(.?)", re.DOTALL)  # a token, %%, or a lone % at the end


def compile_format(fmt: str) -> Callable[[Record], bytes]:
    """A function writing one record as ``fmt`` says (kcat's tokens: %t %p
    %o %k %s %T %h %K %S, %% for a percent sign; the escapes of
    :mod:`.escapes`: \\n \\t \\r \\0 \\\\ \\xHH, in the text between tokens)."""
    data = os.fsencode(fmt)
    parts: list[bytes | Part] = []
    lit = b""
    end = 0
    for m in _TOKEN.finditer(data):
        lit += unescape_bytes(data[end:m.start()], "-f")
        end = m.end()
        name = m.group(1).decode("latin-1")
        if name == "%":
            lit += b"%"
        elif name in _TOKENS:
            if lit:
                parts.append(lit)
                lit = b""
            parts.append(_TOKENS[name])
        elif name:
            raise FormatError(f"-f: unknown token %{os.fsdecode(data[m.start(1):])[0]} "
                              f"(use %t %p %o %k %s %T %h %K %S or %%)")
        else:
            raise FormatError("-f: the format ends with a lone %")
    lit += unescape_bytes(data[end:], "-f")
    if lit:
        parts.append(lit)
    if len(parts) == 2 and parts[0] is _TOKENS["s"] and parts[1] == b"\n":
        return lambda r: (r.value or b"") + b"\n"  # the default, kept cheap
    fns = [p if callable(p) else (lambda r, b=p: b) for p in parts]
    return lambda r: b"".join([f(r) for f in fns])
