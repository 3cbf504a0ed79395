"""Collection sanity and approximate-search recall: the numbers behind the store's checks.

Returns (passed, metadata); None passes on empty input. Plain functions: checks and the alias guard call them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rag_assets.store.base import PAYLOAD_INDEXES, VectorStore
from rag_assets.tables import Table


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


def exact_neighbours(emb: Table, queries: np.ndarray, k: int = 10, distance: str = "cosine") -> list[set[str]] | None:
    """The chunk ids of each query's exact top k over an embeddings table, read a row group at a time: the
    ground truth for approximate_recall without an exact search of the store, which maps every vector of the
    collection into the process (535k points: RSS over 2 GB). None for distances other than cosine and dot."""
    if distance not in ("cosine", "dot") or not len(emb):
        return None
    q = np.asarray(queries, dtype=np.float32)
    if distance == "cosine":
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    best_s = np.full((len(q), 0), -np.inf, dtype=np.float32)
    best_id = np.empty((len(q), 0), dtype=object)
    for _, rows, vecs in emb.batches(["chunk_id"], vectors=True):
        v = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12) if distance == "cosine" else vecs
        scores = np.concatenate([best_s, q @ v.T], axis=1)
        ids = np.concatenate([best_id, np.broadcast_to(rows["chunk_id"].to_numpy(dtype=object), (len(q), len(v)))],
                             axis=1)
        keep = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        best_s, best_id = np.take_along_axis(scores, keep, 1), np.take_along_axis(ids, keep, 1)
    return [set(r) for r in best_id]


def approximate_recall(store: VectorStore, name: str, queries: np.ndarray, quantization: str | None,
                       k: int = 10, threshold: float = 0.95, exact: list[set[str]] | None = None
                       ) -> tuple[bool | None, dict]:
    """recall@k of the default search (HNSW, quantized + rescored when enabled) against exact search.

    `exact`: each query's exact top k as point ids (exact_neighbours, mapped to point ids); None: the store's
    exact search. None = not applicable: qdrant-client's local mode always searches exactly, so there is
    nothing to measure.
    """
    if store.engine == "local":
        return None, {"reason": "qdrant-client local mode searches exactly (no HNSW, no quantization): not measurable"}
    if not store.collection_exists(name) or store.count(name) == 0 or len(queries) == 0:
        return False, {"reason": "empty collection or no queries", "queries": len(queries)}
    overlaps = []
    for i, q in enumerate(queries):
        truth = exact[i] if exact is not None else {h.id for h in store.query(name, q, k=k, exact=True)}
        approx = {h.id for h in store.query(name, q, k=k, rescore=True)}  # the store's default oversampling
        overlaps.append(len(truth & approx) / max(len(truth), 1))
    recall = float(np.mean(overlaps))
    return recall >= threshold, {"recall@10_vs_exact": round(recall, 4), "queries": len(queries), "threshold": threshold,
                                 "quantization": quantization or "none", "engine": store.engine,
                                 "exact_from": "the embeddings table (streamed)" if exact is not None else "the store"}
