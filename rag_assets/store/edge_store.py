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

Reads never wait for writes: a collection is a series of copy-on-write generations
(edge_generations.py). A store's first write to a collection copies the published generation and
takes the collection's writer lock (a second writer gets StoreBusyError); finalize() or close()
publishes the copy in one atomic rename, abort() (a failed step) drops it. Readers load a private
view of the published generation, so any number of processes search while an index run writes,
and a long-lived reader moves to a newer generation on its next call.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import qdrant_edge as qe

from rag_assets.store._files import file_lock, read_json, write_json_atomic
from rag_assets.store.edge_generations import (
    CURRENT_FILE,
    META_FILE,
    WRITER_LOCK,
    Generations,
    Pin,
    Writer,
)
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
# Memory of a large write, bounded by design: Edge keeps the points of its appendable segment, and the WAL
# that logs them, in memory until an optimize + flush turns them into an indexed, memory-mapped segment.
# So a write optimizes and flushes every CHECKPOINT_POINTS points, and segments stop growing (no merge) at
# about SEGMENT_POINTS points: an optimize then indexes one segment's worth, whatever the collection's size.
# Measured on 200k random points (384-d, payloads like chunks'): peak RSS 406 MB, flat from the second
# checkpoint on, vs 685 MB at 100k and growing with one optimize at the end (benchmarks/results/scale.md).
CHECKPOINT_POINTS = 50_000
SEGMENT_POINTS = 65_000
MERGE_ABOVE_SEGMENTS = 64  # Edge's merge target (default: one per core) would re-index checkpoints into one


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


@dataclass
class _Held:
    """A shard this store has loaded: a reader's view of a published generation, or the writer's copy."""

    shard: qe.EdgeShard
    generation: str
    pin: Pin | None = None  # reading: keeps the generation from being collected
    writer: Writer | None = None  # writing: the unpublished copy, and the writer lock
    unoptimized: int = 0  # points upserted since the last optimize (see CHECKPOINT_POINTS)


