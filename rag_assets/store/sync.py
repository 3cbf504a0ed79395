"""Make a collection hold exactly a chunks table's points: upsert what is missing, delete what vanished."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rag_assets.contract import PAYLOAD_COLUMNS, SPARSE_SCHEME, embedding_text, point_id
from rag_assets.store.base import VectorStore
from rag_assets.store.sparse import encode_documents as encode_sparse
from rag_assets.tables import Table


class SyncError(RuntimeError):
    pass


@dataclass
class SyncStats:
    upserted: int = 0
    deleted: int = 0
    unchanged: int = 0
    points: int = 0
    seconds: float = 0.0


def sync_collection(
    store: VectorStore, name: str, chunks: pd.DataFrame, emb: Table, *, dim: int, distance: str,
    meta: dict, progress: Callable[[int], None] | None = None, quantization: str | None = None,
    indexing_threshold: int | None = None,
) -> SyncStats:
    """Make the collection hold exactly these chunks: upsert missing points, delete vanished ones.

    Diffing against the store itself (not against the last run) makes a killed run converge on re-run.
    """
    t0 = time.perf_counter()
    if list(emb.df["chunk_id"]) != list(chunks["chunk_id"]):
        vec_by_id = dict(zip(emb.df["chunk_id"], emb.vectors))
        missing = set(chunks["chunk_id"]) - set(vec_by_id)
        if missing:
            raise SyncError(f"{len(missing)} chunks have no embedding: materialize embeddings first")
        vectors = np.stack([vec_by_id[c] for c in chunks["chunk_id"]])
    else:
        vectors = emb.vectors
    store.ensure_collection(name, dim, distance, quantization=quantization, indexing_threshold=indexing_threshold,
                            sparse=True)
    want = [point_id(c) for c in chunks["chunk_id"]]
    have = store.ids(name)
    # Vectors re-encoded from scratch (a forced re-embed) replace every point; otherwise only new ones go in.
    rewrite = bool(emb.meta.get("vectors_run")) and store.get_metadata(name).get("vectors_run") != emb.meta["vectors_run"]
    new_idx = list(range(len(want))) if rewrite else [i for i, p in enumerate(want) if p not in have]
    gone = sorted(have - set(want))
    if gone:
        store.delete(name, gone)
    if new_idx:
        rows = chunks.iloc[new_idx]
        payloads = rows[[c for c in PAYLOAD_COLUMNS if c in rows]].to_dict("records")
        for p, cid in zip(payloads, rows["chunk_id"]):
            p["chunk_id"] = cid
            p["start_line"], p["end_line"] = int(p["start_line"]), int(p["end_line"])
            if "part" in p:
                p["part"] = int(p["part"])
            if "imports" in p:  # Parquet gives lists back as arrays
                p["imports"] = [str(i) for i in p["imports"]]
        # BM25 sparse vectors from the same text the dense model reads (path, symbol and signature included).
        sparse = encode_sparse([embedding_text(p["path"], p["symbol"], p["text"], p.get("signature") or "")
                                for p in payloads])
        store.upsert(name, [want[i] for i in new_idx], vectors[new_idx], payloads, sparse=sparse, progress=progress)
    store.set_metadata(name, {**meta, "sparse": SPARSE_SCHEME, "vectors_run": emb.meta.get("vectors_run", "")})
    points = store.count(name)
    if points != len(set(want)):  # checked before publishing: searches keep the last good state
        raise SyncError(f"collection {name!r} would hold {points} points for {len(set(want))} chunks; not published")
    store.finalize(name)
    return SyncStats(
        upserted=len(new_idx), deleted=len(gone), unchanged=len(want) - len(new_idx),
        points=store.count(name), seconds=time.perf_counter() - t0,
    )
