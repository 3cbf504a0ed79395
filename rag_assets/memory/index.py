"""The log made searchable: merge repeats and near-duplicates, drop forgotten and expired memories,
embed with the source's live model, and make the source's memory collection hold exactly that.

    tables/memory_collection/<source>.parquet   the points (one per merged memory or note) + vectors,
                                                meta: log offset, model; read by recall when the store
                                                is busy, and by forget (who was merged with whom)
    tables/memory_vectors/<source>.parquet      vectors by text, so a run embeds only new texts
    qdrant: <source>__memory__<model>           the searchable copy (dense vectors)
    memory/<source>.notes.md                    the live notes as one Markdown file, for people

The collection's metadata `log_offset` is the watermark: recall reads the log only after it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from rag_assets.contract import content_hash
from rag_assets.embedding.models import MODELS, ModelSpec, live_model_key
from rag_assets.memory.log import memory_dir, read_events
from rag_assets.memory.records import Memory, Note, State, may_merge, normalize, replay
from rag_assets.store import VectorStore
from rag_assets.tables import Table, TableError, Tables
DEDUP_SIMILARITY = 0.95  # cosine at or above which two memories of one category are the same memory
INDEX_VERSION = "1"  # bump when the point layout or the merge rule changes
_NS = uuid.UUID("0b0e6a53-5d0b-4c58-9a84-6f2d3c1e7a11")

POINT_COLUMNS = ["kind", "id", "ids", "source", "text", "title", "category", "tags", "importance", "count",
                 "created_at", "updated_at", "expires_at"]


def memory_collection_name(source: str, model_key: str) -> str:
    """One memory collection per source × model, beside the code collections (`<source>__<model>`)."""
    return f"{source}__memory__{model_key}"


def memory_point_id(source: str, memory_id: str) -> str:
    return str(uuid.uuid5(_NS, f"{source}/{memory_id}"))


def snapshot_table(data_dir: str | Path, source: str) -> Table | None:
    """The last build's points and vectors (read by recall when the store is busy, and by forget)."""
    return Tables(data_dir).read(Tables.MEMORY, source)


def notes_markdown_path(data_dir: str | Path, source: str) -> Path:
    return memory_dir(data_dir) / f"{source}.notes.md"


def live_model(store: VectorStore, source: str) -> str:
    """The model of the collection the source's alias points at; else the default live model."""
    try:
        target = store.resolve_alias(source)
        if target and store.collection_exists(target):
            key = store.get_metadata(target).get("model")
            if key in MODELS:
                return key
    except Exception:  # an unreadable catalog must not stop memory: fall back to the default
        pass
    return live_model_key()


def note_text(n: Note) -> str:
    return f"{n.title}\n{n.body}"


# ------------------------------------------------------------------ merging
def cluster(memories: list[Memory], vectors: np.ndarray, threshold: float = DEDUP_SIMILARITY) -> list[list[int]]:
    """Groups of indexes into `memories` (log order) that are one memory: the same normalized text, or a
    cosine of at least `threshold` to the group's first member (with the same numbers and negation:
    records.may_merge), within one category. Greedy, in log order, against first members only, so a
    chain of small edits cannot drift a group. A merged memory shows its latest wording."""
    groups: list[list[int]] = []
    exact: dict[tuple[str, str], int] = {}
    heads: dict[str, list[int]] = {}  # category -> group indexes
    unit = _unit(vectors)
    for i, m in enumerate(memories):
        key = (m.category, normalize(m.text))
        if key in exact:
            groups[exact[key]].append(i)
            continue
        cands = [g for g in heads.setdefault(m.category, []) if may_merge(memories[groups[g][0]].text, m.text)]
        if cands:
            sims = unit[[groups[g][0] for g in cands]] @ unit[i]
            best = int(np.argmax(sims))
            if sims[best] >= threshold:
                groups[cands[best]].append(i)
                exact[key] = cands[best]
                continue
        exact[key] = len(groups)
        heads[m.category].append(len(groups))
        groups.append([i])
    return groups


def _unit(vectors: np.ndarray) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float32)
    if not len(v):
        return v
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norms == 0, 1, norms)


