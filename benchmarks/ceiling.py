"""The ceiling: the least per-record work a Python loop can do.

A bare loop packs fixed-size records (8-byte timestamp, two lengths,
16-byte key, 100-byte value) into a file-backed mmap with one
``struct.pack_into`` per record, and reads them back with one
``struct.unpack_from`` per record. No format, no checks, no API: whatever
minikafka does per record in Python costs at least this much, so it
bounds the per-record rates on this machine.
"""

from __future__ import annotations

import mmap
import os
import struct
import time

from .common import Config, Row, median_of, scratch_dir


def _write_read(path: str, keys: list[bytes], values: list[bytes]) -> tuple[float, float]:
    n = len(values)
    rec = struct.Struct(f"<qii{len(keys[0])}s{len(values[0])}s")
    size = rec.size
    with open(path, "w+b") as f:
        f.truncate(size * n)
        mm = mmap.mmap(f.fileno(), size * n)
    pack_into = rec.pack_into
    ts = time.time_ns() // 1_000_000
    klen, vlen = len(keys[0]), len(values[0])
    t0 = time.perf_counter()
    pos = 0
    for k, v in zip(keys, values, strict=True):
        pack_into(mm, pos, ts, klen, vlen, k, v)
        pos += size
    t_write = time.perf_counter() - t0
    unpack_from = rec.unpack_from
    out = []
    append = out.append
    t0 = time.perf_counter()
    for pos in range(0, size * n, size):
        append(unpack_from(mm, pos))
    t_read = time.perf_counter() - t0
    if len(out) != n or out[-1][4] != values[-1]:
        raise RuntimeError("ceiling loop read back the wrong records")
    del out
    mm.close()
    os.unlink(path)
    return t_write, t_read


def run(cfg: Config, keys: list[bytes], values: list[bytes]) -> list[Row]:
    n = len(values)

    def once() -> dict[str, float]:
        with scratch_dir(cfg.tmp, "ceiling-") as d:
            w, r = _write_read(os.path.join(d, "log"), keys, values)
        return {"write": n / w, "read": n / r}

    cfg.log("  ceiling: bare struct+mmap loop")
    res = median_of(cfg.repeat, once)
    return [
        Row("ceiling", "ceiling: bare loop, pack_into mmap", n, rate=res["write"],
            note="adv vs send() per record", extra={"vs": "mk_send", "key": "ceil_write"}),
        Row("ceiling", "ceiling: bare loop, unpack_from mmap", n, rate=res["read"],
            note="adv vs poll()", extra={"vs": "mk_poll", "key": "ceil_read"}),
    ]
