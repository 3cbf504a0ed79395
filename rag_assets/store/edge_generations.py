"""Copy-on-write generations of one Edge collection, so that searches never wait for an index run.

Edge locks a shard's WAL for as long as a process has it loaded, so a shard has one user at a time. We
keep that lock away from readers: a writer never changes the published shard; it writes a copy.

    <collection>/CURRENT.json            {"generation": "g000003-1f2e3d", "points": …}; replaced atomically
    <collection>/g000003-1f2e3d/         a complete, flushed Edge shard; never written again once published
    <collection>/g000004-a9b8c7/         the next one, being written by the one writer (not yet visible)
    <collection>/.writer.lock            flock of that writer (a second writer gets StoreBusyError)
    <collection>/.generations.lock      held briefly: shared to pin a generation, exclusive to collect garbage
    <collection>/pins/g000003-1f2e3d.<pid>.<id>/  a reader's private view: its own WAL and edge_config.json, and
                                         `segments` linking to the generation's; `.lock` is flocked while open

Readers load the view, not the generation, so any number of processes read one generation at once and
the writer's lock is never in their way. Loading a view changes no bytes of the shared segments (Edge
rewrites a few state files with identical content). A generation is deleted once it is neither current,
nor being written, nor pinned by a live reader; a dead reader's flock is gone, so its pin is collected.
A collection written before generations existed is the legacy generation "." (the folder itself).
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from rag_assets.store._files import read_json, write_json_atomic
from rag_assets.store.base import StoreBusyError, StoreError

CURRENT_FILE = "CURRENT.json"
WRITER_LOCK = ".writer.lock"
GENERATIONS_LOCK = ".generations.lock"
PINS = "pins"
LEGACY = "."
META_FILE = "rag_meta.json"  # the generation's metadata (commit, model…): published with its points
EDGE_CONFIG = "edge_config.json"
# g<number>-<random>: numbered for order, random so a recreated collection never repeats a name
# that a long-lived reader still holds.
_GEN_RE = re.compile(r"^g(\d{6,})-[0-9a-f]{6}$")
# Room a reader needs for its view's WAL, and a writer beyond the copy it makes (WAL and new segments).
# Short of it Edge faults on a memory-mapped write (SIGBUS: the process dies with no message), so we
# refuse first, in one line.
READ_ROOM = 8 * 2**20
WRITE_ROOM = 64 * 2**20


def check_free_space(root: Path, need: int, doing: str) -> None:
    free = shutil.disk_usage(root).free
    if free < need:
        raise StoreError(f"no space left on the device of {root} ({free // 2**20} MB free, about "
                         f"{-(-need // 2**20)} MB needed to {doing}): free some disk space and retry")


def _flock(path: Path, exclusive: bool, block: bool) -> int | None:
    """An open fd holding the flock, or None when `block` is False and someone else holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    flags = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | (0 if block else fcntl.LOCK_NB)
    try:
        fcntl.flock(fd, flags)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _unlock(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # closing drops the flock


def copy_sparse(src: Path, dst: Path) -> int:
    """Copy a file keeping its holes (Edge preallocates 32 MB pages; a plain copy would write the zeros).
    Returns the bytes of data copied."""
    copied = 0
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        size = os.fstat(fi.fileno()).st_size
        pos = 0
        while pos < size:
            try:
                start = os.lseek(fi.fileno(), pos, os.SEEK_DATA)
            except OSError as e:
                if e.errno == errno.ENXIO:  # only a hole is left
                    break
                raise
            end = os.lseek(fi.fileno(), start, os.SEEK_HOLE)
            offset = start
            while offset < end:
                n = os.copy_file_range(fi.fileno(), fo.fileno(), end - offset, offset, offset)
                if n == 0:
                    break
                offset += n
            copied += end - start
            pos = end
        fo.truncate(size)
    return copied


# The big files of an indexed (immutable) segment that Edge writes once, when the optimizer builds the
# segment, and never again: a delete or an update of one of its points marks the point in the small files
# beside them (id_tracker.*, deleted flags, the gridstores' tracker and bitmask) and writes the new version
# to the appendable segment; an optimize builds new segments and drops the old folders. So a generation's
# copy hard-links them: a one-file commit copies the small files, not the collection (53k chunks: 2.5 s of
# copying -> ~0.2 s). test_store_contract checks that no byte of a linked file changes across writes.
_WRITE_ONCE = re.compile(r"(^|/)(matrix\.dat|graph\.bin|links[\w]*\.bin|inverted_index\.dat|"
                         r"(payload_storage|vector_storage-[^/]+/store)/page_\d+\.dat)$")
_IMMUTABLE_MARK = "id_tracker.mappings"  # an indexed segment; an appendable one has mutable_id_tracker.*


def _shard_folders(src: Path):
    """(folder, [(file name, linked)]) for every folder of a shard's segments and WAL, empty ones too:
    linked = hard-linked by copy_shard (see _WRITE_ONCE), else copied."""
    segments = src / "segments"
    for root, _, files in [*os.walk(segments), *os.walk(src / "wal")]:
        here = Path(root)
        rel = here.relative_to(segments) if here.is_relative_to(segments) else None
        immutable = rel is not None and rel.parts and (segments / rel.parts[0] / _IMMUTABLE_MARK).is_file()
        yield here, [(f, bool(immutable and _WRITE_ONCE.search(str(Path(*rel.parts[1:], f))))) for f in files]


def copy_shard(src: Path, dst: Path) -> int:
    """The writer's new copy of a flushed shard: small and mutable files copied, the write-once files of
    indexed segments hard-linked (see _WRITE_ONCE). The WAL comes too: it carries the operation counter,
    and Edge ignores an update numbered below the version a point already has. Returns bytes copied."""
    dst.mkdir(parents=True)
    copied = 0
    for name in (EDGE_CONFIG, META_FILE):
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)
    for here, files in _shard_folders(src):
        out = dst / here.relative_to(src)
        out.mkdir(exist_ok=True)
        for f, linked in files:
            if linked:
                os.link(here / f, out / f)
            else:
                copied += copy_sparse(here / f, out / f)
    return copied