def merged_row(source: str, members: list[Memory]) -> dict:
    """One point for a group: the first id (stable for agents), the latest wording, every tag, the highest
    importance, a count, and the latest expiry (none if any member never expires)."""
    head, latest = members[0], members[-1]
    expiries = [m.expires_at for m in members]
    return {
        "kind": "memory", "id": head.id, "ids": [m.id for m in members], "source": source, "text": latest.text,
        "title": "", "category": head.category, "tags": sorted({t for m in members for t in m.tags}),
        "importance": max(m.importance for m in members), "count": len(members), "created_at": head.created_at,
        "updated_at": latest.created_at, "expires_at": None if None in expiries else max(expiries),
    }


def note_row(source: str, n: Note) -> dict:
    return {"kind": "note", "id": n.id, "ids": [n.id, *n.supersedes], "source": source, "text": n.body,
            "title": n.title, "category": "", "tags": list(n.tags), "importance": 0.5, "count": 1,
            "created_at": n.created_at, "updated_at": n.created_at, "expires_at": None}


def payload(row: dict) -> dict:
    """Store payloads hold no nulls (engines differ on them): no expiry is 0."""
    p = {k: row[k] for k in POINT_COLUMNS}
    p["expires_at"] = float(row["expires_at"] or 0.0)
    p["ids"], p["tags"] = [str(i) for i in row["ids"]], [str(t) for t in row["tags"]]
    return p


def row_from_payload(p: dict) -> dict:
    """A point's row from a store payload or a snapshot table row (arrays, NaN for a missing expiry)."""
    row = {k: p.get(k) for k in POINT_COLUMNS}
    exp = p.get("expires_at")
    row["expires_at"] = float(exp) if exp is not None and exp == exp and float(exp) > 0 else None
    ids, tags = p.get("ids"), p.get("tags")
    row["ids"] = [str(i) for i in ids] if ids is not None else [str(p.get("id"))]
    row["tags"] = [str(t) for t in tags] if tags is not None else []
    row["count"], row["importance"] = int(p.get("count") or 1), float(p.get("importance") or 0.5)
    row["title"], row["category"] = p.get("title") or "", p.get("category") or ""
    return row


# ------------------------------------------------------------------ the build
@dataclass
class IndexStats:
    events: int = 0
    log_offset: int = 0
    remembered: int = 0
    forgotten: int = 0
    expired: int = 0
    live_memories: int = 0
    merged: int = 0  # memories folded into another one (repeats and near-duplicates)
    memory_points: int = 0
    notes: int = 0
    embedded: int = 0
    reused: int = 0
    upserted: int = 0
    deleted: int = 0
    damaged_lines: int = 0
    next_expiry: float | None = None
    seconds: float = 0.0
    largest_groups: list[dict] = field(default_factory=list)


def build_points(source: str, state: State, spec: ModelSpec, encode: Callable[[list[str]], np.ndarray],
                 cache: dict[str, np.ndarray], stats: IndexStats) -> tuple[list[dict], np.ndarray]:
    """Rows and vectors of the collection's points; texts not in `cache` (hash -> vector) are encoded."""
    memories, notes = state.live_memories(), list(state.notes.values())
    texts = [m.text for m in memories] + [note_text(n) for n in notes]
    hashes = [content_hash(t) for t in texts]
    todo = sorted({h: t for h, t in zip(hashes, texts) if h not in cache}.items())
    if todo:
        fresh = encode([t for _, t in todo])
        cache.update({h: v for (h, _), v in zip(todo, fresh)})
    stats.embedded, stats.reused = len(todo), len(set(hashes)) - len(todo)
    vec = np.stack([cache[h] for h in hashes]) if hashes else np.zeros((0, spec.dim), np.float32)
    mem_vec, note_vec = vec[: len(memories)], vec[len(memories):]

    rows, vectors = [], []
    for g in cluster(memories, mem_vec):
        rows.append(merged_row(source, [memories[i] for i in g]))
        vectors.append(mem_vec[g[-1]])  # the latest wording's vector, like its text
    stats.memory_points, stats.merged = len(rows), len(memories) - len(rows)
    stats.largest_groups = sorted(({"id": r["id"], "count": r["count"], "text": r["text"][:80]} for r in rows
                                   if r["count"] > 1), key=lambda r: -r["count"])[:5]
    for n, v in zip(notes, note_vec):
        rows.append(note_row(source, n))
        vectors.append(v)
    return rows, (np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, spec.dim), np.float32))


