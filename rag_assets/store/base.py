"""The vector-store contract shared by every engine: errors, `Hit`, filters, the Protocol."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol, Sequence, Union, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from rag_assets.store.sparse import SparseVec


class StoreError(RuntimeError):
    """Base class for every vector-store failure."""


class StoreBusyError(StoreError):
    """The embedded store folder is locked by another process."""


class CollectionNotFoundError(StoreError):
    """The collection (or alias) does not exist."""


@dataclass(frozen=True)
class Hit:
    id: str  # canonical UUID string
    score: float  # higher = better, whatever the distance
    payload: dict


# Fields the chunk payloads are filtered on; every collection gets a keyword index for each.
PAYLOAD_INDEXES: dict[str, str] = {
    "source": "keyword",
    "path": "keyword",
    "language": "keyword",
    "symbol": "keyword",
    "kind": "keyword",
}

DISTANCES = ("cosine", "dot", "euclid", "manhattan")
# Euclid/Manhattan scores are distances (lower = closer): negate them so higher is always better.
LOWER_IS_BETTER = frozenset({"euclid", "manhattan"})
QUANTIZATIONS = (None, "int8", "binary")

# Named vectors of every new collection. Collections made before hybrid search have one
# unnamed dense vector; engines still read and write those (dense mode only).
DENSE_VECTOR = "dense"
SPARSE_VECTOR = "sparse"  # BM25 tf weights (rag_assets.store.sparse); Qdrant applies IDF
QUERY_MODES = ("dense", "sparse", "hybrid")
DEFAULT_RRF_K = 60  # the RRF paper's constant; Qdrant's own default (2) lets rank 1 dominate

FilterValue = Union[str, int, bool]
# {field: value} -> exact match; {field: [v1, v2]} -> match any; several keys are AND-ed.
FilterDict = dict[str, Union[FilterValue, Sequence[FilterValue]]]


@dataclass(frozen=True)
class Condition:
    """One normalised filter clause; engines translate these into their own filter objects."""

    key: str
    values: tuple[FilterValue, ...]
    any_of: bool  # True: match any of `values`; False: exact match of values[0]


def parse_filter(filter: FilterDict | None) -> list[Condition]:
    if not filter:
        return []
    out = []
    for key, value in filter.items():
        if isinstance(value, (str, int, bool)):
            out.append(Condition(key, (value,), False))
        elif isinstance(value, (list, tuple, set, frozenset)):
            values = tuple(value)
            if not all(isinstance(v, (str, int, bool)) for v in values):
                raise StoreError(f"filter {key!r}: any-of values must be str/int/bool, got {value!r}")
            out.append(Condition(key, values, True))
        else:
            raise StoreError(f"filter {key!r}: expected str/int/bool or a list of them, got {value!r}")
    return out


def canonical_id(point_id: Any) -> str:
    """Point ids are UUIDs; normalise any spelling to the canonical lowercase-hyphenated form."""
    try:
        return str(point_id if isinstance(point_id, uuid.UUID) else uuid.UUID(str(point_id)))
    except ValueError:
        raise StoreError(f"point id {point_id!r} is not a UUID string") from None


def check_distance(distance: str) -> str:
    d = distance.lower()
    if d not in DISTANCES:
        raise StoreError(f"unknown distance {distance!r}; expected one of {DISTANCES}")
    return d


# Default rescoring oversampling per quantization. Measured on real MiniLM vectors of this repository:
# binary needs x8 to find 98.5 % of exact search's top 10 (x2: 81 %, x4: 95 %); int8 is exact at x2.
DEFAULT_OVERSAMPLING = {"int8": 2.0, "binary": 8.0}


def check_quantization(quantization: str | None) -> str | None:
    if quantization not in QUANTIZATIONS:
        raise StoreError(f"unknown quantization {quantization!r}; expected one of {QUANTIZATIONS}")
    return quantization


def as_matrix(vectors: Any, n: int) -> np.ndarray:
    arr = np.ascontiguousarray(vectors, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] != n:
        raise StoreError(f"vectors must have shape ({n}, dim), got {arr.shape}")
    return arr


def as_query_vector(vector: Any, dim: int | None = None) -> np.ndarray:
    arr = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
    if dim is not None and arr.shape[0] != dim:
        raise StoreError(f"query vector has dim {arr.shape[0]}, collection expects {dim}")
    return arr


def as_sparse(vec: Any) -> tuple[list[int], list[float]]:
    """(indices, values) lists of a SparseVec (or anything with .indices/.values), validated."""
    try:
        idx = np.asarray(vec.indices, dtype=np.int64).reshape(-1)
        val = np.asarray(vec.values, dtype=np.float32).reshape(-1)
    except AttributeError:
        raise StoreError(f"expected a SparseVec (.indices, .values), got {type(vec).__name__}") from None
    if idx.shape != val.shape:
        raise StoreError(f"sparse vector has {idx.size} indices but {val.size} values")
    if idx.size and (idx.min() < 0 or idx.max() > 0xFFFFFFFF):
        raise StoreError("sparse vector indices must fit in uint32")
    if np.unique(idx).size != idx.size:
        raise StoreError("sparse vector indices must be unique")
    return idx.tolist(), val.tolist()


def ranked(hits: list[Hit]) -> list[Hit]:
    """Best first, equal scores by id: engines order ties arbitrarily (segments, threads), and
    RRF ties often (ranks 3+5 and 5+3 sum to the same score)."""
    return sorted(hits, key=lambda h: (-h.score, h.id))


def check_query(mode: str, vector: Any, sparse_vector: Any, k: int, prefetch_k: int, rrf_k: int) -> None:
    if mode not in QUERY_MODES:
        raise StoreError(f"unknown query mode {mode!r}; expected one of {QUERY_MODES}")
    if mode != "sparse" and vector is None:
        raise StoreError(f"mode {mode!r} needs a dense query vector")
    if mode != "dense" and sparse_vector is None:
        raise StoreError(f"mode {mode!r} needs sparse_vector (rag_assets.store.sparse.encode_query)")
    if k < 1 or prefetch_k < 1 or rrf_k < 1:
        raise StoreError(f"k, prefetch_k and rrf_k must be >= 1, got {k}, {prefetch_k}, {rrf_k}")


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")


def check_name(name: str, what: str = "collection") -> str:
    # Names become folder/file names for the Edge engine: keep them path-safe everywhere.
    if not isinstance(name, str) or not _NAME_RE.match(name) or name.endswith((".json", ".lock", ".tmp")):
        raise StoreError(
            f"invalid {what} name {name!r}: use letters, digits, '_', '-', '.' (not leading), max 200 chars"
        )
    return name


def busy_message(folder: str | Path) -> str:
    return (
        f"The vector store folder {folder} is locked by another process "
        "(e.g. a running Dagster index run holds it open). Retry when that run finishes, "
        "or point QDRANT_URL at a Qdrant server, which allows concurrent access."
    )


@runtime_checkable
class VectorStore(Protocol):
    engine: str  # "edge" | "local" | "server"

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
    ) -> bool: ...

    def collection_exists(self, name: str) -> bool: ...

    def upsert(
        self,
        name: str,
        ids: Sequence[str],
        vectors: np.ndarray,
        payloads: Sequence[dict],
        *,
        sparse: "Sequence[SparseVec] | None" = None,
        batch_size: int = 512,
        progress: Callable[[int], None] | None = None,
    ) -> None: ...

    def delete(self, name: str, ids: Sequence[str]) -> None: ...

    def ids(self, name: str) -> set[str]: ...

    def count(self, name: str, filter: FilterDict | None = None) -> int: ...

    def query(
        self,
        name: str,
        vector: np.ndarray | None = None,
        k: int = 10,
        filter: FilterDict | None = None,
        *,
        mode: str = "dense",
        sparse_vector: "SparseVec | None" = None,
        prefetch_k: int = 50,
        rrf_k: int = DEFAULT_RRF_K,
        exact: bool = False,
        rescore: bool = True,
        oversampling: float | None = None,
        hnsw_ef: int | None = None,
    ) -> list[Hit]: ...

    def scroll(
        self, name: str, *, with_vectors: bool = False, batch: int = 1000
    ) -> Iterator[tuple[str, dict, np.ndarray | None]]: ...

    def set_alias(self, alias: str, collection: str) -> None: ...

    def resolve_alias(self, alias: str) -> str | None: ...

    def aliases(self) -> dict[str, str]: ...

    def list_collections(self) -> dict[str, int]: ...

    def set_metadata(self, name: str, meta: dict) -> None: ...

    def get_metadata(self, name: str) -> dict: ...

    def delete_collection(self, name: str) -> None: ...

    def payload_indexes(self, name: str) -> list[str]: ...

    def get_vectors(self, name: str, ids: Sequence[str]) -> dict[str, np.ndarray]: ...

    def collection_config(self, name: str) -> dict: ...

    def finalize(self, name: str) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...

    def __enter__(self) -> "VectorStore": ...

    def __exit__(self, *exc: object) -> None: ...


def no_sparse_error(name: str) -> StoreError:
    return StoreError(
        f"collection {name!r} has no sparse vectors (created with sparse=False or before hybrid "
        "search): query it in dense mode, or re-index it into a new collection"
    )


class StoreBase:
    """What the engines share: argument checks, point vectors, id listing, scrolling, context management.

    An engine supplies `_scroll(name, with_payload=, with_vectors=, batch=)` and `close()`."""

    def _scroll(self, name: str, *, with_payload: bool, with_vectors: bool, batch: int):  # pragma: no cover
        raise NotImplementedError

    def ids(self, name: str) -> set[str]:
        return {pid for pid, _, _ in self._scroll(name, with_payload=False, with_vectors=False, batch=10_000)}

    def scroll(self, name: str, *, with_vectors: bool = False, batch: int = 1000
               ) -> Iterator[tuple[str, dict, np.ndarray | None]]:
        return self._scroll(name, with_payload=True, with_vectors=with_vectors, batch=batch)

    @staticmethod
    def _checked_points(name: str, ids: Sequence[str], vectors: Any, payloads: Sequence[dict],
                        sparse: Sequence | None, has_sparse: bool) -> np.ndarray:
        """Validate an upsert's arguments; the dense vectors as an (n, dim) float32 matrix."""
        if len(payloads) != len(ids):
            raise StoreError(f"{len(ids)} ids but {len(payloads)} payloads")
        vecs = as_matrix(vectors, len(ids))
        if sparse is not None:
            if len(sparse) != len(ids):
                raise StoreError(f"{len(ids)} ids but {len(sparse)} sparse vectors")
            if not has_sparse:
                raise no_sparse_error(name)
        return vecs

    @staticmethod
    def _point_vector(named: bool, dense, sparse: Sequence | None, i: int, to_sparse: Callable):
        """A point's vectors: named dense (+ sparse) in hybrid collections, one unnamed vector before them."""
        if not named:
            return dense  # pre-hybrid collection: one unnamed vector
        vector: dict = {DENSE_VECTOR: dense}
        # Empty sparse vectors stay out: the IDF corpus is the points that have one, on every engine
        # (local mode would count empty ones).
        if sparse is not None and len(sparse[i].indices):
            vector[SPARSE_VECTOR] = to_sparse(sparse[i])
        return vector

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def abort(self) -> None:
        """Close after a failure. Engines that stage writes (Edge) drop what was not published."""
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc: object) -> None:
        self.abort() if exc_type is not None else self.close()
