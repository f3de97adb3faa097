"""Verify every file of a data directory, and repair what can be repaired.

``check(path)`` reads, without changing anything: the directory marker,
each topic's ``topic.json``, every segment batch by batch (header, checksum,
offsets following on, records decoding to exactly the batch length, seals
agreeing with the log), every index entry against the log, and each
group's offsets and state files. Each problem is a :class:`Finding` naming
the file and byte position. A live directory may be checked: a partition
that looks damaged is checked again under its ``writer.lock`` (a writer
mid-roll is not damage), so writers to it wait for that second look.

``repair(path, report)`` fixes what the library's own recovery rules fix
(docs/format.md, "Recovery rules"): it cuts a torn tail and finishes a
half-done roll (tail recovery, under ``writer.lock``), and rebuilds damaged
or missing indexes. Damage inside sealed data is never "repaired": the
records are reported, not discarded.

All decoding goes through :func:`open_segment_file`, :func:`walk_segment`,
:func:`batch_fields` and :func:`batch_records`, which use
``batch.BatchWalker`` and ``batch.decode_records`` — the same code the
readers run — and repairs through ``Partition.recover`` (tail recovery and
the rebuild of damaged indexes) in :func:`_repair_partition`.

Why one module of ~540 lines: the checker walks every file kind once and
its findings drive the repairs; splitting them would split one report.
"""

from __future__ import annotations

import json
import mmap
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import attrs

from .batch import BatchInfo, BatchWalker, Status, decode_records, valid_batch_after
from .data_dir import MARKER, write_marker
from .errors import CorruptLogError, MiniKafkaError, TimeoutError
from .files import unlink_quietly
from .format import (
    BATCH_HEADER,
    BATCH_HEADER_SIZE,
    DATA_DIR_VERSION,
    INT64_MIN,
    SEGMENT_HEADER,
    SEGMENT_HEADER_SIZE,
    U32,
    index_name,
    is_segment_name,
)
from .group_state import STATE, read_state
from .index import OffsetIndex
from .locking import FileLock
from .offsets import decode_file, decode_group_id
from .options import wait_limit
from .records import Record
from .segment import Segment, UnfinishedSegmentError, tiny_file_error
from .topic import METADATA, read_metadata

Progress = Callable[[int, int], None]  # (bytes done, bytes in total)
RECHECK_WAIT = 5.0  # seconds to wait for a partition's writer lock to confirm findings


@attrs.frozen
class Finding:
    """One problem in one file.

    ``repair`` says what ``repair()`` does about it, or is ``None`` when it
    cannot be fixed without losing records (then a person must decide).
    """

    path: str
    position: int | None
    problem: str
    repair: str | None = None

    def __str__(self) -> str:
        where = self.path if self.position is None else f"{self.path} @ byte {self.position}"
        return f"{where}: {self.problem}"