def build_memory_index(store: VectorStore, data_dir: str | Path, source: str, spec: ModelSpec,
                       encode: Callable[[list[str]], np.ndarray], now: float | None = None,
                       log: Callable[[str], None] | None = None) -> IndexStats:
    """Read the log (complete lines only), merge, embed what is new, write the snapshot table, then make
    the collection hold exactly these points and record the log offset it reflects. Idempotent: a run
    killed anywhere converges when re-run (points are diffed against the store itself)."""
    t0 = time.perf_counter()
    now = time.time() if now is None else now
    read = read_events(data_dir, source)
    state = replay(read.events, now)
    stats = IndexStats(events=len(read.events), log_offset=read.end, remembered=state.remembered,
                       forgotten=len(state.forgotten), expired=state.expired, live_memories=len(state.memories),
                       notes=len(state.notes), damaged_lines=read.skipped)
    if read.skipped and log:
        log(f"{source}: {read.skipped} damaged log line(s) skipped (a write cut off by a crash)")

    tables = Tables(data_dir)
    cached = tables.read(Tables.MEMORY_VECTORS, source)
    cache: dict[str, np.ndarray] = {}
    if cached is not None and cached.meta.get("model_version") == spec.version and cached.vectors is not None:
        cache = dict(zip(cached.df["hash"], cached.vectors))
    rows, vectors = build_points(source, state, spec, encode, cache, stats)
    expiries = [r["expires_at"] for r in rows if r["expires_at"]]
    stats.next_expiry = min(expiries) if expiries else None

    meta = {"source": source, "model": spec.key, "model_version": spec.version, "log_offset": read.end,
            "events": len(read.events), "index_version": INDEX_VERSION, "materialized_at": now,
            "next_expiry": stats.next_expiry or 0.0}
    df = pd.DataFrame(rows, columns=POINT_COLUMNS)
    tables.write(Tables.MEMORY, source, Table(df, meta, vectors))
    used = {content_hash(m.text) for m in state.live_memories()} | {content_hash(note_text(n))
                                                                     for n in state.notes.values()}
    keep = sorted(h for h in cache if h in used)
    tables.write(Tables.MEMORY_VECTORS, source, Table(
        pd.DataFrame({"hash": keep}), {"model_version": spec.version},
        np.stack([cache[h] for h in keep]) if keep else np.zeros((0, spec.dim), np.float32)))

    name = memory_collection_name(source, spec.key)
    store.ensure_collection(name, spec.dim, spec.distance, sparse=False)
    want = [memory_point_id(source, r["id"]) for r in rows]
    gone = sorted(store.ids(name) - set(want))
    if gone:
        store.delete(name, gone)
    if rows:  # few and small: upsert all, so counts, tags and wording are always current
        store.upsert(name, want, vectors, [payload(r) for r in rows])
    store.set_metadata(name, meta)  # last: the watermark never runs ahead of the points
    store.finalize(name)
    stats.upserted, stats.deleted = len(rows), len(gone)

    write_notes_markdown(data_dir, source, list(state.notes.values()))
    stats.seconds = time.perf_counter() - t0
    return stats


def write_notes_markdown(data_dir: str | Path, source: str, notes: list[Note]) -> Path:
    from rag_assets.memory.render import notes_markdown

    path = notes_markdown_path(data_dir, source)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(notes_markdown(source, notes, time.time()), encoding="utf-8")
    tmp.replace(path)
    return path


def snapshot_meta(data_dir: str | Path, source: str) -> dict | None:
    """The last build's meta (log offset, model, next expiry) without reading its rows; None if never built."""
    try:
        return Tables(data_dir).meta(Tables.MEMORY, source)
    except TableError:  # damaged: as if never built, so the next run rewrites it
        return None


def staleness(data_dir: str | Path, source: str, log_bytes: int, model_key: str, now: float) -> str | None:
    """Why the memory index of `source` needs a run (None: it is current)."""
    if not log_bytes:
        return None
    meta = snapshot_meta(data_dir, source)
    if meta is None:
        return "never built"
    if meta.get("model") != model_key:
        return f"live model is {model_key}, index has {meta.get('model')}"
    if int(meta.get("log_offset", 0)) < log_bytes:
        return f"{log_bytes - int(meta.get('log_offset', 0))} new log bytes"
    if meta.get("next_expiry") and float(meta["next_expiry"]) <= now:
        return "a session memory expired"
    return None
