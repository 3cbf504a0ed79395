"""Measurements behind the asset checks and the alias guard. Plain functions, no Dagster.

Every measure returns (passed, metadata). None passes on empty input.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .chunking import split_lines
from .evaluate import evaluate, load_queries
from .file_filters import decode_text
from .git_snapshot import read_blobs
from .search import Searcher
from .store import PAYLOAD_INDEXES, VectorStore


def blob_line_counts(mirror, shas) -> dict[str, int]:
    """Line count of each git blob (read once each), to check spans against the snapshot."""
    return {sha: len(split_lines(decode_text(data))) for sha, data in read_blobs(mirror, list(shas))}


def page_line_counts(pages: pd.DataFrame) -> dict[str, int]:
    """Line count of each downloaded page, keyed like chunks' blob_sha (the page's content hash)."""
    return {h: len(split_lines(t)) for h, t in zip(pages["content_hash"], pages["text"].fillna("")) if isinstance(h, str)}


def chunk_quality(df: pd.DataFrame, max_tokens: int, line_counts: dict[str, int]) -> tuple[bool, dict]:
    """No empty text, all within the token budget, spans 1-based and inside their document."""
    empty = int((df["text"].str.strip() == "").sum())
    over = int((df["n_tokens"] > max_tokens).sum())
    bad = int(((df["start_line"] < 1) | (df["end_line"] < df["start_line"])).sum())
    n_lines = df["blob_sha"].map(line_counts)
    beyond = int((n_lines.isna() | (df["end_line"] > n_lines)).sum()) if len(df) else 0
    meta = {"chunks": len(df), "empty": empty, "over_budget": over, "bad_spans": bad,
            "spans_beyond_document": beyond, "max_tokens": int(df["n_tokens"].max()) if len(df) else 0}
    return len(df) > 0 and empty == over == bad == beyond == 0, meta


def vector_quality(vectors: np.ndarray | None, dim: int, normalized: bool) -> tuple[bool, dict]:
    """Right dimension, no NaN or zero vectors, unit norms when the model normalises."""
    if vectors is None or len(vectors) == 0:
        return False, {"vectors": 0}
    norms = np.linalg.norm(vectors, axis=1)
    nan = int(np.isnan(vectors).any(axis=1).sum())
    zero = int((norms < 1e-6).sum())
    off_norm = int((np.abs(norms - 1) > 1e-3).sum()) if normalized else 0
    meta = {"vectors": len(vectors), "dim": int(vectors.shape[1]), "expected_dim": dim, "nan": nan, "zero": zero,
            "norm_min": float(np.nanmin(norms)), "norm_max": float(np.nanmax(norms)), "off_unit_norm": off_norm}
    return vectors.shape[1] == dim and nan == zero == off_norm == 0, meta


def collection_quality(store: VectorStore, name: str, chunks: pd.DataFrame, commit: str) -> tuple[bool, dict]:
    """points == chunks, payload indexes present, indexed commit == snapshot commit (freshness)."""
    if not store.collection_exists(name):
        return False, {"collection": name, "points": 0, "error": "collection does not exist"}
    points = store.count(name)
    meta_ = store.get_metadata(name)
    # qdrant-client's local mode accepts payload indexes as no-ops and reports none: nothing to verify there.
    indexes = set(PAYLOAD_INDEXES) if store.engine == "local" else set(store.payload_indexes(name))
    missing = sorted(set(PAYLOAD_INDEXES) - indexes)
    meta = {"collection": name, "points": points, "chunks": len(chunks), "indexed_commit": str(meta_.get("indexed_commit")),
            "snapshot_commit": commit,
            "missing_payload_indexes": "n/a (local mode)" if store.engine == "local" else ", ".join(missing) or "none"}
    return points > 0 and points == len(chunks) and meta_.get("indexed_commit") == commit and not missing, meta


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
