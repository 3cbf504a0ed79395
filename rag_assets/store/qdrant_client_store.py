"""VectorStore on qdrant-client: a Qdrant server (url) or its embedded local mode (path).

Local mode keeps everything (including collection metadata and aliases) in the folder, but
is slow (pure Python + sqlite) and always searches exactly; it ignores HNSW, quantization and
payload-index settings. We pass them anyway, since they matter on a server, and silence only
the warnings saying so. Its folder lock (portalocker on <path>/.lock) makes a second client,
in any process, fail: reported as StoreBusyError.

Points carry a named dense vector "dense" and a sparse BM25 vector "sparse" with the IDF
modifier, which local mode and a server both apply natively. Hybrid = one query_points call
with two prefetches fused by Qdrant's parametrised RRF (`RrfQuery`, server >= 1.16; local
mode implements it too). Collections created before hybrid search keep their unnamed dense
vector and answer dense queries only.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from qdrant_client import QdrantClient
from qdrant_client import models as qm
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

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

_DISTANCE = {
    "cosine": qm.Distance.COSINE,
    "dot": qm.Distance.DOT,
    "euclid": qm.Distance.EUCLID,
    "manhattan": qm.Distance.MANHATTAN,
}
_DISTANCE_NAME = {v: k for k, v in _DISTANCE.items()}
_SCHEMA = {"keyword": qm.PayloadSchemaType.KEYWORD, "integer": qm.PayloadSchemaType.INTEGER}

# Local-mode warnings about settings that only a server honours (see module docstring).
_LOCAL_NOISE = (
    "Payload indexes have no effect in the local Qdrant",
    "Local mode performs exact",
)


def _client_filter(filter: FilterDict | None) -> qm.Filter | None:
    conds = parse_filter(filter)
    if not conds:
        return None
    return qm.Filter(
        must=[
            qm.FieldCondition(
                key=c.key,
                match=qm.MatchAny(any=list(c.values)) if c.any_of else qm.MatchValue(value=c.values[0]),
            )
            for c in conds
        ]
    )


@dataclass(frozen=True)
class _Layout:
    """What a collection stores; pre-hybrid collections have one unnamed dense vector."""

    dim: int
    distance: str
    dense: str | None  # dense vector name, None = unnamed
    sparse: bool

    @classmethod
    def of(cls, params: qm.CollectionParams) -> "_Layout":
        vectors = params.vectors
        if isinstance(vectors, dict):
            dense, vp = DENSE_VECTOR, vectors[DENSE_VECTOR]
        else:
            dense, vp = None, vectors
        sparse = SPARSE_VECTOR in (params.sparse_vectors or {})
        return cls(vp.size, _DISTANCE_NAME[vp.distance], dense, sparse)


def _sparse_vec(vec) -> qm.SparseVector:
    indices, values = as_sparse(vec)
    return qm.SparseVector(indices=indices, values=values)




def _quantization_config(quantization: str | None):
    if quantization == "int8":
        return qm.ScalarQuantization(
            scalar=qm.ScalarQuantizationConfig(type=qm.ScalarType.INT8, quantile=0.99, always_ram=True)
        )
    if quantization == "binary":
        return qm.BinaryQuantization(binary=qm.BinaryQuantizationConfig(always_ram=True))
    return None


class QdrantClientStore(StoreBase):
    def __init__(
        self,
        *,
        path: str | Path | None = None,
        url: str | None = None,
        api_key: str | None = None,
        timeout: int | None = None,
    ):
        if (path is None) == (url is None):
            raise StoreError("give exactly one of path (embedded local mode) or url (server)")
        self.path = Path(path) if path is not None else None
        self.engine = "local" if path is not None else "server"
        self._url = url
        self._layouts: dict[str, _Layout] = {}  # collection/alias -> layout (vector names, distance)
        self._oversampling: dict[str, float | None] = {}  # collection/alias -> default rescoring oversampling
        if path is not None:
            self.path.mkdir(parents=True, exist_ok=True)
            try:
                self.client = QdrantClient(path=str(self.path))
            except RuntimeError as e:
                if "already accessed by another instance" in str(e):
                    raise StoreBusyError(busy_message(self.path)) from None
                raise
        else:
            self.client = QdrantClient(url=url, api_key=api_key, timeout=timeout)

    # ---- helpers --------------------------------------------------------------------

    @contextlib.contextmanager
    def _call(self, name: str | None = None):
        """Map client errors to ours and hush local-mode 'setting ignored' warnings."""
        with warnings.catch_warnings():
            if self.engine == "local":
                for msg in _LOCAL_NOISE:
                    warnings.filterwarnings("ignore", message=msg)
            try:
                yield
            except ValueError as e:  # local mode: "Collection x not found"
                if "not found" in str(e):
                    raise CollectionNotFoundError(f"collection or alias {name!r} not found") from e
                raise
            except UnexpectedResponse as e:  # server
                if e.status_code == 404:
                    raise CollectionNotFoundError(f"collection or alias {name!r} not found: {e}") from e
                raise StoreError(f"Qdrant server error on {name!r}: {e}") from e
            except ResponseHandlingException as e:  # server unreachable, timeout, ...
                raise StoreError(f"cannot reach the Qdrant server ({self._url}): {e}") from e

    def _real(self, name: str) -> str:
        """Collection behind `name` (a collection or an alias)."""
        if self.collection_exists(name):
            return name
        target = self.resolve_alias(name)
        if target is None:
            raise CollectionNotFoundError(f"collection or alias {name!r} not found")
        return target

    def _layout(self, name: str) -> _Layout:
        if name not in self._layouts:
            with self._call(name):
                self._layouts[name] = _Layout.of(self.client.get_collection(self._real(name)).config.params)
        return self._layouts[name]

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
        check_name(name)
        distance = check_distance(distance)
        quantization = check_quantization(quantization)
        with self._call(name):
            if self.collection_exists(name):
                have = _Layout.of(self.client.get_collection(name).config.params)
                if (have.dim, have.distance) != (dim, distance):
                    raise StoreError(
                        f"collection {name!r} exists with dim={have.dim}, distance={have.distance}; "
                        f"asked for dim={dim}, distance={distance}. Use a new collection name "
                        "(e.g. one per embedding model) or delete the old one."
                    )
                if sparse and not have.sparse:
                    raise no_sparse_error(name)
                return False
            if name in self.aliases():
                raise StoreError(f"{name!r} is already an alias; pick another collection name")
            self.client.create_collection(
                name,
                vectors_config={DENSE_VECTOR: qm.VectorParams(size=dim, distance=_DISTANCE[distance])},
                sparse_vectors_config=(
                    {SPARSE_VECTOR: qm.SparseVectorParams(modifier=qm.Modifier.IDF)} if sparse else None
                ),
                hnsw_config=qm.HnswConfigDiff(m=hnsw_m, ef_construct=hnsw_ef_construct),
                quantization_config=_quantization_config(quantization),
                optimizers_config=(
                    qm.OptimizersConfigDiff(indexing_threshold=indexing_threshold)
                    if indexing_threshold is not None
                    else None
                ),
            )
            for field, schema in PAYLOAD_INDEXES.items():
                self.client.create_payload_index(name, field, _SCHEMA[schema], wait=True)
        return True

    def collection_exists(self, name: str) -> bool:
        # Not client.collection_exists: local mode answers True for aliases too.
        with self._call(name):
            return name in {c.name for c in self.client.get_collections().collections}

    def list_collections(self) -> dict[str, int]:
        with self._call():
            names = sorted(c.name for c in self.client.get_collections().collections)
            return {n: self.client.count(n, exact=True).count for n in names}

    def delete_collection(self, name: str) -> None:
        with self._call(name):
            self.client.delete_collection(name)  # also drops its aliases; no-op if missing
        self._layouts.clear()

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
        layout = self._layout(name)
        vecs = self._checked_points(name, ids, vectors, payloads, sparse, bool(layout.sparse))
        for start in range(0, len(ids), batch_size):
            stop = min(start + batch_size, len(ids))
            points = [
                qm.PointStruct(
                    id=canonical_id(ids[i]),
                    vector=self._point_vector(layout.dense is not None, vecs[i].tolist(), sparse, i, _sparse_vec),
                    payload=dict(payloads[i]),
                )
                for i in range(start, stop)
            ]
            with self._call(name):
                self.client.upsert(name, points=points, wait=True)
            if progress is not None:
                progress(stop - start)

    def delete(self, name: str, ids: Sequence[str]) -> None:
        if len(ids):
            with self._call(name):
                self.client.delete(
                    name, points_selector=qm.PointIdsList(points=[canonical_id(i) for i in ids]), wait=True
                )

    def count(self, name: str, filter: FilterDict | None = None) -> int:
        with self._call(name):
            return self.client.count(name, count_filter=_client_filter(filter), exact=True).count

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
        layout = self._layout(name)
        if mode != "dense" and not layout.sparse:
            raise no_sparse_error(name)
        flt = _client_filter(filter)
        params = qm.SearchParams(
            exact=exact,
            hnsw_ef=hnsw_ef,
            # exact => original vectors only; otherwise search quantized (if any) and rescore.
            quantization=qm.QuantizationSearchParams(
                ignore=exact, rescore=rescore, oversampling=oversampling or self._default_oversampling(name)),
        )
        dense = as_query_vector(vector).tolist() if vector is not None else None
        sparse = _sparse_vec(sparse_vector) if sparse_vector is not None else None
        if mode == "dense":
            kw = dict(query=dense, using=layout.dense, search_params=params)
        elif mode == "sparse":
            kw = dict(query=sparse, using=SPARSE_VECTOR)
        else:
            n = max(prefetch_k, k)
            kw = dict(
                prefetch=[
                    qm.Prefetch(query=dense, using=layout.dense, limit=n, filter=flt, params=params),
                    qm.Prefetch(query=sparse, using=SPARSE_VECTOR, limit=n, filter=flt),
                ],
                query=qm.RrfQuery(rrf=qm.Rrf(k=rrf_k)),
            )
        with self._call(name):
            points = self.client.query_points(name, limit=k, query_filter=flt, with_payload=True, **kw).points
        # Only dense distances can be lower-is-better; BM25 dot products and RRF are not.
        sign = -1.0 if mode == "dense" and layout.distance in LOWER_IS_BETTER else 1.0
        return ranked([Hit(canonical_id(p.id), sign * p.score, p.payload or {}) for p in points])

    def _default_oversampling(self, name: str) -> float | None:
        """Per the collection's quantization (read once): local mode has none, a server may."""
        if name not in self._oversampling:
            self._oversampling[name] = DEFAULT_OVERSAMPLING.get(self.collection_config(name)["quantization"])
        return self._oversampling[name]

    def collection_config(self, name: str) -> dict:
        """dim, distance, sparse; on a server also quantization, HNSW and indexing settings (local mode
        ignores those, so it reports none)."""
        layout = self._layout(name)
        out = {"dim": layout.dim, "distance": layout.distance, "sparse": layout.sparse, "quantization": None}
        if self.engine == "server":
            with self._call(name):
                cfg = self.client.get_collection(self._real(name)).config
            q = cfg.quantization_config
            out.update(
                quantization="int8" if getattr(q, "scalar", None) else "binary" if getattr(q, "binary", None) else None,
                hnsw_m=cfg.hnsw_config.m, hnsw_ef_construct=cfg.hnsw_config.ef_construct,
                indexing_threshold=cfg.optimizer_config.indexing_threshold,
            )
        return out

    def get_vectors(self, name: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Dense vectors of these points (missing ids are absent from the result)."""
        dense = self._layout(name).dense
        with self._call(name):
            records = self.client.retrieve(self._real(name), list(ids), with_payload=False,
                                           with_vectors=[dense] if dense else True)
        return {str(r.id): np.asarray(r.vector[dense] if dense else r.vector, dtype=np.float32) for r in records}

    def _scroll(self, name: str, *, with_payload: bool, with_vectors: bool, batch: int):
        dense = self._layout(name).dense if with_vectors else None
        with_vector = ([dense] if dense else True) if with_vectors else False
        offset = None
        while True:
            with self._call(name):
                records, offset = self.client.scroll(
                    name, limit=batch, offset=offset, with_payload=with_payload, with_vectors=with_vector
                )
            for r in records:
                vec = None
                if with_vectors:
                    vec = np.asarray(r.vector[dense] if dense else r.vector, dtype=np.float32)
                yield canonical_id(r.id), r.payload or {}, vec
            if offset is None:
                return

    # ---- aliases --------------------------------------------------------------------

    def aliases(self) -> dict[str, str]:
        with self._call():
            return {a.alias_name: a.collection_name for a in self.client.get_aliases().aliases}

    def resolve_alias(self, alias: str) -> str | None:
        return self.aliases().get(alias)

    def set_alias(self, alias: str, collection: str) -> None:
        check_name(alias, "alias")
        if not self.collection_exists(collection):
            raise CollectionNotFoundError(f"cannot alias {alias!r} to missing collection {collection!r}")
        if self.collection_exists(alias):
            raise StoreError(f"alias {alias!r} would shadow the collection of the same name")
        ops: list = []
        if alias in self.aliases():
            ops.append(qm.DeleteAliasOperation(delete_alias=qm.DeleteAlias(alias_name=alias)))
        ops.append(
            qm.CreateAliasOperation(create_alias=qm.CreateAlias(collection_name=collection, alias_name=alias))
        )
        with self._call(collection):
            # delete + create in one request: Qdrant applies the batch atomically.
            self.client.update_collection_aliases(change_aliases_operations=ops)
        self._layouts.pop(alias, None)

    # ---- metadata (native collection metadata, persisted by local mode too) --------

    def set_metadata(self, name: str, meta: dict) -> None:
        if not meta:
            return  # an empty dict would *clear* the metadata on a server
        with self._call(name):
            self.client.update_collection(self._real(name), metadata=meta)  # Qdrant merges keys

    def get_metadata(self, name: str) -> dict:
        with self._call(name):
            return dict(self.client.get_collection(self._real(name)).config.metadata or {})

    # ---- lifecycle ------------------------------------------------------------------

    def payload_indexes(self, name: str) -> list[str]:
        """Payload fields with an index, as the engine reports them."""
        with self._call(name):
            return sorted(self.client.get_collection(self._real(name)).payload_schema)

    def finalize(self, name: str) -> None:
        """Nothing to do: local mode persists every write; a server indexes in the background."""
        self._real(name)  # still fail loudly on a missing collection

    def close(self) -> None:
        self.client.close()

    def __repr__(self) -> str:
        where = self.path if self.path is not None else "server"
        return f"QdrantClientStore({self.engine}, {str(where)!r})"
