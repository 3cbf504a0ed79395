"""Vector store layer: one small interface (`VectorStore`) over Qdrant Edge and qdrant-client.

    with open_store(".rag_data") as store:          # Edge shards under .rag_data/qdrant_edge/
        store.ensure_collection("code_v1", dim=384)
        store.upsert("code_v1", ids, vectors, payloads)
        store.finalize("code_v1")
        store.set_alias("code", "code_v1")
        hits = store.query("code", qvec, k=5, filter={"language": ["python", "rst"]})

Hybrid (dense + BM25 sparse in the same points, fused by RRF inside the engine):

        from rag_assets.store.sparse import encode_documents, encode_query
        store.upsert("code_v1", ids, vectors, payloads, sparse=encode_documents(texts))
        hits = store.query("code", qvec, k=5, mode="hybrid", sparse_vector=encode_query(question))
"""

from __future__ import annotations

from pathlib import Path

from rag_assets import settings

from rag_assets.store.base import (
    PAYLOAD_INDEXES,
    QUERY_MODES,
    CollectionNotFoundError,
    FilterDict,
    Hit,
    StoreBusyError,
    StoreError,
    VectorStore,
)

ENGINES = ("edge", "local", "server")

__all__ = [
    "ENGINES",
    "PAYLOAD_INDEXES",
    "QUERY_MODES",
    "CollectionNotFoundError",
    "FilterDict",
    "Hit",
    "StoreBusyError",
    "StoreError",
    "VectorStore",
    "open_store",
]


def open_store(
    data_dir: str | Path | None = None,
    *,
    url: str | None = None,
    api_key: str | None = None,
    engine: str | None = None,
) -> VectorStore:
    """Open the configured vector store.

    Precedence (the one place that decides it): an explicit `url` -> server; else an explicit
    embedded `engine` ("edge" | "local") -> that engine, even when QDRANT_URL is set (an explicit
    argument beats the environment); else QDRANT_URL -> server; else RAG_STORE_ENGINE or "edge".
    Server API key: `api_key` or QDRANT_API_KEY.
    Embedded layouts: edge -> <data_dir>/qdrant_edge/<collection>/, local -> <data_dir>/qdrant_local/.
    """
    if engine is not None and engine not in ENGINES:
        raise StoreError(f"unknown store engine {engine!r}; expected one of {ENGINES}")
    env = settings.current()
    if url is None and engine in (None, "server"):
        url = env.qdrant_url
    if engine == "server" and not url:
        raise StoreError("engine 'server' needs a url (argument or QDRANT_URL)")
    if url:
        from rag_assets.store.qdrant_client_store import QdrantClientStore

        return QdrantClientStore(url=url, api_key=api_key or env.qdrant_api_key)

    engine = engine or env.store_engine or "edge"
    if engine not in ("edge", "local"):
        raise StoreError(f"unknown embedded store engine {engine!r}; expected 'edge' or 'local'")
    if data_dir is None:
        raise StoreError(f"the embedded {engine!r} store needs a data_dir")
    if engine == "local":
        from rag_assets.store.qdrant_client_store import QdrantClientStore

        return QdrantClientStore(path=Path(data_dir) / "qdrant_local")
    from rag_assets.store.edge_store import EdgeStore

    return EdgeStore(Path(data_dir) / "qdrant_edge")
