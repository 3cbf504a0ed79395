"""Vector sanity, measured: the numbers behind the vectors_are_sane check.

Returns (passed, metadata); None passes on empty input. Plain functions: checks and the alias guard call them.
Exact on every vector, streamed: `vector_quality_batches` reads the table a row group at a time.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def vector_quality(vectors: np.ndarray | None, dim: int, normalized: bool) -> tuple[bool, dict]:
    """Right dimension, no NaN or zero vectors, unit norms when the model normalises."""
    return vector_quality_batches([] if vectors is None else [vectors], dim, normalized)


def vector_quality_batches(batches: Iterable[np.ndarray], dim: int, normalized: bool) -> tuple[bool, dict]:
    """vector_quality over vectors given in batches (each (n, d)): the same figures."""
    n = nan = zero = off_norm = 0
    got_dim, lo, hi = None, np.inf, -np.inf
    for vectors in batches:
        if vectors is None or not len(vectors):
            continue
        got_dim = int(vectors.shape[1])
        norms = np.linalg.norm(vectors, axis=1)
        n += len(vectors)
        nan += int(np.isnan(vectors).any(axis=1).sum())
        zero += int((norms < 1e-6).sum())
        off_norm += int((np.abs(norms - 1) > 1e-3).sum()) if normalized else 0
        if not np.isnan(norms).all():
            lo, hi = min(lo, float(np.nanmin(norms))), max(hi, float(np.nanmax(norms)))
    if n == 0:
        return False, {"vectors": 0}
    meta = {"vectors": n, "dim": got_dim, "expected_dim": dim, "nan": nan, "zero": zero,
            "norm_min": lo if np.isfinite(lo) else float("nan"), "norm_max": hi if np.isfinite(hi) else float("nan"),
            "off_unit_norm": off_norm}
    return got_dim == dim and nan == zero == off_norm == 0, meta