def copy_room(src: Path) -> int:
    """Disk space copy_shard needs: the allocated blocks of the files it copies (links take none)."""
    return sum((here / f).stat().st_blocks * 512 for here, files in _shard_folders(src) for f, linked in files
               if not linked)


@dataclass
class Pin:
    """A live reader's claim on a generation; with `view`, a loadable private view of it."""

    generation: str
    folder: Path
    fd: int | None
    view: Path | None = None

    def release(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        _unlock(self.fd)
        self.fd = None


@dataclass
class Writer:
    generation: str
    path: Path
    fd: int | None
    base: str | None  # the generation it was copied from
    copied_bytes: int = 0
    pins: list = field(default_factory=list)


class Generations:
    def __init__(self, folder: Path):
        self.folder = folder

    # ---- names ------------------------------------------------------------------------

    def path(self, generation: str) -> Path:
        return self.folder if generation == LEGACY else self.folder / generation

    def current(self) -> str | None:
        """The published generation, or None when nothing is published."""
        info = read_json(self.folder / CURRENT_FILE)
        if info is not None:
            return info["generation"]
        return LEGACY if (self.folder / EDGE_CONFIG).is_file() else None

    def current_info(self) -> dict:
        return read_json(self.folder / CURRENT_FILE) or ({"generation": LEGACY} if self.current() else {})

    def _numbers(self) -> list[int]:
        if not self.folder.is_dir():
            return []
        return [int(m.group(1)) for p in self.folder.iterdir() if (m := _GEN_RE.match(p.name))]

    def _generations(self) -> list[str]:
        return [p.name for p in self.folder.iterdir() if _GEN_RE.match(p.name)] if self.folder.is_dir() else []

    # ---- readers ----------------------------------------------------------------------

    def pin(self, generation: str | None = None, *, view: bool = False) -> Pin:
        """Claim a generation (the current one by default) so it is not collected; with `view`, also
        make the private view a reader loads. Shared lock: never waits for a writer, only for a
        collection pass, which takes milliseconds."""
        gl = _flock(self.folder / GENERATIONS_LOCK, exclusive=False, block=True)
        try:
            gen = generation or self.current()
            if gen is None:
                raise StoreError(f"{self.folder.name}: nothing published yet")
            pins = self.folder / PINS
            pins.mkdir(exist_ok=True)
            label = "legacy" if gen == LEGACY else gen
            folder = pins / f"{label}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
            folder.mkdir()
            fd = _flock(folder / ".lock", exclusive=True, block=True)
            pin = Pin(gen, folder, fd)
            if view:
                try:
                    check_free_space(self.folder, READ_ROOM, f"open {self.folder.name} for searching")
                    shutil.copy2(self.path(gen) / EDGE_CONFIG, folder / EDGE_CONFIG)
                    os.symlink(self.path(gen).resolve() / "segments", folder / "segments")
                except BaseException:
                    pin.release()
                    raise
                pin.view = folder
            return pin
        finally:
            _unlock(gl)

    # ---- the writer -------------------------------------------------------------------

    def begin_write(self) -> Writer:
        """Take the writer lock and copy the published generation into the next one."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = _flock(self.folder / WRITER_LOCK, exclusive=True, block=False)
        if fd is None:
            raise StoreBusyError(
                f"collection {self.folder.name!r} is being written by another process (an index run); "
                "writes are one at a time: wait for it to finish, then retry. Searches are not affected.")
        try:
            self.collect()
            base = self.current()
            gen = f"g{max(self._numbers(), default=0) + 1:06d}-{uuid.uuid4().hex[:6]}"
            path = self.folder / gen
            copied = 0
            if base is not None:
                check_free_space(self.folder, copy_room(self.path(base)) + WRITE_ROOM,
                                 f"write a new version of {self.folder.name}")
                try:
                    copied = copy_shard(self.path(base), path)
                    if base == LEGACY and not (path / META_FILE).exists():
                        legacy = read_json(self.folder / "rag_collection.json") or {}
                        write_json_atomic(path / META_FILE, legacy.get("metadata", {}))
                except OSError as e:
                    shutil.rmtree(path, ignore_errors=True)
                    raise StoreError(f"cannot copy {self.folder.name} to write it: {e.strerror or e}") from None
            else:
                check_free_space(self.folder, WRITE_ROOM, f"create {self.folder.name}")
            return Writer(gen, path, fd, base, copied)
        except BaseException:
            _unlock(fd)
            raise

    def publish(self, writer: Writer, info: dict) -> Pin:
        """Make the writer's generation current (one atomic rename), keep it pinned for the writer's
        own reads, release the writer lock, and collect what no one uses any more."""
        pin = self.pin(writer.generation)
        write_json_atomic(self.folder / CURRENT_FILE, {**info, "generation": writer.generation})
        try:
            self.collect()
        finally:
            _unlock(writer.fd)
            writer.fd = None
        return pin

    def discard(self, writer: Writer) -> None:
        shutil.rmtree(writer.path, ignore_errors=True)
        _unlock(writer.fd)
        writer.fd = None

    def hold_writer(self) -> int:
        """The writer lock alone (delete, restore); StoreBusyError when an index run holds it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = _flock(self.folder / WRITER_LOCK, exclusive=True, block=False)
        if fd is None:
            raise StoreBusyError(f"collection {self.folder.name!r} is being written by another process; "
                                 "wait for it to finish, then retry")
        return fd

    # ---- garbage ----------------------------------------------------------------------

    def collect(self) -> list[str]:
        """Delete dead pins and every generation that is not current, not pinned, and not the one being
        written (callers hold the writer lock, so there is none other). Returns the generations deleted."""
        gl = _flock(self.folder / GENERATIONS_LOCK, exclusive=True, block=True)
        doomed: list[Path] = []
        try:
            live: set[str] = set()
            pins = self.folder / PINS
            for p in (pins.iterdir() if pins.is_dir() else []):
                fd = _flock(p / ".lock", exclusive=True, block=False) if p.is_dir() else None
                if fd is None and p.is_dir() and (p / ".lock").exists():
                    label = p.name.split(".")[0]
                    live.add(LEGACY if label == "legacy" else label)
                    continue
                _unlock(fd)
                doomed.append(p)  # its reader is gone
            current = self.current()
            for gen in self._generations():
                if gen != current and gen not in live:
                    doomed.append(self.folder / gen)
            if current not in (None, LEGACY) and LEGACY not in live and (self.folder / EDGE_CONFIG).exists():
                doomed += [self.folder / "segments", self.folder / "wal", self.folder / EDGE_CONFIG]
            # Renamed under the lock (a pin can never pick them up again); removed after it, outside.
            trash = []
            for p in doomed:
                t = self.folder / f".trash-{p.name}-{uuid.uuid4().hex[:6]}"
                try:
                    os.replace(p, t)
                    trash.append(t)
                except FileNotFoundError:
                    pass
        finally:
            _unlock(gl)
        for t in trash:
            if t.is_dir():
                shutil.rmtree(t, ignore_errors=True)
            else:
                t.unlink(missing_ok=True)
        for t in self.folder.glob(".trash-*"):  # left by a process killed mid-removal
            shutil.rmtree(t, ignore_errors=True) if t.is_dir() else t.unlink(missing_ok=True)
        return [p.name for p in doomed if _GEN_RE.match(p.name)]
