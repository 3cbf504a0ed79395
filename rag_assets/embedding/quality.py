"""Vector sanity, measured: the numbers behind the vectors_are_sane check.

Returns (passed, metadata); None passes on empty input. Plain functions: checks and the alias guard call them.
"""

from __future__ import annotations

import numpy as np


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
