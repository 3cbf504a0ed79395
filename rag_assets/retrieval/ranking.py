"""Query-time fusion of the dense and BM25 lists.

Measured on every golden file at once (benchmarks/ranking_bench.py; README "Retrieval quality"): fusing
min-max normalised scores with equal weights beat the engines' reciprocal-rank fusion on recall@10 and
MRR@10 of all five files. RRF keeps only ranks, so a BM25 list where one chunk stands far above the rest
(an exact identifier, an error string) counts no more than a flat dense list; the scores keep that gap.
Tried and not kept (lost on at least one file): RRF with k=10 or 30, weights by query shape, and moving
a type's members above its outline.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # type only: search imports this module
    from rag_assets.retrieval.search import Hit

DENSE_WEIGHT = 0.5  # the BM25 list gets the rest


def score_fusion(dense: list[Hit], sparse: list[Hit], k: int, dense_weight: float = DENSE_WEIGHT) -> list[Hit]:
    """Top k of dense_weight * dense score + (1 - dense_weight) * BM25 score, each min-max normalised over
    its own candidate list; a point in one list only gets 0 from the other."""
    scores: dict[str, float] = {}
    by_key: dict[str, Hit] = {}
    for weight, hits in ((dense_weight, dense), (1 - dense_weight, sparse)):
        if not hits:
            continue
        hi, lo = max(h.score for h in hits), min(h.score for h in hits)
        for h in hits:
            key = h.chunk_id or f"{h.path}:{h.start_line}-{h.end_line}"
            scores[key] = scores.get(key, 0.0) + weight * ((h.score - lo) / (hi - lo) if hi > lo else 1.0)
            by_key.setdefault(key, h)
    order = sorted(scores, key=scores.__getitem__, reverse=True)[:k]
    return [replace(by_key[key], score=round(scores[key], 4)) for key in order]


# What benchmarks/ranking_bench.py compares (Searcher.search_many options).
VARIANTS = {
    "hybrid, engine RRF (before)": {"mode": "hybrid", "fusion": "rrf"},
    "hybrid, score fusion (default)": {"mode": "hybrid", "fusion": "score"},
    "dense": {"mode": "dense"},
    "sparse": {"mode": "sparse"},
}
