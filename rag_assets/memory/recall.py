"""recall: the indexed memory collection's hits merged with the log written since it was built.

    hits = collection (dense, live model, filtered by kind/category/tags; forgotten and expired dropped)
         + log events after the collection's `log_offset`, embedded on the fly (few; cached per process)

So a memory is searchable the moment `remember` returns, and forgetting takes effect at once; the index
asset only makes it faster and merged. When the embedded store is held by an index run, the snapshot
table the asset wrote (same points, same vectors) stands in for the collection.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field

import numpy as np

from rag_assets import settings
from rag_assets.contract import content_hash
from rag_assets.embedding.embedder import Embedder
from rag_assets.embedding.models import ModelSpec, get_model
from rag_assets.memory.index import (
    POINT_COLUMNS, live_model, memory_collection_name, merged_row, note_row, row_from_payload, snapshot_table,
)
from rag_assets.memory.log import log_path, read_events
from rag_assets.memory.records import (
    MemoryInputError, check_category, check_source, check_tags, normalize, replay, age_text,
)
from rag_assets.memory.render import iso
from rag_assets.store import StoreBusyError

MAX_K = 50


@dataclass
class MemoryHit:
    id: str
    kind: str  # memory | note
    text: str
    title: str
    category: str
    tags: list[str]
    importance: float
    count: int  # how many times it was remembered (repeats and near-duplicates merged)
    similarity: float  # cosine of query and memory
    score: float  # similarity weighted by importance: x0.9 at 0, x1.1 at 1
    created_at: float
    updated_at: float
    expires_at: float | None
    indexed: bool  # from the collection (True) or straight from the log (False: newer than the index)
    ids: list[str] = field(default_factory=list)  # every id merged into this one

    def age_s(self, now: float) -> float:
        return max(0.0, now - self.created_at)

    def citation(self, now: float) -> str:
        what = self.category if self.kind == "memory" else "note"
        return f"{self.kind} {self.id} ({what}, {age_text(self.age_s(now))} ago)"

    def to_dict(self, now: float | None = None) -> dict:
        now = time.time() if now is None else now
        d = asdict(self)
        d.update(age=age_text(self.age_s(now)), age_s=round(self.age_s(now), 1), citation=self.citation(now),
                 created=iso(self.created_at), updated=iso(self.updated_at), expires=iso(self.expires_at))
        return d


def weighted(similarity: float, importance: float) -> float:
    return similarity * (0.9 + 0.2 * importance)


# ------------------------------------------------------------------ on-the-fly vectors of the log tail
_CACHE: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 20_000


def encode_cached(spec: ModelSpec, texts: list[str]) -> np.ndarray:
    """Document vectors, each text encoded once per process (a long-lived MCP server pays once)."""
    version = spec.version  # a hash of the spec: once, not per text
    keys = [(version, content_hash(t)) for t in texts]
    with _CACHE_LOCK:
        missing = {k: t for k, t in zip(keys, texts) if k not in _CACHE}
    if missing:
        fresh = Embedder(spec).encode_documents(list(missing.values()))
        with _CACHE_LOCK:
            _CACHE.update(zip(missing, fresh))
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    with _CACHE_LOCK:
        out = [_CACHE.get(k) for k in keys]
    if any(v is None for v in out):  # evicted meanwhile by another thread: encode those again
        return Embedder(spec).encode_documents(texts)
    return np.stack(out) if out else np.zeros((0, spec.dim), np.float32)


def _cosine(q: np.ndarray, m: np.ndarray) -> np.ndarray:
    if not len(m):
        return np.zeros(0, np.float32)
    norms = np.linalg.norm(m, axis=1) * (np.linalg.norm(q) or 1.0)
    return (m @ q) / np.where(norms == 0, 1, norms)


def _matches(row: dict, kind: str, category: str | None, tags: list[str]) -> bool:
    return (row["kind"] == kind and (category is None or row["category"] == category)
            and (not tags or bool(set(tags) & set(row["tags"]))))


def _hit(row: dict, similarity: float, indexed: bool) -> MemoryHit:
    return MemoryHit(
        id=row["id"], kind=row["kind"], text=row["text"], title=row.get("title") or "",
        category=row.get("category") or "", tags=list(row["tags"]), importance=float(row["importance"]),
        count=int(row["count"]), similarity=round(float(similarity), 4),
        score=round(weighted(float(similarity), float(row["importance"])), 4), created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]), expires_at=row.get("expires_at") or None, indexed=indexed,
        ids=list(row["ids"]))


# ------------------------------------------------------------------ recall
def recall(query: str, source: str, category: str | None = None, tags=None, k: int = 5, *, kind: str = "memory",
           min_similarity: float | None = None, now: float | None = None) -> list[MemoryHit]:
    """The k memories (kind="memory") or notes (kind="note") of `source` closest to `query`, best first."""
    return recall_with_model(query, source, category, tags, k, kind=kind, min_similarity=min_similarity, now=now)[0]


def recall_with_model(query: str, source: str, category: str | None = None, tags=None, k: int = 5, *,
                      kind: str = "memory", min_similarity: float | None = None, now: float | None = None
                      ) -> tuple[list[MemoryHit], str]:
    """recall, and the model key that scored it (the source's live model)."""
    from rag_assets.service.stores import open_store_for_reading

    check_source(source)
    if not (query or "").strip():
        raise MemoryInputError("empty query")
    if not 1 <= int(k) <= MAX_K:
        raise MemoryInputError(f"k must be between 1 and {MAX_K} (got {k})")
    category = check_category(category, optional=True)
    tags = check_tags(tags)
    now = time.time() if now is None else now
    data_dir = settings.current().data_dir
    if not log_path(data_dir, source).exists():  # nothing remembered yet: is it a source at all?
        from rag_assets.sources.config import get_source

        get_source(source)
    limit = max(4 * k, k + 20)

    indexed: list[tuple[dict, float]] = []
    offset = 0
    with open_store_for_reading() as store:
        spec = get_model(live_model(store, source))
        qvec = Embedder(spec).encode_queries([query])[0]
        name = memory_collection_name(source, spec.key)
        meta = store.get_metadata(name) if store.collection_exists(name) else {}
        if meta.get("model_version") == spec.version and "log_offset" in meta:
            flt = {"kind": kind, **({"category": category} if category else {}), **({"tags": tags} if tags else {})}
            try:
                raw = store.query(name, qvec, k=limit, filter=flt, mode="dense")
                indexed = [(row_from_payload(h.payload), h.score) for h in raw]
                offset = int(meta["log_offset"])
            except StoreBusyError:
                indexed, offset = _from_snapshot(data_dir, source, spec, qvec, kind, category, tags, limit)
        else:
            indexed, offset = _from_snapshot(data_dir, source, spec, qvec, kind, category, tags, limit)

    # The log since the index: new memories and notes, and forgets that apply to indexed ones at once.
    tail = read_events(data_dir, source, start=offset)
    st = replay(tail.events, now)
    hits = [_hit(r, s, True) for r, s in indexed
            if not (set(r["ids"]) & st.forgotten) and not (r["expires_at"] and r["expires_at"] <= now)]
    seen = {i for h in hits for i in h.ids}
    rows = _tail_rows(source, st, kind, seen)
    rows = [r for r in rows if _matches(r, kind, category, tags)]
    if rows:
        texts = [note_text_of(r) if kind == "note" else r["text"] for r in rows]
        sims = _cosine(qvec, encode_cached(spec, texts))
        hits += [_hit(r, s, False) for r, s in zip(rows, sims)]
    if min_similarity is not None:
        hits = [h for h in hits if h.similarity >= min_similarity]
    hits.sort(key=lambda h: (-h.score, -h.updated_at, h.id))
    return hits[:k], spec.key


def note_text_of(row: dict) -> str:
    return f"{row['title']}\n{row['text']}"


def _tail_rows(source: str, st, kind: str, seen: set[str]) -> list[dict]:
    """Rows for what the tail adds: memories grouped by exact repeat (near-duplicates wait for the
    asset), and notes; ids the index already holds are skipped."""
    if kind == "note":
        return [note_row(source, n) for n in st.notes.values() if n.id not in seen]
    groups: dict[tuple[str, str], list] = {}
    for m in st.live_memories():
        if m.id not in seen:
            groups.setdefault((m.category, normalize(m.text)), []).append(m)
    return [merged_row(source, g) for g in groups.values()]


def _from_snapshot(data_dir, source: str, spec: ModelSpec, qvec: np.ndarray, kind: str, category: str | None,
                   tags: list[str], limit: int) -> tuple[list[tuple[dict, float]], int]:
    """The asset's snapshot table in place of the collection (store busy or not built for this model)."""
    table = snapshot_table(data_dir, source)
    if table is None or table.meta.get("model_version") != spec.version or table.vectors is None:
        return [], 0
    rows = [row_from_payload(r) for r in table.df[POINT_COLUMNS].to_dict("records")]
    keep = [i for i, r in enumerate(rows) if _matches(r, kind, category, tags)]
    sims = _cosine(qvec, table.vectors[keep]) if keep else np.zeros(0)
    order = np.argsort(-sims)[:limit]
    return [(rows[keep[i]], float(sims[i])) for i in order], int(table.meta.get("log_offset", 0))


__all__ = ["MemoryHit", "recall", "encode_cached"]
