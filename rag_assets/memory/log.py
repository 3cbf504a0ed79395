"""The durable event log of a source's memories and notes: JSON lines, append-only, never rewritten.

    <data_dir>/memory/<source>.jsonl      one event per line: remember | forget | note

Why JSON lines and not SQLite: the log is an audit trail that is only ever appended to and read from
the start (or from a byte offset the index asset recorded), never queried or updated in place. A text
file keeps that honest (no UPDATE is possible), is readable with `tail`/`jq`, diffs and backs up as is,
and a byte offset is a free, exact watermark for "events newer than the last materialization".

Safe with several writers (two MCP servers, the CLI): every append opens the file with O_APPEND, takes
an exclusive `flock`, writes the whole line with one `write`, `fsync`s, then unlocks; readers take a
shared `flock` and only ever consume complete lines (ending in a newline), so a line is seen whole or
not at all, and a line torn by a crash mid-write is skipped (and counted), never misread.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

LOG_VERSION = 1
OPS = ("remember", "forget", "note")


def memory_dir(data_dir: str | Path) -> Path:
    return Path(data_dir) / "memory"


def log_path(data_dir: str | Path, source: str) -> Path:
    return memory_dir(data_dir) / f"{source}.jsonl"


def new_id(prefix: str) -> str:
    """`m-…` for memories, `n-…` for notes: 12 random hex digits, unique across sources and writers."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass
class Event:
    op: str  # remember | forget | note
    id: str
    ts: float  # epoch seconds of the write
    data: dict = field(default_factory=dict)  # the op's fields (text, category, tags, ... | ids | title, body)
    offset: int = 0  # byte offset of the line in the log (set by read_events)

    def to_json(self) -> str:
        return json.dumps({"v": LOG_VERSION, "op": self.op, "id": self.id, "ts": round(self.ts, 6), **self.data},
                          ensure_ascii=False, separators=(",", ":"), sort_keys=False)

    @classmethod
    def from_json(cls, line: str, offset: int = 0) -> "Event":
        row = json.loads(line)
        op, eid, ts = row.pop("op"), row.pop("id"), float(row.pop("ts"))
        row.pop("v", None)
        if op not in OPS:
            raise ValueError(f"unknown op {op!r}")
        return cls(op, eid, ts, row, offset)


def append(data_dir: str | Path, source: str, event: Event) -> int:
    """Append one event durably; returns the log size after it (bytes). Safe with concurrent writers."""
    return append_line(log_path(data_dir, source), event.to_json())


def append_line(path: Path, text: str) -> int:
    """Append `text` as one line to `path`, durably and whole (O_APPEND, flock, one write, fsync)."""
    created = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (text + "\n").encode("utf-8")
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # a torn line left by a crash: end it, so this event stays whole
            view = memoryview(line)
            while view:  # a regular file takes it in one write; loop for the pathological short write
                view = view[os.write(fd, view):]
            os.fsync(fd)
            size = os.fstat(fd).st_size
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    if created:  # the new file's directory entry must survive a power cut too
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return size


@dataclass
class LogRead:
    events: list[Event]
    end: int  # byte offset just after the last complete line read: the next read starts here
    skipped: int = 0  # damaged lines (a crash mid-write): never misread, counted


def read_events(data_dir: str | Path, source: str, start: int = 0, end: int | None = None) -> LogRead:
    """Complete events from byte `start` (a line start, e.g. a previous `end`) up to `end` (default: all)."""
    path = log_path(data_dir, source)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return LogRead([], start)
    with f:
        fcntl.flock(f.fileno(), fcntl.LOCK_SH)
        try:
            f.seek(start)
            data = f.read() if end is None else f.read(max(0, end - start))
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    complete = data[: data.rfind(b"\n") + 1]  # an unterminated tail is a write in progress or a torn line
    events, skipped, pos = [], 0, start
    for raw in complete.splitlines(keepends=True):
        try:
            events.append(Event.from_json(raw.decode("utf-8"), pos))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            skipped += 1
        pos += len(raw)
    return LogRead(events, start + len(complete), skipped)


def log_size(data_dir: str | Path, source: str) -> int:
    try:
        return log_path(data_dir, source).stat().st_size
    except FileNotFoundError:
        return 0


def now() -> float:
    return time.time()
