"""Random points for Edge store tests, and the knobs that make a small write look like a large one."""

from __future__ import annotations

import numpy as np


def unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


def small_checkpoints(monkeypatch, checkpoint: int, segment: int) -> None:
    """Optimize + flush every `checkpoint` points and cap segments near `segment` points (edge_store), so a
    few hundred points take the path of a write of hundreds of thousands."""
    import rag_assets.store.edge_store as edge_mod

    monkeypatch.setattr(edge_mod, "CHECKPOINT_POINTS", checkpoint)
    monkeypatch.setattr(edge_mod, "SEGMENT_POINTS", segment)
