"""Vectors for a chunks table, encoding only content not embedded before with the same model version."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rag_assets.contract import embedding_text
from rag_assets.embedding.models import ModelSpec
from rag_assets.tables import Table

@dataclass
class EmbedStats:
    reused: int = 0
    embedded: int = 0
    deleted: int = 0
    seconds: float = 0.0


def embed_chunks(
    chunks: pd.DataFrame, previous: Table | None, spec: ModelSpec,
    encode: Callable[[list[str], list[str]], np.ndarray],
) -> tuple[pd.DataFrame, np.ndarray, EmbedStats]:
    """Vectors for every chunk; only content hashes not embedded before (same model version) are encoded.

    `encode(texts, content_hashes)` does the compute: in process, in a Pipes subprocess or on a GPU box.
    """
    stats = EmbedStats()
    cache: dict[str, np.ndarray] = {}
    if previous is not None and previous.meta.get("model_version") == spec.version and len(previous.df):
        cache = dict(zip(previous.df["content_hash"], previous.vectors))
        stats.deleted = len(set(previous.df["chunk_id"]) - set(chunks["chunk_id"]))
    new_hashes = [h for h in dict.fromkeys(chunks["content_hash"]) if h not in cache]
    if new_hashes:
        first = chunks.drop_duplicates("content_hash").set_index("content_hash").loc[new_hashes]
        texts = [embedding_text(p, s, t, g) for p, s, t, g in
                 zip(first["path"], first["symbol"], first["text"], _signatures(first))]
        t0 = time.perf_counter()
        vecs = encode(texts, new_hashes)
        stats.seconds = time.perf_counter() - t0
        cache.update(zip(new_hashes, vecs))
    stats.embedded = len(new_hashes)
    stats.reused = int(len(chunks) - chunks["content_hash"].isin(new_hashes).sum())
    vectors = np.stack([cache[h] for h in chunks["content_hash"]]) if len(chunks) else np.zeros((0, spec.dim), np.float32)
    df = chunks[["chunk_id", "content_hash"]].reset_index(drop=True)
    return df, vectors.astype(np.float32, copy=False), stats


def _signatures(df: pd.DataFrame):
    # Tables chunked before signatures existed have no such column.
    return df["signature"].fillna("") if "signature" in df else [""] * len(df)