@attrs.frozen
class CheckReport:
    """What ``check`` (or ``repair``) found; ``ok`` when nothing."""

    path: str
    findings: tuple[Finding, ...]
    files: int
    segments: int
    batches: int
    records: int
    repaired: tuple[Finding, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def repairable(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.repair is not None)


# -- the decoding entry points (ported to the batch walker at merge) --------


def open_segment_file(path: str) -> Segment:
    """Map one segment file read-only, whatever its name; its header is
    checked as readers check it (``CorruptLogError`` if damaged)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size < SEGMENT_HEADER_SIZE + BATCH_HEADER_SIZE:
            raise tiny_file_error(path, os.pread(fd, size, 0))
        mm = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
    finally:
        os.close(fd)
    base = SEGMENT_HEADER.unpack_from(mm, 0)[3]
    try:
        return Segment(path, base, mm)
    except BaseException:
        mm.close()
        raise


class Batch(NamedTuple):
    """One step of a walk through a segment."""

    position: int
    info: BatchInfo  # status BATCH, END, EMPTY (the end of the log) or INVALID
    expected_offset: int  # the offset the batch at this position must start with
    raw_length: int  # the length word found here (for INVALID: what it claimed)


def walk_segment(seg: Segment) -> Iterator[Batch]:
    """Every batch of a segment in order (``batch.BatchWalker``), then the
    step that ends the walk (END marker, EMPTY, or INVALID)."""
    walker = BatchWalker(seg.mm, seg.capacity, SEGMENT_HEADER_SIZE, seg.base)
    for info in walker:
        yield Batch(walker.pos, info, walker.offset, info.length)
    pos = walker.pos
    raw = U32.unpack_from(seg.mm, pos)[0] if pos + 4 <= seg.capacity else 0
    yield Batch(pos, BatchInfo(walker.status), walker.offset, raw)


def batch_fields(info: BatchInfo) -> tuple[int, int, int]:
    """(base offset, first timestamp, max timestamp) of a valid batch."""
    fields = BATCH_HEADER.unpack_from(info.data, 0)
    return fields[5], fields[8], fields[9]


def batch_records(info: BatchInfo, topic: str = "", partition: int = -1) -> tuple[list[Record], int]:
    """The records of a valid batch, and the byte position after the last."""
    return decode_records(info.data, BATCH_HEADER_SIZE, info.count, topic, partition, info.base_offset)


# -- the check ---------------------------------------------------------------


class _Checker:
    def __init__(self, root: str, progress: Progress | None) -> None:
        self.root = root
        self.progress = progress
        self.findings: list[Finding] = []
        self.files = self.segments = self.batches = self.records = 0
        self.done = self.total = 0

    def find(self, path: str, position: int | None, problem: str, repair: str | None = None) -> None:
        self.findings.append(Finding(path, position, problem, repair))

    def run(self) -> CheckReport:
        self.check_marker()
        topics_dir = os.path.join(self.root, "topics")
        partitions = []
        for name in sorted(os.listdir(topics_dir)) if os.path.isdir(topics_dir) else ():
            partitions += self.check_topic(os.path.join(topics_dir, name), name)
        self.total = sum(
            os.stat(os.path.join(d, n)).st_size for d in partitions for n in os.listdir(d)
            if n.endswith(".log")
        )
        for d in partitions:
            self.check_partition(d)
        groups_dir = os.path.join(self.root, "groups")
        for name in sorted(os.listdir(groups_dir)) if os.path.isdir(groups_dir) else ():
            self.check_group(os.path.join(groups_dir, name))
        return CheckReport(self.root, tuple(self.findings), self.files, self.segments,
                           self.batches, self.records)

    def check_marker(self) -> None:
        path = os.path.join(self.root, MARKER)
        self.files += 1
        # Only a directory with minikafka's own folders gets its marker
        # written again: a mistyped -d must not turn a stranger's into one.
        ours = any(os.path.isdir(os.path.join(self.root, n)) for n in ("topics", "groups"))
        rewrite = f"write it again (format {DATA_DIR_VERSION})" if ours else None
        not_ours = "" if ours else " (no topics/ or groups/ here: not repaired)"
        try:
            with open(path) as f:
                meta = json.load(f)
        except FileNotFoundError:
            self.find(path, None, "missing: not a minikafka data directory, or its marker was "
                                  f"deleted{not_ours}", rewrite)
            return
        except ValueError as e:
            self.find(path, None, f"not valid JSON ({e}){not_ours}", rewrite)
            return
        if not isinstance(meta, dict) or not isinstance(meta.get("format"), int):
            self.find(path, None, f"has no format number{not_ours}", rewrite)
        elif meta["format"] > DATA_DIR_VERSION:
            self.find(path, None, f"data format {meta['format']} is newer than this minikafka "
                                  f"reads ({DATA_DIR_VERSION})")

    def check_topic(self, directory: str, name: str) -> list[str]:
        path = os.path.join(directory, METADATA)
        self.files += 1
        try:
            config = read_metadata(directory, name)
        except MiniKafkaError as e:  # TopicNotFoundError: topic.json missing
            self.find(path, None, str(e).removeprefix(f"{path}: ") if os.path.exists(path)
                      else "missing: the topic is invisible and its records unreachable")
            return []
        except (TypeError, ValueError) as e:
            self.find(path, None, f"bad configuration ({e})")
            return []
        out = []
        for p in range(config.partitions):
            d = os.path.join(directory, str(p))
            if not os.path.isdir(d):
                self.find(d, None, f"partition directory {p} of {config.partitions} is missing")
            else:
                out.append(d)
        return out

    def check_partition(self, directory: str) -> None:
        """Check one partition; findings are confirmed under its writer lock:
        a live writer between two steps (a roll adds a segment after the
        listing, retention deletes one) looks like damage, so a partition
        with findings is checked again holding ``writer.lock``, which every
        writer holds for each change (RECHECK_WAIT s at most, else the first
        result stands)."""
        mark = (len(self.findings), self.files, self.segments, self.batches, self.records)
        try:
            self._check_partition(directory)
            if len(self.findings) == mark[0]:
                return
        except FileNotFoundError as e:  # kept only if the second look cannot be had
            self.find(directory, None, f"{e.filename or e} vanished during the check (a writer or "
                                       f"retention at work); not verified, check again")
        lock = FileLock(os.path.join(directory, "writer.lock"))
        try:
            if not os.path.exists(lock.path) or not lock.acquire(timeout=RECHECK_WAIT):
                return
        except (OSError, TimeoutError):
            lock.close()
            return
        try:
            del self.findings[mark[0]:]
            self.files, self.segments, self.batches, self.records = mark[1:]
            if os.path.isdir(directory):  # else the topic was deleted meanwhile
                self._check_partition(directory)
        finally:
            lock.close()

    def _check_partition(self, directory: str) -> None:
        names = os.listdir(directory)
        bases = sorted(int(n[:20]) for n in names if is_segment_name(n))
        expected: int | None = None  # where the previous segment ended
        for i, base in enumerate(bases):
            last = i == len(bases) - 1
            end = self.check_segment(directory, base, last, expected)
            expected = end
        for n in names:
            if n.endswith(".index") and (len(n) != 26 or not n[:20].isdigit() or int(n[:20]) not in bases):
                self.find(os.path.join(directory, n), None, "index without a segment", "delete it")

    def check_segment(self, directory: str, base: int, last: bool, expected: int | None) -> int | None:
        """Check one segment and its index; return its end offset if known."""
        path = os.path.join(directory, f"{base:020d}.log")
        self.files += 1
        self.segments += 1
        try:
            seg = open_segment_file(path)
        except UnfinishedSegmentError:
            if last:
                self.find(path, 0, "header never written (a roll cut short); holds no records",
                          "create the segment again (tail recovery)")
            else:
                self.find(path, 0, "header damaged (nothing published in it), but later segments exist")
            return None
        except CorruptLogError as e:
            self.find(path, 0, str(e).removeprefix(f"{path}: "))
            return None
        try:
            if seg.base != base:
                self.find(path, 8, f"header names base offset {seg.base}, the file name {base}")
            if expected is not None and base != expected:
                self.find(path, None, f"starts at offset {base} but the previous segment ends at {expected}"
                          f" ({'gap' if base > expected else 'overlap'})")
            return self.walk(seg, directory, last)
        finally:
            seg.close()

    def walk(self, seg: Segment, directory: str, last: bool) -> int | None:
        path = seg.path
        sealed = seg.seal_info()
        positions: dict[int, tuple[int, int]] = {}  # batch position -> (offset, max ts before)
        max_ts, end_offset, end_pos = INT64_MIN, seg.base, SEGMENT_HEADER_SIZE
        ended = None
        for step in walk_segment(seg):
            info = step.info
            if info.status is Status.BATCH:
                positions[step.position] = (step.expected_offset, max_ts)
                records, after = batch_records(info)
                if after != info.length:
                    self.find(path, step.position, f"batch at offset {step.expected_offset}: records end at "
                              f"byte {after} of a {info.length}-byte batch")
                first_ts = batch_fields(info)[1]
                stamps = [r.timestamp for r in records]
                if stamps and (stamps[0] != first_ts or max(stamps) != info.max_timestamp):
                    self.find(path, step.position, f"batch at offset {step.expected_offset}: header "
                              f"timestamps disagree with its records")
                self.batches += 1
                self.records += info.count
                max_ts = max(max_ts, info.max_timestamp)
                end_offset = step.expected_offset + info.count
                end_pos = step.position + info.length
                self._advance(info.length)
            else:
                ended = step
        assert ended is not None
        pos, status = ended.position, ended.info.status
        if status is Status.INVALID:
            what = f"batch at offset {end_offset} is damaged (bad length, offset, version or checksum)"
            if sealed is not None or not last:
                self.find(path, pos, f"{what} in a {'sealed' if sealed else 'closed'} segment; "
                          f"records from offset {end_offset} in this file are unreadable")
            elif valid_batch_after(seg.mm, seg.capacity, pos):
                self.find(path, pos, f"{what}, and valid batches follow it: not a torn tail, "
                          f"cutting would discard them (copy the file aside before any writer opens it)")
            else:
                self.find(path, pos, f"torn tail: {what}, where the log ends",
                          f"cut the log at byte {pos} (offset {end_offset})")
        elif status is Status.END:
            if sealed is None:
                self.find(path, 6, "end-of-segment marker without a seal (a roll cut short)",
                          "seal it and open the next segment (tail recovery)")
            if last:
                self.find(path, pos, "ends with an end-of-segment marker but no next segment exists",
                          f"create segment {end_offset} (tail recovery)")
        elif status is Status.EMPTY:
            if sealed is not None:
                self.find(path, pos, "sealed, but the log ends without an end-of-segment marker")
            elif not last:
                self.find(path, pos, "no end-of-segment marker, but later segments exist")
        if sealed is not None and status is not Status.INVALID:
            seal_ts, seal_end = sealed
            if seal_end != end_offset or (positions and seal_ts != max_ts):
                self.find(path, 32, f"seal says end offset {seal_end}, max timestamp {seal_ts}; the log "
                          f"holds {end_offset}, {max_ts}")
        complete = sealed is not None and status is not Status.INVALID
        self.check_index(directory, seg, positions, end_pos, complete)
        return end_offset if status is not Status.INVALID else None

    def check_index(self, directory: str, seg: Segment, positions: dict[int, tuple[int, int]],
                    end_pos: int, complete: bool) -> None:
        """``complete``: the walk reached a proper end, so every entry must
        point at a batch it saw; otherwise entries past where it stopped
        (a torn tail, or entries leading past damage) cannot be checked."""
        path = os.path.join(directory, index_name(seg.base))
        rebuild = "rebuild the index from the log"
        if not os.path.exists(path):
            self.find(path, None, "missing", rebuild)
            return
        self.files += 1
        index = OffsetIndex.open(directory, seg.base)
        if index is None:
            self.find(path, 0, "unusable (too short, wrong magic, base offset or version)", rebuild)
            return
        try:
            prev = (-1, 0, INT64_MIN)
            for i in range(index.count):
                rel, pos, max_before = entry = index.entry(i)
                at = 32 + i * 16
                expect = positions.get(pos)
                if expect is None:
                    if not complete and pos >= end_pos:
                        continue  # past a torn tail (recovery drops it) or past damage (kept)
                    self.find(path, at, f"entry {i} points at byte {pos}, where no batch starts", rebuild)
                    return
                if seg.base + rel != expect[0] or max_before != expect[1]:
                    self.find(path, at, f"entry {i} says offset {seg.base + rel}, max timestamp "
                              f"{max_before}; the log has {expect[0]}, {expect[1]}", rebuild)
                    return
                if rel <= prev[0] or pos <= prev[1] or max_before < prev[2]:
                    self.find(path, at, f"entry {i} is out of order", rebuild)
                    return
                prev = entry
        finally:
            index.close()

    def check_group(self, directory: str) -> None:
        try:
            group = decode_group_id(os.path.basename(directory))
        except (ValueError, IndexError):
            self.find(directory, None, "directory name is not an encoded group id")
            return
        path = os.path.join(directory, "offsets")
        if os.path.exists(path):
            self.files += 1
            with open(path, "rb") as f:
                data = f.read()
            try:
                decode_file(data, path)
            except CorruptLogError as e:
                self.find(path, None, f"group {group!r}: {str(e).removeprefix(path + ': ')}")
        path = os.path.join(directory, STATE)
        if os.path.exists(path):
            self.files += 1
            try:
                read_state(directory)  # the consumers' own parser: what it refuses is damage
            except CorruptLogError as e:
                self.find(path, None, f"group {group!r}: {str(e).removeprefix(path + ': ')}",
                          REMOVE_STATE)

    def _advance(self, n: int) -> None:
        self.done += n
        if self.progress is not None:
            self.progress(self.done, self.total)


#: The repair of a damaged ``state.json``: derived data, as an index is —
#: the members write it again at their next poll (docs/guarantees.md, row 8).
REMOVE_STATE = "remove it: the group's members write it again (its committed offsets stay)"


def check(path: str | os.PathLike[str], *, progress: Progress | None = None) -> CheckReport:
    """Verify every file of the data directory at ``path``; changes nothing.

    ``progress(done, total)`` is called as segment bytes are verified.
    Raises ``FileNotFoundError`` if ``path`` is not a directory.
    """
    root = os.fspath(path)
    if not os.path.isdir(root):
        what = "is a file, not a data directory" if os.path.exists(root) else "no such data directory"
        raise FileNotFoundError(f"{root}: {what}")
    return _Checker(os.path.abspath(root), progress).run()


def repair(path: str | os.PathLike[str], report: CheckReport | None = None, *,
           progress: Progress | None = None, timeout: float | None = None) -> CheckReport:
    """Fix the repairable findings of ``report`` (a fresh ``check`` if
    None) with the library's recovery, then check again. The returned
    report lists what was repaired and what remains.

    Each repair waits at most ``timeout`` seconds (default: the
    ``request_timeout`` of ``BrokerOptions``, 30 s) for the lock it needs
    (a partition's writer lock, a group's lock), then raises
    :class:`~minikafka.TimeoutError` naming the lock and its holder; what
    was repaired before stays repaired."""
    from .broker import Broker  # the recovery runs through a Broker, under its locks

    limit = wait_limit(timeout)  # TypeError / InvalidArgumentError naming timeout
    root = os.path.abspath(os.fspath(path))
    if report is None:
        report = check(root)
    todo = report.repairable
    if not todo:
        return attrs.evolve(report, repaired=())
    if any(f.path == os.path.join(root, MARKER) for f in todo):
        write_marker(Path(root))
    with Broker(root) as broker:
        if timeout is None:
            wait = broker.options.request_timeout
        else:
            wait = threading.TIMEOUT_MAX if limit is None else limit
        for name in broker.list_topics():
            topic = broker.topic(name)
            tdir = os.path.join(root, "topics", name)
            for p in range(topic.partitions):
                pdir = os.path.join(tdir, str(p))
                mine = [f for f in todo if os.path.dirname(f.path) == pdir]
                if mine:
                    # Tail recovery would cut at damage that has valid batches after it.
                    blocked = any(os.path.dirname(f.path) == pdir and f.repair is None
                                  for f in report.findings)
                    _repair_partition(topic.partition(p), pdir, mine, tail_recovery=not blocked,
                                      timeout=wait)
        for f in todo:
            if f.repair == REMOVE_STATE:
                store = broker.offset_store(decode_group_id(os.path.basename(os.path.dirname(f.path))))
                with store.locked(wait):  # no member writes it meanwhile
                    unlink_quietly(f.path)
    after = check(root, progress=progress)
    still = {(f.path, f.problem) for f in after.findings}
    return attrs.evolve(after, repaired=tuple(f for f in todo if (f.path, f.problem) not in still))


def _repair_partition(part: object, pdir: str, findings: list[Finding], tail_recovery: bool,
                      timeout: float) -> None:
    """Repair one partition, waiting at most ``timeout`` s in all for its
    writer lock (a writer frozen holding it waited forever)."""
    from .partition import Partition

    assert isinstance(part, Partition)
    deadline = time.monotonic() + timeout

    def left() -> float:
        return max(0.0, deadline - time.monotonic())

    bases = part.bases()
    active = bases[-1] if bases else None
    for f in findings:
        name = os.path.basename(f.path)
        if name.endswith(".index") and (len(name) != 26 or not name[:20].isdigit()
                                        or int(name[:20]) not in bases):
            os.unlink(f.path)  # an orphan index
        elif name.endswith(".index") and int(name[:20]) != active:
            part.damaged_indexes.add(int(name[:20]))  # sealed: recover() rebuilds it
        elif name.endswith(".index") and tail_recovery:
            # The active segment's index: tail recovery recreates a missing
            # one and fills it from the log.
            with part.writer_locked(left()):
                try:
                    os.unlink(f.path)
                except FileNotFoundError:
                    pass
    if tail_recovery:
        # Torn tail, half-done roll, active index, damaged sealed indexes.
        part.recover(left())
    elif part.damaged_indexes:
        # Tail recovery would cut at damage that has valid batches after it:
        # rebuild only the sealed indexes, under the writer's locks.
        part.rebuild_indexes(left())
