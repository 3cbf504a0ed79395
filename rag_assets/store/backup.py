"""Backups of the embedded store: one .tar.gz with a manifest, restored into any data dir.

    snapshot_store(data_dir, out_dir)               -> out_dir/rag-store-20260101T030000Z.tar.gz
    snapshot_store(data_dir, out_dir, source="x")   -> out_dir/rag-store-x-20260101T030000Z.tar.gz
    restore_store(archive, data_dir, force=False)   -> {collection: points}
    prune_snapshots(out_dir, keep=7)                -> the whole-store snapshots deleted (newest `keep` kept)

Archive layout: `manifest.json` (format, engine, time, source, aliases, and per collection its points,
config and metadata), then the engine's folder: `qdrant_edge/aliases.json` + one shard folder per
collection (its rag_collection.json holds the collection metadata), or `qdrant_local/` as a whole.

Consistency: on Edge each collection's published generation is copied, pinned so that it is not
collected meanwhile; published generations are never written, so a snapshot taken during an index run
holds the state searches see, not the run's half-written next one. In local mode the qdrant-client folder
lock is held (a store held by another process fails at once with "store busy"). A Qdrant server has its
own snapshot API; this module refuses it.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from rag_assets import settings
from rag_assets.store._files import read_json
from rag_assets.store.base import StoreError

FORMAT = 1
MANIFEST = "manifest.json"
EDGE_DIR, LOCAL_DIR = "qdrant_edge", "qdrant_local"
_FULL_RE = re.compile(r"^rag-store-(\d{8}T\d{6}Z)(-\d+)?\.tar\.gz$")  # whole-store snapshots (what prune keeps)
_SKIP_FILES = {".catalog.lock", ".lock"}


class BackupError(StoreError):
    """A snapshot or restore that cannot be done; one line saying why and what to do."""


def _engine(engine: str | None) -> str:
    env = settings.current()
    if engine is None and env.qdrant_url:
        raise BackupError("QDRANT_URL points at a Qdrant server: use the server's own snapshots "
                          "(POST /collections/NAME/snapshots); this command copies the embedded store")
    engine = engine or env.store_engine or "edge"
    if engine not in ("edge", "local"):
        raise BackupError(f"unknown embedded store engine {engine!r}; expected 'edge' or 'local'")
    return engine


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _target(out_dir: Path, source: str | None) -> Path:
    stem = f"rag-store-{source}-{_stamp()}" if source else f"rag-store-{_stamp()}"
    path, n = out_dir / f"{stem}.tar.gz", 1
    while path.exists():  # two in the same second
        path, n = out_dir / f"{stem}-{n}.tar.gz", n + 1
    return path


def _add_json(tar: tarfile.TarFile, name: str, data: dict) -> None:
    raw = json.dumps(data, indent=2, sort_keys=True).encode()
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(raw), int(time.time()), 0o644
    tar.addfile(info, io.BytesIO(raw))


def _add_tree(tar: tarfile.TarFile, folder: Path, arcname: str) -> None:
    """Regular files and folders only (no locks, temp files or links)."""
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        rel = Path(root).relative_to(folder)
        tar.add(root, arcname=str(Path(arcname) / rel), recursive=False)
        for f in sorted(files):
            p = Path(root) / f
            if f in _SKIP_FILES or f.endswith(".tmp") or p.is_symlink() or not p.is_file():
                continue
            tar.add(p, arcname=str(Path(arcname) / rel / f), recursive=False)


# ------------------------------------------------------------------ snapshot
def snapshot_store(data_dir: str | Path | None = None, out_dir: str | Path | None = None, *,
                   source: str | None = None, engine: str | None = None) -> tuple[Path, dict]:
    """Write a consistent snapshot; returns (archive path, manifest)."""
    env = settings.current()
    data_dir = Path(data_dir or env.data_dir)
    out_dir = Path(out_dir or env.backup_dir or data_dir / "backups")
    engine = _engine(engine)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = _target(out_dir, source)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w:gz", compresslevel=6) as tar:
                if engine == "edge":
                    manifest = _snapshot_edge(data_dir / EDGE_DIR, tar, source)
                else:
                    manifest = _snapshot_local(data_dir / LOCAL_DIR, tar, source)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path, manifest


def _manifest(engine: str, source: str | None, store, names: list[str], aliases: dict) -> dict:
    collections = {}
    for name in names:
        collections[name] = {"points": store.count(name), "config": store.collection_config(name),
                             "metadata": store.get_metadata(name)}
    return {"format": FORMAT, "engine": engine, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "source": source, "aliases": aliases, "collections": collections}


def _for_source(source: str | None, names, aliases: dict) -> tuple[list[str], dict]:
    if source is None:
        return sorted(names), dict(aliases)
    picked = sorted(n for n in names if n.startswith(f"{source}__") or n == aliases.get(source))
    if not picked:
        raise BackupError(f"source '{source}' has no collection in the store (nothing to snapshot)")
    return picked, {a: c for a, c in aliases.items() if a == source and c in picked}


def _snapshot_edge(root: Path, tar: tarfile.TarFile, source: str | None) -> dict:
    """Each collection's published generation, pinned while it is copied: generations are never written
    once published, so the copy is consistent without stopping an index run (which writes the next one)."""
    import qdrant_edge as qe

    from rag_assets.store.edge_generations import CURRENT_FILE, LEGACY, META_FILE, Generations
    from rag_assets.store.edge_store import ALIASES_FILE, CONFIG_FILE, EdgeStore

    if not root.is_dir():
        raise BackupError(f"no Edge store at {root} (nothing to snapshot)")
    store = EdgeStore(root)
    pins = []
    try:
        all_names = list(store.list_collections())
        names, aliases = _for_source(source, all_names, store.aliases())
        collections = {}
        for name in names:
            gens = Generations(root / name)
            pin = gens.pin(view=True)
            pins.append(pin)
            shard = qe.EdgeShard.load(str(pin.view))
            try:
                points = shard.count(qe.CountRequest(exact=True))
            finally:
                shard.close()
            config = read_json(root / name / CONFIG_FILE) or {}
            meta = read_json(gens.path(pin.generation) / META_FILE)
            if meta is None:  # a collection written before generations: metadata in its config
                meta = config.pop("metadata", {})
            collections[name] = (pin, points, config, meta)
        manifest = {"format": FORMAT, "engine": "edge", "source": source, "aliases": aliases,
                    "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "collections": {n: {"points": pts, "config": store.collection_config(n), "metadata": meta}
                                    for n, (_, pts, _, meta) in collections.items()}}
        _add_json(tar, MANIFEST, manifest)
        _add_json(tar, f"{EDGE_DIR}/{ALIASES_FILE}", aliases)
        for name, (pin, points, config, meta) in collections.items():
            gen = "g000001-000000" if pin.generation == LEGACY else pin.generation
            _add_json(tar, f"{EDGE_DIR}/{name}/{CONFIG_FILE}", {k: v for k, v in config.items() if k != "metadata"})
            _add_json(tar, f"{EDGE_DIR}/{name}/{CURRENT_FILE}", {"generation": gen, "points": points})
            _add_json(tar, f"{EDGE_DIR}/{name}/{gen}/{META_FILE}", meta)
            folder = Generations(root / name).path(pin.generation)
            for part in ("edge_config.json", "segments", "wal"):  # the WAL carries the operation counter
                if (folder / part).is_dir():
                    _add_tree(tar, folder / part, f"{EDGE_DIR}/{name}/{gen}/{part}")
                elif (folder / part).is_file():
                    tar.add(folder / part, arcname=f"{EDGE_DIR}/{name}/{gen}/{part}", recursive=False)
    finally:
        for pin in pins:
            pin.release()
        store.close()
    return manifest


def _snapshot_local(folder: Path, tar: tarfile.TarFile, source: str | None) -> dict:
    from rag_assets.store.qdrant_client_store import QdrantClientStore

    if source is not None:
        raise BackupError("--source needs the Edge engine; a local-mode store is snapshotted whole")
    if not folder.is_dir():
        raise BackupError(f"no local-mode store at {folder} (nothing to snapshot)")
    store = QdrantClientStore(path=folder)  # holds the folder lock (busy -> StoreBusyError)
    try:
        names = sorted(store.list_collections())
        manifest = _manifest("local", None, store, names, store.aliases())
        _add_json(tar, MANIFEST, manifest)
        _add_tree(tar, folder, LOCAL_DIR)
    finally:
        store.close()
    return manifest


# ------------------------------------------------------------------ restore
def read_manifest(archive: str | Path) -> dict:
    archive = Path(archive)
    if not archive.is_file():
        raise BackupError(f"{archive}: snapshot file not found")
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.extractfile(MANIFEST)
            manifest = json.loads(member.read()) if member else None
    except (tarfile.TarError, KeyError, ValueError, OSError, EOFError) as e:
        raise BackupError(f"{archive}: not a rag-assets store snapshot ({' '.join(str(e).split()) or type(e).__name__})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("engine") not in ("edge", "local"):
        raise BackupError(f"{archive}: unknown snapshot format (manifest {MANIFEST} missing or of another version)")
    return manifest


def _existing(data_dir: Path, engine: str) -> tuple[list[str], dict]:
    """Collections and aliases in the target store (opened read-only as far as each engine allows)."""
    if engine == "edge":
        from rag_assets.store.edge_store import CONFIG_FILE, EdgeStore

        root = data_dir / EDGE_DIR
        if not root.is_dir():
            return [], {}
        names = [p.name for p in root.iterdir() if (p / CONFIG_FILE).is_file()]
        store = EdgeStore(root)
        try:
            return names, store.aliases()
        except StoreError:  # a damaged alias table: not empty; --force replaces it
            return names, {"(damaged alias table)": ""}
        finally:
            store.close()
    folder = data_dir / LOCAL_DIR
    if not folder.is_dir() or not any(folder.iterdir()):
        return [], {}
    from rag_assets.store.qdrant_client_store import QdrantClientStore

    store = QdrantClientStore(path=folder)
    try:
        return list(store.list_collections()), store.aliases()
    finally:
        store.close()


def restore_store(archive: str | Path, data_dir: str | Path | None = None, *, force: bool = False) -> dict[str, int]:
    """Restore a snapshot into the data dir's embedded store; returns {collection: points} as reopened.

    A whole-store snapshot replaces the store; a one-source snapshot replaces that source's collections and
    alias. Without `force`, a store that has any collection or alias is left alone (BackupError)."""
    archive = Path(archive)
    manifest = read_manifest(archive)
    engine = manifest["engine"]
    data_dir = Path(data_dir or settings.current().data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    names, aliases = _existing(data_dir, engine)
    if (names or aliases) and not force:
        raise BackupError(f"the {engine} store under {data_dir} is not empty ({len(names)} collections, "
                          f"{len(aliases)} aliases); pass --force to replace it with {archive.name}")
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=data_dir))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            _safe_extract(tar, staging)
        if engine == "edge":
            _restore_edge(staging / EDGE_DIR, data_dir / EDGE_DIR, manifest, whole=manifest.get("source") is None)
        else:
            _restore_local(staging / LOCAL_DIR, data_dir / LOCAL_DIR)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise BackupError(f"{archive}: cannot restore ({' '.join(str(e).split()) or type(e).__name__})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _verify(data_dir, engine, manifest)


def _restore_edge(src: Path, root: Path, manifest: dict, whole: bool) -> None:
    from rag_assets.store._files import file_lock, read_json, write_json_atomic
    from rag_assets.store.edge_generations import Generations
    from rag_assets.store.edge_store import ALIASES_FILE, CATALOG_LOCK, CONFIG_FILE, EdgeStore

    missing = [n for n in manifest["collections"] if not (src / n / CONFIG_FILE).is_file()]
    if missing:  # check before anything in the store is touched
        raise BackupError(f"snapshot is incomplete: no files for collection(s) {', '.join(missing)}")
    root.mkdir(parents=True, exist_ok=True)
    store = EdgeStore(root)
    try:
        existing = [p.name for p in root.iterdir() if (p / CONFIG_FILE).is_file()]
        replaced = existing if whole else [n for n in existing if n in manifest["collections"]]
        for name in replaced:  # one an index run is writing fails here, before any change
            os.close(Generations(root / name).hold_writer())
        if whole:  # the alias table is replaced anyway (and may be the damaged file being repaired)
            with file_lock(root / CATALOG_LOCK):
                write_json_atomic(root / ALIASES_FILE, {})
        for name in replaced:
            store.delete_collection(name)
    finally:
        store.close()
    for name in manifest["collections"]:
        shutil.rmtree(root / name, ignore_errors=True)  # a partial folder without config
        os.replace(src / name, root / name)  # same filesystem: one rename per collection
    with file_lock(root / CATALOG_LOCK):
        restored = read_json(src / ALIASES_FILE, {}) or {}
        current = {} if whole else (read_json(root / ALIASES_FILE, {}) or {})
        write_json_atomic(root / ALIASES_FILE, {**current, **restored})


def _restore_local(src: Path, folder: Path) -> None:
    from rag_assets.store.qdrant_client_store import QdrantClientStore

    if folder.is_dir() and any(folder.iterdir()):
        QdrantClientStore(path=folder).close()  # busy -> StoreBusyError before anything moves
        old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
        os.replace(folder, old)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(src, folder)


def _verify(data_dir: Path, engine: str, manifest: dict) -> dict[str, int]:
    from rag_assets.store import open_store

    with open_store(data_dir, engine=engine) as store:
        counts = {name: store.count(name) for name in manifest["collections"]}
        wrong = {n: (c, manifest["collections"][n]["points"]) for n, c in counts.items()
                 if c != manifest["collections"][n]["points"]}
        for alias, target in manifest["aliases"].items():
            if store.resolve_alias(alias) != target:
                wrong[f"alias {alias}"] = (store.resolve_alias(alias), target)
    if wrong:
        raise BackupError(f"restored store differs from the snapshot: {wrong}")
    return counts


# ------------------------------------------------------------------ retention
def list_snapshots(out_dir: str | Path) -> list[Path]:
    """Whole-store snapshots in out_dir, oldest first (by the time in their names)."""
    out_dir = Path(out_dir)
    found = [(m, p) for p in (out_dir.iterdir() if out_dir.is_dir() else []) if (m := _FULL_RE.match(p.name))]
    return [p for m, p in sorted(found, key=lambda mp: (mp[0].group(1), int((mp[0].group(2) or "-0")[1:])))]


def prune_snapshots(out_dir: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` whole-store snapshots; returns those deleted."""
    if keep < 1:
        raise BackupError(f"keep must be at least 1 (got {keep})")
    old = list_snapshots(out_dir)[:-keep]
    for p in old:
        p.unlink(missing_ok=True)
    return old


def _safe_extract(tar: tarfile.TarFile, dest: Path) -> None:
    """Extract with no absolute paths, '..', links or devices: tarfile's "data" filter where this Python has
    it (3.11.4+), else the same rules checked here."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
        return
    root = dest.resolve()
    for member in tar.getmembers():
        target = (dest / member.name).resolve()
        if not (member.isfile() or member.isdir()) or (target != root and root not in target.parents):
            raise BackupError(f"{tar.name}: unsafe entry {member.name!r} in the snapshot")
    tar.extractall(dest)
