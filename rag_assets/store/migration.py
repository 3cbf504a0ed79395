"""Move a vector store between engines without re-embedding: `rag-assets store migrate`.

    counts = migrate_embedded(data_dir, from_engine="local", to_engine="edge")
    counts = copy_store(src, dst)                    # any two open VectorStores

Per collection: create it in the destination (dim and distance from the source, plus its HNSW
and quantization settings where the source records them), stream every point across in
batches with its dense vector and payload, rebuild the BM25 sparse vector from the payload
exactly as indexing does (no store returns sparse vectors, and they are a pure function of
path/symbol/text), copy the collection metadata, finalize, check the counts. Aliases are moved
last, so no alias in the destination ever points at a half-copied collection.

Idempotent: point ids are kept, so a re-run (or a run after a crash) upserts the same points
again, and points the destination holds that the source does not are deleted: the copy
converges on the source. The source is only read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from rag_assets.contract import SPARSE_SCHEME, embedding_text
from rag_assets.store.sparse import encode_documents
from rag_assets.store import ENGINES, CollectionNotFoundError, StoreError, VectorStore, open_store

BATCH = 512
# progress(collection, points_done, points_total): called after each batch.
MigrationProgress = Callable[[str, int, int], None]


class StoreMigrationError(StoreError):
    """The copy did not come out equal to the source (or could not start)."""


def _batches(store: VectorStore, name: str, size: int) -> Iterator[list[tuple[str, dict, np.ndarray]]]:
    batch: list = []
    for point in store.scroll(name, with_vectors=True, batch=size):
        batch.append(point)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def sparse_for(payloads: list[dict]):
    """BM25 vectors of these payloads, from the same text sync_collection encodes."""
    return encode_documents(
        [embedding_text(p.get("path") or "", p.get("symbol") or "", p.get("text") or "", p.get("signature") or "") for p in payloads]
    )


def copy_collection(
    src: VectorStore, dst: VectorStore, name: str, *, quantization: str | None = None,
    batch_size: int = BATCH, progress: MigrationProgress | None = None,
) -> int:
    """Copy one collection (not its aliases); returns its point count in the destination."""
    layout = src.collection_config(name)
    total = src.count(name)
    q = layout.get("quantization") if quantization is None else (None if quantization == "none" else quantization)
    created = dst.ensure_collection(
        name, layout["dim"], layout["distance"], quantization=q,
        hnsw_m=layout.get("hnsw_m", 16), hnsw_ef_construct=layout.get("hnsw_ef_construct", 100),
        indexing_threshold=layout.get("indexing_threshold"),
        # Every new collection gets the BM25 vector; a pre-hybrid source gains it here for free.
        sparse=True,
    )
    seen: set[str] = set()
    any_sparse = False
    done = 0
    if progress:
        progress(name, 0, total)
    for batch in _batches(src, name, batch_size):
        ids = [pid for pid, _, _ in batch]
        payloads = [payload for _, payload, _ in batch]
        vectors = np.stack([vec for _, _, vec in batch]).astype(np.float32, copy=False)
        sparse = sparse_for(payloads)
        any_sparse = any_sparse or any(len(s) for s in sparse)
        dst.upsert(name, ids, vectors, payloads, sparse=sparse, batch_size=batch_size)
        seen.update(ids)
        done += len(ids)
        if progress:
            progress(name, done, total)
    if not created:
        # Converge on the source: drop what an earlier copy (or other writer) left behind.
        stale = sorted(dst.ids(name) - seen)
        if stale:
            dst.delete(name, stale)
    meta = src.get_metadata(name)
    if any_sparse:
        # The sparse vectors were just rebuilt with this code's scheme, whatever the source used.
        meta = {**meta, "sparse": SPARSE_SCHEME}
    if meta:
        dst.set_metadata(name, meta)
    dst.finalize(name)
    src_n, dst_n = src.count(name), dst.count(name)
    if not (src_n == dst_n == len(seen)):
        raise StoreMigrationError(
            f"collection {name!r}: source has {src_n} points ({len(seen)} read), destination has {dst_n} "
            "after the copy. Was the source written to meanwhile? Re-run the migration; it converges."
        )
    return dst_n


def copy_store(
    src: VectorStore, dst: VectorStore, *, collections: list[str] | None = None,
    progress: MigrationProgress | None = None, quantization: str | None = None, batch_size: int = BATCH,
) -> dict[str, int]:
    """Copy collections (default: all), their metadata and then their aliases from src to dst.

    Returns {collection: points in dst}. `quantization`: None keeps the source's setting (none
    for a local-mode source, which does not record it); "none" | "int8" | "binary" overrides.
    Raises StoreMigrationError if a destination count differs from the source's.
    """
    available = src.list_collections()
    if collections is None:
        names = sorted(available)
    else:
        names = []
        src_aliases = src.aliases()
        for n in collections:
            real = n if n in available else src_aliases.get(n)
            if real not in available:
                raise CollectionNotFoundError(f"no collection or alias {n!r} in the source store ({src!r})")
            if real not in names:
                names.append(real)
    counts = {n: copy_collection(src, dst, n, quantization=quantization, batch_size=batch_size, progress=progress)
              for n in names}
    for alias, target in sorted(src.aliases().items()):
        if target in counts and dst.resolve_alias(alias) != target:
            dst.set_alias(alias, target)
    return counts


def migrate_embedded(
    data_dir: str | Path | None = None, from_engine: str = "local", to_engine: str = "edge",
    progress: MigrationProgress | None = None, *, collections: list[str] | None = None,
    quantization: str | None = None,
) -> dict[str, int]:
    """Copy the embedded store under data_dir from one engine's folder to the other's.

    local -> <data_dir>/qdrant_local/, edge -> <data_dir>/qdrant_edge/. The source folder is left
    as it is (delete it yourself once the new engine serves searches); set RAG_STORE_ENGINE to
    the new engine, or rely on the default (edge).
    """
    from rag_assets import settings

    embedded = tuple(e for e in ENGINES if e != "server")
    for engine in (from_engine, to_engine):
        if engine not in embedded:
            raise StoreMigrationError(f"unknown embedded engine {engine!r}; expected one of {embedded}")
    if from_engine == to_engine:
        raise StoreMigrationError(f"source and destination are both {from_engine!r}: nothing to migrate")
    root = Path(data_dir) if data_dir is not None else settings.current().data_dir
    folder = root / ("qdrant_local" if from_engine == "local" else "qdrant_edge")
    if not folder.is_dir():
        # Opening it would create an empty store; say what is missing instead.
        raise StoreMigrationError(f"no {from_engine!r} store at {folder}")
    with open_store(root, engine=from_engine) as src, open_store(root, engine=to_engine) as dst:
        return copy_store(src, dst, collections=collections, progress=progress, quantization=quantization)
