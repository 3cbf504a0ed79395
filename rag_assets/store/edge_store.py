"""VectorStore on Qdrant Edge: Qdrant's Rust engine in-process, one folder per shard.

Edge has shards only (no collections, aliases or metadata), so this module adds them:

    <root>/aliases.json               alias -> collection, replaced atomically
    <root>/.catalog.lock              flock serialising catalog changes between processes
    <root>/<name>/                    the Edge shard (wal/, segments/, edge_config.json)
    <root>/<name>/rag_collection.json dim, distance, quantization, vector names, metadata;
                                      written last, so its presence marks a fully created collection

Points carry a named dense vector "dense" and a sparse BM25 vector "sparse" (IDF modifier:
Edge applies IDF natively). Hybrid queries are one shard.query with two prefetches fused by
Edge's own RRF. Collections created before hybrid search (no "dense_vector" in their config)
keep their unnamed dense vector and answer dense queries only.

Locking: Edge takes an exclusive lock on the shard's WAL when a shard is loaded and keeps
it until close(); a second loader (another process, or another store in this one) fails
with WouldBlock, which we report as StoreBusyError. Shards are opened lazily, so a store
only holds the collections it has touched.
"""

from __future__ import annotations

import shutil
import threading
import uuid
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import qdrant_edge as qe

from rag_assets.store._files import file_lock, read_json, write_json_atomic
from rag_assets.store.base import (
    DEFAULT_OVERSAMPLING,
    DEFAULT_RRF_K,
    DENSE_VECTOR,
    LOWER_IS_BETTER,
    PAYLOAD_INDEXES,
    SPARSE_VECTOR,
    CollectionNotFoundError,
    FilterDict,
    Hit,
    StoreBase,
    StoreBusyError,
    StoreError,
    as_query_vector,
    as_sparse,
    busy_message,
    canonical_id,
    check_distance,
    check_name,
    check_quantization,
    check_query,
    no_sparse_error,
    parse_filter,
    ranked,
)

CONFIG_FILE = "rag_collection.json"
ALIASES_FILE = "aliases.json"
CATALOG_LOCK = ".catalog.lock"
ALIASES_FIX = ("restore it from a snapshot (rag-assets store restore FILE), or delete it and point each source's "
               "alias again (rag-assets alias SOURCE MODEL)")

_DISTANCE = {
    "cosine": qe.Distance.Cosine,
    "dot": qe.Distance.Dot,
    "euclid": qe.Distance.Euclid,
    "manhattan": qe.Distance.Manhattan,
}
_SCHEMA = {"keyword": qe.PayloadSchemaType.Keyword, "integer": qe.PayloadSchemaType.Integer}
# Qdrant's default: segments below this size (KB of vectors) are searched by full scan.
_FULL_SCAN_THRESHOLD_KB = 10_000


def _is_lock_error(exc: Exception) -> bool:
    msg = str(exc)
    return "WouldBlock" in msg or "temporarily unavailable" in msg or "already locked" in msg


def _edge_filter(filter: FilterDict | None) -> qe.Filter | None:
    conds = parse_filter(filter)
    if not conds:
        return None
    must = [
        qe.FieldCondition(
            key=c.key,
            match=qe.MatchAny(any=list(c.values)) if c.any_of else qe.MatchValue(value=c.values[0]),
        )
        for c in conds
    ]
    return qe.Filter(must=must)


def _sparse_vec(vec) -> qe.SparseVector:
    return qe.SparseVector(*as_sparse(vec))




def _quantization_config(quantization: str | None):
    if quantization == "int8":
        return qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8, quantile=0.99, always_ram=True)
    if quantization == "binary":
        return qe.BinaryQuantizationConfig(always_ram=True)
    return None