class EdgeStore(StoreBase):
    engine = "edge"

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._held: dict[str, _Held] = {}
        self._configs: dict[str, dict] = {}  # configs of the collections we hold (metadata not used)
        self._lock = threading.RLock()  # guards the held shards within this process
        self._closed = False

    # ---- paths, catalog -------------------------------------------------------------

    def _dir(self, name: str) -> Path:
        return self.root / check_name(name)

    def _gens(self, name: str) -> Generations:
        return Generations(self._dir(name))

    def _config(self, name: str) -> dict | None:
        """The collection's rag_collection.json when it is a published collection (or one we are writing)."""
        if name in self._configs:
            return self._configs[name]
        cfg = read_json(self._dir(name) / CONFIG_FILE)
        if cfg is None:
            return None
        if name in self._held:
            self._configs[name] = cfg  # the config never changes once created
            return cfg
        return cfg if self._gens(name).current() is not None else None

    def _catalog_lock(self):
        return file_lock(self.root / CATALOG_LOCK)

    def _resolve(self, name: str) -> str:
        """Collection name for `name`, following an alias; CollectionNotFoundError otherwise."""
        if name in self._held or self._config(name) is not None:
            return name
        target = self.aliases().get(name)
        if target is not None and self._config(target) is not None:
            return target
        raise CollectionNotFoundError(f"Edge collection or alias {name!r} not found under {self.root}")

    def _shard(self, name: str) -> qe.EdgeShard:
        """The shard to read collection `name` (already resolved): the one we are writing, else a view of
        the published generation, re-opened when a newer one has been published since."""
        with self._lock:
            if self._closed:
                raise StoreError("the Edge store is closed")
            held = self._held.get(name)
            if held is not None and held.writer is not None:
                return held.shard
            gens = self._gens(name)
            current = gens.current()
            if held is not None and held.generation == current:
                return held.shard
            if current is None:
                raise CollectionNotFoundError(f"Edge collection {name!r} not found under {self.root}")
            pin = gens.pin(view=True)
            try:
                shard = self._load(pin.view)
            except BaseException:
                pin.release()
                raise
            self._release(name)
            self._held[name] = _Held(shard, pin.generation, pin=pin)
            return shard

    def _writing(self, name: str) -> _Held:
        """This store's writable copy of collection `name`, begun on the first write: the next generation,
        copied from the published one. Readers keep the published one until we publish."""
        with self._lock:
            if self._closed:
                raise StoreError("the Edge store is closed")
            held = self._held.get(name)
            if held is not None and held.writer is not None:
                return held
            writer = self._gens(name).begin_write()
            try:
                shard = self._load(writer.path) if writer.base is not None else None
            except BaseException:
                self._gens(name).discard(writer)
                raise
            self._release(name)
            held = self._held[name] = _Held(shard, writer.generation, writer=writer)
            return held

    @staticmethod
    def _load(path: Path) -> qe.EdgeShard:
        try:
            return qe.EdgeShard.load(str(path))
        except Exception as e:  # qdrant_edge raises plain Exception
            if _is_lock_error(e):
                raise StoreBusyError(busy_message(path)) from e
            raise StoreError(f"cannot open Edge shard {path}: {e}") from e

    def _publish(self, name: str) -> None:
        """Flush the writer's copy and make it the collection's current generation (one atomic rename).
        The shard stays loaded, read-only from now on, for this store's own reads."""
        held = self._held[name]
        held.shard.flush()  # a view loads segments only: everything must be in them
        points = held.shard.count(qe.CountRequest(exact=True))
        held.pin = self._gens(name).publish(held.writer, {"points": points, "published_at": time.time()})
        held.writer = None

    def _release(self, name: str, *, publish: bool = False) -> None:
        """Unload collection `name`: publish (or discard) what we wrote, close the shard, drop the pin."""
        with self._lock:
            held = self._held.get(name)
            if held is None:
                return
            try:
                if held.writer is not None and publish and held.shard is not None:
                    self._publish(name)
            finally:
                self._held.pop(name, None)
                self._configs.pop(name, None)
                if held.shard is not None:
                    held.shard.close()
                if held.writer is not None:
                    self._gens(name).discard(held.writer)
                if held.pin is not None:
                    held.pin.release()

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
        `sparse` adds the "sparse" BM25 vector (IDF applied by Edge at query time).
        A new collection becomes visible to other stores when it is published (finalize or close)."""
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
                # Left over from a crash before anything was published: drop it (unless a writer holds it).
                fd = self._gens(name).hold_writer()
                try:
                    for p in path.iterdir():
                        if p.name != WRITER_LOCK:
                            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
                finally:
                    os.close(fd)
            writer = self._gens(name).begin_write()
            # Vectors (dense and sparse), graph and payloads memory-mapped: readers in many processes share the page cache
            # instead of each holding the collection in its own memory.
            config = qe.EdgeConfig(
                vectors={DENSE_VECTOR: qe.EdgeVectorParams(size=dim, distance=_DISTANCE[distance], on_disk=True)},
                sparse_vectors=(
                    {SPARSE_VECTOR: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf, on_disk=True)} if sparse else None
                ),
                on_disk_payload=True,
                hnsw_config=qe.HnswIndexConfig(
                    m=hnsw_m, ef_construct=hnsw_ef_construct, full_scan_threshold=_FULL_SCAN_THRESHOLD_KB,
                    on_disk=True,
                ),
                quantization_config=_quantization_config(quantization),
                optimizers=qe.EdgeOptimizersConfig(
                    indexing_threshold=indexing_threshold, max_segment_size=-(-SEGMENT_POINTS * dim * 4 // 1024),
                    default_segment_number=MERGE_ABOVE_SEGMENTS,
                ),
            )
            try:
                shard = qe.EdgeShard.create(str(writer.path), config)
            except Exception as e:
                self._gens(name).discard(writer)
                raise StoreError(f"cannot create Edge shard {writer.path}: {e}") from e
            for field, schema in PAYLOAD_INDEXES.items():
                shard.update(qe.UpdateOperation.create_field_index(field, _SCHEMA[schema]))
            shard.flush()
            self._held[name] = _Held(shard, writer.generation, writer=writer)
            write_json_atomic(writer.path / META_FILE, {})
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
                },
            )
            return True

    def collection_exists(self, name: str) -> bool:
        return self._config(name) is not None

    def list_collections(self) -> dict[str, int]:
        names = sorted(p.name for p in self.root.iterdir() if p.is_dir() and self._config(p.name) is not None)
        return {n: self._count_all(n) for n in names}

    def _count_all(self, name: str) -> int:
        with self._lock:
            if name in self._held:
                return self._held[name].shard.count(qe.CountRequest(exact=True))
        points = self._gens(name).current_info().get("points")
        if points is not None:  # recorded when the generation was published: no shard to open
            return int(points)
        try:
            return self._shard(name).count(qe.CountRequest(exact=True))
        finally:
            self._release(name)  # listing should not keep every collection open

    def delete_collection(self, name: str) -> None:
        path = self._dir(name)
        with self._lock, self._catalog_lock():
            if not path.exists():
                return
            self._release(name)  # what we were writing is dropped with it
            fd = self._gens(name).hold_writer()  # never delete under another process's index run
            try:
                # Config first: a crash mid-rmtree then leaves a partial folder, not a broken collection.
                (path / CONFIG_FILE).unlink(missing_ok=True)
                (path / CURRENT_FILE).unlink(missing_ok=True)
                aliases = self._read_aliases()
                kept = {a: c for a, c in aliases.items() if c != name}  # Qdrant drops them too
                if kept != aliases:
                    write_json_atomic(self.root / ALIASES_FILE, kept)
                # Readers that have it open keep their memory-mapped files until they close.
                shutil.rmtree(path)
            finally:
                os.close(fd)

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
        shard = self._writing(real).shard
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
            self._checkpoint(real, stop - start)

    def _checkpoint(self, name: str, upserted: int) -> None:
        """Optimize and flush every CHECKPOINT_POINTS upserted points: bounded memory for any size of write."""
        with self._lock:
            held = self._held[name]
            held.unoptimized += upserted
            if held.unoptimized >= CHECKPOINT_POINTS:
                held.shard.optimize()
                held.shard.flush()
                held.unoptimized = 0

    def delete(self, name: str, ids: Sequence[str]) -> None:
        if len(ids):
            shard = self._writing(self._resolve(name)).shard
            shard.update(qe.UpdateOperation.delete_points([canonical_id(i) for i in ids]))

    def count(self, name: str, filter: FilterDict | None = None) -> int:
        real = self._resolve(name)
        with self._lock:  # a newer generation may replace the shard: not while another thread uses it
            held = self._held.get(real)
            if filter is None and (held is None or held.writer is None):
                points = self._gens(real).current_info().get("points")
                if points is not None:  # recorded when published: a check that only counts opens no shard
                    return int(points)
            shard = self._shard(real)
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
        with self._lock:
            points = self._shard(real).query(request)
        return ranked([Hit(str(p.id), sign * p.score, p.payload or {}) for p in points])

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
        with self._lock:
            records = self._shard(real).retrieve(point_ids=[uuid.UUID(i) for i in ids], with_payload=False,
                                                 with_vector=[dense_name] if dense_name else True)
        return {str(r.id): np.asarray(r.vector[dense_name] if dense_name else r.vector, dtype=np.float32)
                for r in records}

    def _scroll(self, name: str, *, with_payload: bool, with_vectors: bool, batch: int):
        real = self._resolve(name)
        dense_name = self._config(real).get("dense_vector")
        with_vector = ([dense_name] if dense_name else True) if with_vectors else False
        offset = None
        while True:
            request = qe.ScrollRequest(
                offset=offset, limit=batch, with_payload=with_payload, with_vector=with_vector
            )
            with self._lock:  # one batch at a time: never held across a yield
                records, offset = self._shard(real).scroll(request)
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

    # ---- metadata ----------------------------------------------------------------------

    def _meta_path(self, name: str) -> Path | None:
        held = self._held.get(name)
        if held is not None and held.writer is not None:
            return self._gens(name).path(held.generation) / META_FILE
        # A reader: the published generation's, which its next search moves to (a long-lived reader's view
        # may still be an older one).
        current = self._gens(name).current()
        return None if current is None else self._gens(name).path(current) / META_FILE

    def set_metadata(self, name: str, meta: dict) -> None:
        """Stored with the points of the generation being written, so both are published together.
        Unchanged metadata writes nothing (a no-op run copies no generation)."""
        real = self._resolve(name)
        old = self.get_metadata(real)
        if {**old, **meta} == old:
            return
        path = self._gens(real).path(self._writing(real).generation) / META_FILE
        write_json_atomic(path, {**old, **meta})

    def get_metadata(self, name: str) -> dict:
        real = self._resolve(name)
        with self._lock:
            path = self._meta_path(real)
        meta = read_json(path) if path is not None else None
        if meta is None:  # written before generations: in the collection's config
            meta = (read_json(self._dir(real) / CONFIG_FILE) or {}).get("metadata", {})
        return dict(meta)

    # ---- lifecycle ------------------------------------------------------------------

    def payload_indexes(self, name: str) -> list[str]:
        """Payload fields with an index, as the engine reports them."""
        with self._lock:
            return sorted(self._shard(self._resolve(name)).info().payload_schema)

    def finalize(self, name: str) -> None:
        """Build HNSW / quantized vectors / merged segments, then publish what this store wrote: searches
        move to it in one step. Blocks until done. Nothing written: nothing to do."""
        real = self._resolve(name)
        with self._lock:
            held = self._held.get(real)
            if held is None or held.writer is None:
                return
            held.shard.flush()
            held.shard.optimize()
            self._publish(real)

    def close(self) -> None:
        """Publish what was written and unload everything."""
        self._close(publish=True)

    def abort(self) -> None:
        """Unload everything, dropping what was written and not yet published (a failed run)."""
        self._close(publish=False)

    def _close(self, publish: bool) -> None:
        with self._lock:
            try:
                for name in list(self._held):
                    self._release(name, publish=publish)
            finally:
                self._closed = True

    def __repr__(self) -> str:
        return f"EdgeStore({str(self.root)!r})"

