"""Golden-query recall of a collection: the numbers behind the golden_recall check and the alias guard.

Returns (passed, metadata); None passes on empty input. Plain functions: checks and the alias guard call them.
"""

from __future__ import annotations

from rag_assets.retrieval.evaluate import evaluate, load_queries
from rag_assets.retrieval.search import Searcher
from rag_assets.store import VectorStore


def recall_quality(store: VectorStore, source: str, model: str, queries_file: str | None,
                   threshold: float, k: int = 10) -> tuple[bool | None, dict]:
    """recall@k on the golden queries against this model's collection. None = no golden file."""
    if not queries_file:
        return None, {"reason": f"source '{source}' has no golden queries file (sources.yaml 'queries')"}
    report = evaluate(Searcher(store, source, model=model), load_queries(queries_file), k=k)
    o = report["overall"]
    meta = {**{key: o[key] for key in ("recall@1", "recall@5", "recall@10", "mrr@10", "n")},
            "threshold": threshold, "misses": ", ".join(map(str, report["misses"][:20])) or "none"}
    return o["n"] > 0 and o[f"recall@{k}"] >= threshold, meta
