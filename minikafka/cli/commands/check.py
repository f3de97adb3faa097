"""``minikafka check [--repair]``: verify every file of a data directory."""

from __future__ import annotations

import argparse

from ... import check as checking
from ..common import data_dir
from ..progress import Progress

NAME = "check"
HELP = "verify every file of the data directory (exit 1 on damage); --repair fixes what it can"
ORDER = 60


def register(parser: argparse.ArgumentParser, parent: argparse.ArgumentParser) -> None:
    parser.add_argument("--repair", action="store_true",
                        help="then cut torn tails and rebuild indexes (says what first)")
    parser.set_defaults(func=run)


def _summary(report: checking.CheckReport) -> str:
    return (f"checked {report.files} files ({report.segments} segments, {report.batches} batches, "
            f"{report.records} records): {len(report.findings) or 'no'} problem(s)")


def run(args: argparse.Namespace) -> int:
    root = data_dir(args)
    bar = Progress("check")
    try:
        report = checking.check(root, progress=bar.update)
    finally:
        bar.close()
    for f in report.findings:
        print(f)
    print(_summary(report))
    if report.ok or not args.repair:
        return 0 if report.ok else 1
    todo = report.repairable
    for f in report.findings:
        print(f"will repair: {f.path}: {f.repair}" if f.repair else f"cannot repair: {f}")
    if not todo:
        return 1
    bar = Progress("repair")
    try:
        after = checking.repair(root, report, progress=bar.update)
    finally:
        bar.close()
    for f in after.repaired:
        print(f"repaired: {f.path}: {f.repair}")
    for f in after.findings:
        print(f"remains: {f}")
    print(_summary(after))
    return 0 if after.ok else 1
