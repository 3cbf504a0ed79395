"""Golden-query recall of a candidate collection against the live one: the numbers behind the
golden_recall check and the alias guard (collection_alias).

Which queries gate: the source's hand-written file (sources.yaml `queries`) when it has one, else the set
mined from its chunks (the golden_queries asset, retrieval/mining.py). Both are measured and reported when
both exist. The candidate and the live collection (what the source's alias points at now) are measured in
the same call on the same queries; `gate.decide` makes the decision.

Plain functions over a store: checks and the alias guard call them. Returns (passed, reason, metadata);
passed is None when nothing can be measured (no queries at all), never a silent pass.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from rag_assets import settings as env
from rag_assets.contract import collection_name
from rag_assets.retrieval.evaluate import evaluate, load_queries
from rag_assets.retrieval.gate import MEASURES, decide
from rag_assets.retrieval.mining import RECIPE, as_query_dicts, mine_table
from rag_assets.retrieval.search import Searcher
from rag_assets.store import VectorStore
from rag_assets.tables import Table


@dataclass(frozen=True)
class QuerySet:
    origin: str  # "file" (hand-written) | "mined"
    label: str  # what the metadata shows
    queries: list[dict]


def query_sets(queries_file: str | None, mined: Table | None, chunks: Table | None) -> list[QuerySet]:
    """The query sets for a source, the gating one first: the hand-written file, then the mined set.

    The mined set is the golden_queries table when it was mined from the current chunks (same commit);
    otherwise it is mined again here from the chunks (same recipe, same seed)."""
    sets = []
    if queries_file:
        sets.append(QuerySet("file", f"hand-written {queries_file}", load_queries(queries_file)))
    commit = str(chunks.meta.get("commit", "")) if chunks is not None else ""
    if mined is not None and (chunks is None or str(mined.meta.get("commit", "")) == commit):
        queries = as_query_dicts(mined.df)
        label = f"mined ({mined.meta.get('recipe', RECIPE)}) @ {str(mined.meta.get('commit', ''))[:12]}"
    elif chunks is not None:
        queries = as_query_dicts(mine_table(chunks)[0])
        label = f"mined ({RECIPE}) @ {commit[:12]}, from the chunks (golden_queries not materialized at this commit)"
    else:
        queries = []
    if queries:
        sets.append(QuerySet("mined", label, queries))
    return sets


def _live_label(collection: str, source: str) -> str:
    prefix = f"{source}__"
    return collection[len(prefix):] if collection.startswith(prefix) else collection




def read_cache(path: Path | None) -> dict | None:
    """A measurement kept by write_cache; None when absent or unreadable (then it is measured again)."""
    try:
        return json.loads(path.read_text()) if path is not None and path.exists() else None
    except (OSError, ValueError):
        return None


def write_cache(path: Path, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value, default=str))
    os.replace(tmp, path)

# A measurement is reused while at most this fraction of the collection's points changed since (see recall_gate).
REUSE_MAX_CHANGED = 0.01


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:24]


class _Recording:
    """A Searcher that remembers the paths of the hits it returned (what a measurement depends on)."""

    def __init__(self, searcher: Searcher):
        self.searcher, self.paths = searcher, set()

    def search_many(self, queries, **kw):
        results = self.searcher.search_many(queries, **kw)
        for hits in results:
            self.paths.update(h.path for h in hits)
        return results


def involved_digest(chunks: Table, paths) -> str:
    """A digest of the chunk ids of these paths in the chunks table (reads the path and chunk_id columns)."""
    wanted = sorted(set(paths))
    t = pa.table({"path": chunks.column("path"), "chunk_id": chunks.column("chunk_id")})
    t = t.filter(pc.is_in(t.column("path"), value_set=pa.array(wanted, t.column("path").type)))
    return _digest(sorted(zip(t.column("path").to_pylist(), t.column("chunk_id").to_pylist())))


def _reusable(cache: dict | None, key: str, meta: dict, points: int, chunks: Table | None, needed: list[str]
              ) -> str | None:
    """Why the cached measurement still holds (a line for the metadata), or None when it must be redone.

    It holds for the same collection, model, vectors, query sets, encoder and live collection when (a) at most
    REUSE_MAX_CHANGED of the points changed since, and (b) none of the files the queries cite or their hits
    came from changed (their chunk ids are the same). A change elsewhere can still push a new chunk into a
    query's top 10: the gate's figures are estimates on <= 50 queries, and such a small change moves them by
    far less than their sampling error; a larger one is measured again."""
    if not cache or cache.get("key") != key or chunks is None or not all(n in cache.get("reports", {}) for n in needed):
        return None
    changed = int(meta.get("points_changed", 0)) - int(cache.get("points_changed", 0))
    if changed < 0 or changed > REUSE_MAX_CHANGED * max(points, 1):
        return None
    if changed and involved_digest(chunks, cache.get("paths", [])) != cache.get("involved"):
        return None
    return (f"reused the measurement at {str(cache.get('commit', ''))[:12]}: {changed} points changed since, none "
            f"in the {len(cache.get('paths', []))} files the queries cite or hit")


def recall_gate(store: VectorStore, source: str, model: str, sets: list[QuerySet], *, floor: float,
                tolerance: float, k: int = 10, report_all: bool = True, chunks: Table | None = None,
                cache: Path | None = None) -> tuple[bool | None, str, dict]:
    """Gate `model`'s collection of `source` on the first query set, against the live collection.

    report_all: also measure the other sets (reported, not gating). chunks (the source's chunks table) and
    cache (a JSON file): reuse the last measurement, kept in `cache`, when nothing the queries depend on
    changed (see `_reusable`)."""
    name = collection_name(source, model)
    meta: dict = {"collection": name, "threshold": floor, "tolerance": tolerance}
    if not store.collection_exists(name):
        return False, f"collection {name} does not exist", {**meta, "points": 0}
    points = store.count(name)
    meta["points"] = points
    if points == 0:
        return False, f"collection {name} is empty (0 points)", meta
    if not sets:
        reason = (f"source '{source}' has no golden queries: no queries file (sources.yaml 'queries') and no "
                  f"definition with a docstring of enough words to mine")
        return None, reason, {**meta, "reason": reason}

    live = store.resolve_alias(source)
    if not live or live == name or not store.collection_exists(live):
        live = None  # no other live collection: only the floor applies
    stored = store.get_metadata(name)
    live_meta = store.get_metadata(live) if live else {}
    wanted = sets if report_all else sets[:1]
    digests = {qs.label: _digest(qs.queries) for qs in wanted}
    key = _digest({"collection": name, "model_version": stored.get("model_version"),
                   "vectors_run": stored.get("vectors_run"), "k": k,
                   "encoder": getattr(env.current(), "query_encoder", ""),
                   "live": [live, live_meta.get("points_changed"), live_meta.get("vectors_run"),
                            live_meta.get("indexed_commit")] if live else None})
    cached = read_cache(cache)
    needed = [digests[qs.label] for qs in wanted]
    reused = _reusable(cached, key, stored, points, chunks, needed)
    candidate = Searcher(store, source, model=model)
    live_searcher = Searcher(store, source) if live else None  # through the alias: exactly what serves now
    live_name = _live_label(live, source) if live else None
    if reused:
        reports = cached["reports"]
    else:
        rec_c = _Recording(candidate)
        rec_l = _Recording(live_searcher) if live_searcher else None
        reports = {}
        for qs in wanted:
            reports[digests[qs.label]] = {"candidate": evaluate(rec_c, qs.queries, k=k),
                                          "live": evaluate(rec_l, qs.queries, k=k) if rec_l else None}
        if chunks is not None and cache is not None:
            paths = sorted(rec_c.paths | (rec_l.paths if rec_l else set())
                           | {q["path"] for qs in wanted for q in qs.queries})
            write_cache(cache, {
                "key": key, "points_changed": int(stored.get("points_changed", 0)), "points": points,
                "commit": stored.get("indexed_commit", ""), "paths": paths, "involved": involved_digest(chunks, paths),
                "reports": {d: reports[d] for d in needed}, "measured_at": time.time()})

    def measure(qs: QuerySet):
        r = reports[digests[qs.label]]
        return decide(r["candidate"], r["live"], candidate_name=model, live_name=live_name, tolerance=tolerance,
                      floor=floor)

    gating = sets[0]
    passed, reason, gate_meta = measure(gating)
    meta.update(gate_meta)
    meta.update({"query_set": gating.label, "live_collection": live or "none", "commit": candidate.commit,
                 "live_commit": live_searcher.commit if live_searcher else "none", "gate": reason,
                 "measured": reused or "now"})
    if report_all:
        for other in sets[1:]:  # reported beside the gating set, never gating
            _, other_reason, m = measure(other)
            meta[f"{other.origin}_query_set"] = other.label
            meta[f"{other.origin}_n"] = m["n"]
            for measure_key in MEASURES:
                meta[f"{other.origin}_{measure_key}"] = m[measure_key]
                if live:
                    meta[f"{other.origin}_live_{measure_key}"] = m[f"live_{measure_key}"]
            meta[f"{other.origin}_gate"] = f"(not gating) {other_reason}"
            meta[f"{other.origin}_comparison"] = m["comparison"]
    return passed, reason, meta