class EdgeStore(StoreBase):
    engine = "edge"

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._shards: dict[str, qe.EdgeShard] = {}
        self._configs: dict[str, dict] = {}  # configs of the shards we hold (metadata not used)
        self._lock = threading.RLock()  # guards the shard cache within this process
        self._closed = False

    # ---- paths, catalog -------------------------------------------------------------

    def _dir(self, name: str) -> Path:
        return self.root / check_name(name)

    def _config(self, name: str) -> dict | None:
        """The collection's rag_collection.json, or None if it is not a (complete) collection."""
        if name in self._configs:
            return self._configs[name]
        cfg = read_json(self._dir(name) / CONFIG_FILE)
        if cfg is not None and name in self._shards:
            # While we hold the shard no other process can delete or recreate it: cache.
            self._configs[name] = cfg
        return cfg

    def _catalog_lock(self):
        return file_lock(self.root / CATALOG_LOCK)

    def _resolve(self, name: str) -> str:
        """Collection name for `name`, following an alias; CollectionNotFoundError otherwise."""
        if name in self._shards or self._config(name) is not None:
            return name
        target = self.aliases().get(name)
        if target is not None and self._config(target) is not None:
            return target
        raise CollectionNotFoundError(f"Edge collection or alias {name!r} not found under {self.root}")

    def _shard(self, name: str) -> qe.EdgeShard:
        """The open shard for collection `name` (already resolved), loading it on first use."""
        with self._lock:
            if self._closed:
                raise StoreError("the Edge store is closed")
            shard = self._shards.get(name)
            if shard is None:
                shard = self._load(self._dir(name))
                self._shards[name] = shard
            return shard

    @staticmethod
    def _load(path: Path) -> qe.EdgeShard:
        try:
            return qe.EdgeShard.load(str(path))
        except Exception as e:  # qdrant_edge raises plain Exception
            if _is_lock_error(e):
                raise StoreBusyError(busy_message(path)) from e
            raise StoreError(f"cannot open Edge shard {path}: {e}") from e

    def _close_shard(self, name: str) -> None:
        with self._lock:
            self._configs.pop(name, None)
            shard = self._shards.pop(name, None)
            if shard is not None:
                shard.flush()  # cheap; spares a WAL replay on the next load
                shard.close()

    # ---- collections ----------------------------------------------------------------

    def ensure_collection(
        self,
        name: str,
        dim: int,
        distance: str = "cosine",
        *,
        hnsw_m: int = 16,
        hnsw_ef_construct: int = 100,
        quantization: str | None = None,
        indexing_threshold: int | None = None,
        sparse: bool = True,
    ) -> bool:
        """Create the shard + payload indexes if missing. `indexing_threshold` (KB of vectors,
        Qdrant's default 10 000 when None) is the segment size from which finalize() builds
        HNSW and quantized vectors; smaller segments are brute-forced, which is fast anyway.
        `sparse` adds the "sparse" BM25 vector (IDF applied by Edge at query time)."""
        distance = check_distance(distance)
        quantization = check_quantization(quantization)
        path = self._dir(name)
        with self._lock, self._catalog_lock():
            cfg = self._config(name)
            if cfg is not None:
                if cfg["dim"] != dim or cfg["distance"] != distance:
                    raise StoreError(
                        f"collection {name!r} exists with dim={cfg['dim']}, distance={cfg['distance']}; "
                        f"asked for dim={dim}, distance={distance}. Use a new collection name "
                        "(e.g. one per embedding model) or delete the old one."
                    )
                if sparse and not cfg.get("sparse_vector"):
                    raise no_sparse_error(name)
                return False
            if name in self.aliases():
                raise StoreError(f"{name!r} is already an alias; pick another collection name")
            if path.exists():
                # Left over from a crash before the config was written: drop the partial shard.
                self._load(path).close()  # raises StoreBusyError if someone holds it
                shutil.rmtree(path)
            config = qe.EdgeConfig(
                vectors={DENSE_VECTOR: qe.EdgeVectorParams(size=dim, distance=_DISTANCE[distance])},
                sparse_vectors=(
                    {SPARSE_VECTOR: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)} if sparse else None
                ),
                hnsw_config=qe.HnswIndexConfig(
                    m=hnsw_m, ef_construct=hnsw_ef_construct, full_scan_threshold=_FULL_SCAN_THRESHOLD_KB
                ),
                quantization_config=_quantization_config(quantization),
                optimizers=(
                    qe.EdgeOptimizersConfig(indexing_threshold=indexing_threshold)
                    if indexing_threshold is not None
                    else None
                ),
            )
            try:
                shard = qe.EdgeShard.create(str(path), config)
            except Exception as e:
                if _is_lock_error(e):
                    raise StoreBusyError(busy_message(path)) from e
                raise StoreError(f"cannot create Edge shard {path}: {e}") from e
            for field, schema in PAYLOAD_INDEXES.items():
                shard.update(qe.UpdateOperation.create_field_index(field, _SCHEMA[schema]))
            shard.flush()
            self._shards[name] = shard
            write_json_atomic(
                path / CONFIG_FILE,
                {
                    "dim": dim,
                    "distance": distance,
                    "quantization": quantization,
                    "hnsw_m": hnsw_m,
                    "hnsw_ef_construct": hnsw_ef_construct,
                    "indexing_threshold": indexing_threshold,
                    "dense_vector": DENSE_VECTOR,
                    "sparse_vector": SPARSE_VECTOR if sparse else None,
                    "created_at": time.time(),
                    "metadata": {},
                },
            )
            return True

    def collection_exists(self, name: str) -> bool:
        return self._config(name) is not None

    def list_collections(self) -> dict[str, int]:
        names = sorted(p.name for p in self.root.iterdir() if (p / CONFIG_FILE).is_file())
        return {n: self._count_all(n) for n in names}

    def _count_all(self, name: str) -> int:
        with self._lock:
            if name in self._shards:
                return self._shards[name].count(qe.CountRequest(exact=True))
            # Listing should not keep every shard locked: open, count, close again.
            shard = self._load(self._dir(name))
            try:
                return shard.count(qe.CountRequest(exact=True))
            finally:
                shard.close()

    def delete_collection(self, name: str) -> None:
        path = self._dir(name)
        with self._lock, self._catalog_lock():
            if not path.exists():
                return
            if name in self._shards:
                self._close_shard(name)
            else:
                self._load(path).close()  # never delete a shard another process has open
            # Config first: a crash mid-rmtree then leaves a partial folder, not a broken collection.
            (path / CONFIG_FILE).unlink(missing_ok=True)
            aliases = self._read_aliases()
            kept = {a: c for a, c in aliases.items() if c != name}  # Qdrant drops them too
            if kept != aliases:
                write_json_atomic(self.root / ALIASES_FILE, kept)
            shutil.rmtree(path)

    # ---- points ---------------------------------------------------------------------

    def upsert(
        self,
        name: str,
        ids: Sequence[str],
        vectors: np.ndarray,
        payloads: Sequence[dict],
        *,
        sparse: Sequence | None = None,
        batch_size: int = 512,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Insert or replace points (all their vectors). `sparse`: one SparseVec per point,
        from rag_assets.store.sparse.encode_document; an empty one stores no sparse vector."""
        real = self._resolve(name)
        cfg = self._config(real)
        vecs = self._checked_points(real, ids, vectors, payloads, sparse, bool(cfg.get("sparse_vector")))
        if len(ids) and vecs.shape[1] != cfg["dim"]:
            raise StoreError(f"vectors have dim {vecs.shape[1]}, collection {real!r} expects {cfg['dim']}")
        shard = self._shard(real)
        for start in range(0, len(ids), batch_size):
            stop = min(start + batch_size, len(ids))
            points = [
                qe.Point(
                    id=canonical_id(ids[i]),
                    vector=self._point_vector(bool(cfg.get("dense_vector")), vecs[i], sparse, i, _sparse_vec),
                    payload=dict(payloads[i]),
                )
                for i in range(start, stop)
            ]
            shard.update(qe.UpdateOperation.upsert_points(points))
            if progress is not None:
                progress(stop - start)

    def delete(self, name: str, ids: Sequence[str]) -> None:
        if len(ids):
            shard = self._shard(self._resolve(name))
            shard.update(qe.UpdateOperation.delete_points([canonical_id(i) for i in ids]))

    def count(self, name: str, filter: FilterDict | None = None) -> int:
        shard = self._shard(self._resolve(name))
        return shard.count(qe.CountRequest(exact=True, filter=_edge_filter(filter)))

    def query(
        self,
        name: str,
        vector: np.ndarray | None = None,
        k: int = 10,
        filter: FilterDict | None = None,
        *,
        mode: str = "dense",
        sparse_vector=None,
        prefetch_k: int = 50,
        rrf_k: int = DEFAULT_RRF_K,
        exact: bool = False,
        rescore: bool = True,
        oversampling: float | None = None,
        hnsw_ef: int | None = None,
    ) -> list[Hit]:
        """Top-k points. mode "dense": by `vector`; "sparse": BM25 by `sparse_vector`;
        "hybrid": both, top max(prefetch_k, k) each, fused by RRF (score 1/(rrf_k + rank0))."""
        check_query(mode, vector, sparse_vector, k, prefetch_k, rrf_k)
        real = self._resolve(name)
        cfg = self._config(real)
        shard = self._shard(real)
        if mode != "dense" and not cfg.get("sparse_vector"):
            raise no_sparse_error(real)
        flt = _edge_filter(filter)
        if mode == "dense":
            request = qe.QueryRequest(
                limit=k,
                query=self._dense_query(cfg, vector),
                filter=flt,
                with_payload=True,
                params=self._dense_params(cfg, exact, rescore, oversampling, hnsw_ef),
            )
        else:
            sparse_query = qe.Query.Nearest(_sparse_vec(sparse_vector), using=SPARSE_VECTOR)
            if mode == "sparse":
                request = qe.QueryRequest(limit=k, query=sparse_query, filter=flt, with_payload=True)
            else:
                n = max(prefetch_k, k)
                dense_query = self._dense_query(cfg, vector)
                dense_params = self._dense_params(cfg, exact, rescore, oversampling, hnsw_ef)
                request = qe.QueryRequest(
                    limit=k,
                    prefetches=[
                        qe.Prefetch(limit=n, query=dense_query, filter=flt, params=dense_params),
                        qe.Prefetch(limit=n, query=sparse_query, filter=flt),
                    ],
                    query=qe.Fusion.Rrf(k=rrf_k),
                    with_payload=True,
                )
        # Only dense distances can be lower-is-better; BM25 dot products and RRF are not.
        sign = -1.0 if mode == "dense" and cfg["distance"] in LOWER_IS_BETTER else 1.0
        return ranked([Hit(str(p.id), sign * p.score, p.payload or {}) for p in shard.query(request)])

    @staticmethod
    def _dense_query(cfg: dict, vector) -> qe.Query:
        return qe.Query.Nearest(as_query_vector(vector, cfg["dim"]), using=cfg.get("dense_vector"))

    @staticmethod
    def _dense_params(cfg: dict, exact: bool, rescore: bool, oversampling: float | None, hnsw_ef: int | None):
        oversampling = oversampling or DEFAULT_OVERSAMPLING.get(cfg["quantization"])
        if exact:
            # Brute force over the original vectors, bypassing HNSW and any quantized copy.
            return qe.SearchParams(
                exact=True,
                quantization=qe.QuantizationSearchParams(ignore=True) if cfg["quantization"] else None,
            )
        if cfg["quantization"]:
            return qe.SearchParams(
                hnsw_ef=hnsw_ef,
                quantization=qe.QuantizationSearchParams(rescore=rescore, oversampling=oversampling),
            )
        return qe.SearchParams(hnsw_ef=hnsw_ef) if hnsw_ef else None

    def collection_config(self, name: str) -> dict:
        """dim, distance, sparse, quantization, HNSW and indexing settings, as recorded at creation."""
        cfg = self._config(self._resolve(name))
        if cfg is None:
            raise CollectionNotFoundError(f"collection {name!r} not found")
        return {"dim": cfg["dim"], "distance": cfg["distance"], "sparse": bool(cfg.get("sparse_vector")),
                "quantization": cfg.get("quantization"), "hnsw_m": cfg.get("hnsw_m", 16),
                "hnsw_ef_construct": cfg.get("hnsw_ef_construct", 100),
                "indexing_threshold": cfg.get("indexing_threshold")}

    def get_vectors(self, name: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Dense vectors of these points (missing ids are absent from the result)."""
        real = self._resolve(name)
        dense_name = self._config(real).get("dense_vector")
        records = self._shard(real).retrieve(point_ids=[uuid.UUID(i) for i in ids], with_payload=False,
                                             with_vector=[dense_name] if dense_name else True)
        return {str(r.id): np.asarray(r.vector[dense_name] if dense_name else r.vector, dtype=np.float32)
                for r in records}

    def _scroll(self, name: str, *, with_payload: bool, with_vectors: bool, batch: int):
        real = self._resolve(name)
        dense_name = self._config(real).get("dense_vector")
        shard = self._shard(real)
        with_vector = ([dense_name] if dense_name else True) if with_vectors else False
        offset = None
        while True:
            request = qe.ScrollRequest(
                offset=offset, limit=batch, with_payload=with_payload, with_vector=with_vector
            )
            records, offset = shard.scroll(request)
            for r in records:
                vec = None
                if with_vectors:
                    vec = np.asarray(r.vector[dense_name] if dense_name else r.vector, dtype=np.float32)
                yield str(r.id), r.payload or {}, vec
            if offset is None:
                return

    # ---- aliases --------------------------------------------------------------------

    def _read_aliases(self) -> dict[str, str]:
        return read_json(self.root / ALIASES_FILE, {}, fix=ALIASES_FIX) or {}

    def aliases(self) -> dict[str, str]:
        return self._read_aliases()  # re-read each time: another process may have moved one

    def resolve_alias(self, alias: str) -> str | None:
        return self.aliases().get(alias)

    def set_alias(self, alias: str, collection: str) -> None:
        check_name(alias, "alias")
        with self._catalog_lock():
            if self._config(collection) is None:
                raise CollectionNotFoundError(f"cannot alias {alias!r} to missing collection {collection!r}")
            if self._config(alias) is not None:
                raise StoreError(f"alias {alias!r} would shadow the collection of the same name")
            aliases = self._read_aliases()
            aliases[alias] = collection
            write_json_atomic(self.root / ALIASES_FILE, aliases)  # one rename: atomic move

    # ---- metadata -------------------------------------------------------------------

    def set_metadata(self, name: str, meta: dict) -> None:
        real = self._resolve(name)
        self._shard(real)  # only the process holding the shard may write its metadata
        path = self._dir(real) / CONFIG_FILE
        with self._catalog_lock():
            cfg = read_json(path)
            cfg["metadata"] = {**cfg.get("metadata", {}), **meta}
            write_json_atomic(path, cfg)

    def get_metadata(self, name: str) -> dict:
        cfg = read_json(self._dir(self._resolve(name)) / CONFIG_FILE) or {}
        return dict(cfg.get("metadata", {}))

    # ---- lifecycle ------------------------------------------------------------------

    def payload_indexes(self, name: str) -> list[str]:
        """Payload fields with an index, as the engine reports them."""
        return sorted(self._shard(self._resolve(name)).info().payload_schema)

    def finalize(self, name: str) -> None:
        """Flush, then build HNSW / quantized vectors / merged segments. Blocks until done."""
        shard = self._shard(self._resolve(name))
        shard.flush()
        shard.optimize()

    def close(self) -> None:
        with self._lock:
            for name in list(self._shards):
                self._close_shard(name)
            self._closed = True

    def __repr__(self) -> str:
        return f"EdgeStore({str(self.root)!r})"

