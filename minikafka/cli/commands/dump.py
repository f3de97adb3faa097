"""``minikafka dump SEGMENT_FILE [-J]``: every batch and record of a segment."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ...batch import Status
from ...check import batch_fields, batch_records, open_segment_file, walk_segment
from ..common import CliError
from ..output import record_json

NAME = "dump"
HELP = "print the batches and records of one segment file"
ORDER = 50


def register(parser: argparse.ArgumentParser, parent: argparse.ArgumentParser) -> None:
    parser.add_argument("segment", metavar="SEGMENT_FILE", help="a <base offset>.log file")
    parser.add_argument("-J", "--json", action="store_true", help="one JSON object per line")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if os.path.isdir(args.segment):  # else mmap's "No such device"
        raise CliError(f"{args.segment}: is a directory; dump takes one segment file "
                       f"(topics/<topic>/<partition>/<base offset>.log)")
    seg = open_segment_file(args.segment)
    emit = _json if args.json else _text
    damaged = False
    try:
        seal = seg.seal_info()
        emit({"type": "segment", "path": seg.path, "base_offset": seg.base, "capacity": seg.capacity,
              "created_ms": seg.created_ms, "sealed": seal is not None,
              "max_timestamp": seal[0] if seal else None, "end_offset": seal[1] if seal else None})
        for step in walk_segment(seg):
            info = step.info
            if info.status is Status.BATCH:
                base, first_ts, max_ts = batch_fields(info)
                records, _ = batch_records(info)
                emit({"type": "batch", "position": step.position, "base_offset": base, "count": info.count,
                      "length": info.length, "first_timestamp": first_ts, "max_timestamp": max_ts,
                      "checksum_ok": True,
                      "records": [{k: v for k, v in record_json(r).items() if k not in ("topic", "partition")}
                                  for r in records]})
            else:
                damaged = info.status is Status.INVALID
                emit({"type": "end", "position": step.position, "status": info.status.value,
                      "expected_offset": step.expected_offset, "length_word": step.raw_length})
    finally:
        seg.close()
    return 1 if damaged else 0


def _json(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


def _text(obj: dict[str, Any]) -> None:
    w = sys.stdout.write
    kind = obj["type"]
    if kind == "segment":
        sealed = (f"sealed: end offset {obj['end_offset']}, max timestamp {obj['max_timestamp']}"
                  if obj["sealed"] else "active (not sealed)")
        w(f"segment {obj['path']}: base offset {obj['base_offset']}, capacity {obj['capacity']}, "
          f"created {obj['created_ms']}, {sealed}\n")
    elif kind == "batch":
        w(f"batch position {obj['position']} base offset {obj['base_offset']} count {obj['count']} "
          f"length {obj['length']} first timestamp {obj['first_timestamp']} max timestamp "
          f"{obj['max_timestamp']} checksum ok\n")
        for r in obj["records"]:
            w(f"  offset {r['offset']} timestamp {r['timestamp']} key {json.dumps(r['key'])} "
              f"value {json.dumps(r['value'])} headers {json.dumps(r['headers'])}\n")
    else:
        what = {
            "empty": "end of log (nothing written after this)",
            "end": "end-of-segment marker (the log continues in the next segment)",
            "invalid": f"INVALID batch (length word {obj['length_word']}): torn, or damaged; "
                       f"checksum or header check failed",
        }[obj["status"]]
        w(f"position {obj['position']} offset {obj['expected_offset']}: {what}\n")
