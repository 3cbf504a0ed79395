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

from dataclasses import dataclass

from rag_assets.contract import collection_name
from rag_assets.retrieval.evaluate import evaluate, load_queries
from rag_assets.retrieval.gate import MEASURES, decide
from rag_assets.retrieval.mining import RECIPE, as_query_dicts, mine_queries
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
        queries = as_query_dicts(mine_queries(chunks.df)[0])
        label = f"mined ({RECIPE}) @ {commit[:12]}, from the chunks (golden_queries not materialized at this commit)"
    else:
        queries = []
    if queries:
        sets.append(QuerySet("mined", label, queries))
    return sets


def _live_label(collection: str, source: str) -> str:
    prefix = f"{source}__"
    return collection[len(prefix):] if collection.startswith(prefix) else collection


def recall_gate(store: VectorStore, source: str, model: str, sets: list[QuerySet], *, floor: float,
                tolerance: float, k: int = 10, report_all: bool = True) -> tuple[bool | None, str, dict]:
    """Gate `model`'s collection of `source` on the first query set, against the live collection.

    report_all: also measure the other sets (reported, not gating)."""
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
    candidate = Searcher(store, source, model=model)
    live_searcher = Searcher(store, source) if live else None  # through the alias: exactly what serves now
    live_name = _live_label(live, source) if live else None

    def measure(qs: QuerySet):
        c = evaluate(candidate, qs.queries, k=k)
        lv = evaluate(live_searcher, qs.queries, k=k) if live_searcher else None
        return decide(c, lv, candidate_name=model, live_name=live_name, tolerance=tolerance, floor=floor)

    gating = sets[0]
    passed, reason, gate_meta = measure(gating)
    meta.update(gate_meta)
    meta.update({"query_set": gating.label, "live_collection": live or "none", "commit": candidate.commit,
                 "live_commit": live_searcher.commit if live_searcher else "none", "gate": reason})
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
