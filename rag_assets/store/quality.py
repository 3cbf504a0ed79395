"""Collection sanity and approximate-search recall: the numbers behind the store's checks.

Returns (passed, metadata); None passes on empty input. Plain functions: checks and the alias guard call them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rag_assets.store.base import PAYLOAD_INDEXES, VectorStore


def collection_quality(store: VectorStore, name: str, chunks: pd.DataFrame | int, commit: str) -> tuple[bool, dict]:
    """points == chunks, payload indexes present, indexed commit == snapshot commit (freshness).

    `chunks`: the chunks table's rows, or just their count (exact, from the Parquet footer: no rows read)."""
    n_chunks = chunks if isinstance(chunks, int) else len(chunks)
    if not store.collection_exists(name):
        return False, {"collection": name, "points": 0, "error": "collection does not exist"}
    points = store.count(name)
    meta_ = store.get_metadata(name)
    # qdrant-client's local mode accepts payload indexes as no-ops and reports none: nothing to verify there.
    indexes = set(PAYLOAD_INDEXES) if store.engine == "local" else set(store.payload_indexes(name))
    missing = sorted(set(PAYLOAD_INDEXES) - indexes)
    meta = {"collection": name, "points": points, "chunks": n_chunks, "indexed_commit": str(meta_.get("indexed_commit")),
            "snapshot_commit": commit,
            "missing_payload_indexes": "n/a (local mode)" if store.engine == "local" else ", ".join(missing) or "none"}
    return points > 0 and points == n_chunks and meta_.get("indexed_commit") == commit and not missing, meta


def approximate_recall(store: VectorStore, name: str, queries: np.ndarray, quantization: str | None,
                       k: int = 10, threshold: float = 0.95) -> tuple[bool | None, dict]:
    """recall@k of the default search (HNSW, quantized + rescored when enabled) against exact search.

    None = not applicable: qdrant-client's local mode always searches exactly, so there is nothing to measure.
    """
    if store.engine == "local":
        return None, {"reason": "qdrant-client local mode searches exactly (no HNSW, no quantization): not measurable"}
    if not store.collection_exists(name) or store.count(name) == 0 or len(queries) == 0:
        return False, {"reason": "empty collection or no queries", "queries": len(queries)}
    overlaps = []
    for q in queries:
        exact = {h.id for h in store.query(name, q, k=k, exact=True)}
        approx = {h.id for h in store.query(name, q, k=k, rescore=True)}  # the store's default oversampling
        overlaps.append(len(exact & approx) / max(len(exact), 1))
    recall = float(np.mean(overlaps))
    return recall >= threshold, {"recall@10_vs_exact": round(recall, 4), "queries": len(queries), "threshold": threshold,
                                 "quantization": quantization or "none", "engine": store.engine}
