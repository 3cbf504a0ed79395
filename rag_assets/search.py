"""Search a source's live collection (through its alias) and return hits with citations."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .embedder import Embedder
from .indexing import collection_name
from .models import get_model
from .store import VectorStore


class SearchError(ValueError):
    pass


@dataclass
class Hit:
    path: str
    start_line: int
    end_line: int
    symbol: str
    score: float
    source: str
    commit: str
    text: str
    language: str
    kind: str

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def citation(self) -> str:
        return f"{self.path}:{self.start_line}-{self.end_line} @ {self.commit[:12]}"


class Searcher:
    """Resolves a source to its collection once, loads its model once, then answers many queries."""

    def __init__(self, store: VectorStore, source: str, model: str | None = None, device: str = "auto"):
        self.store, self.source = store, source
        self.collection = collection_name(source, model) if model else store.resolve_alias(source)
        if not self.collection or not store.collection_exists(self.collection):
            what = f"model '{model}'" if model else "its live model"
            raise SearchError(f"source '{source}' is not indexed with {what} (run: rag-assets index {source})")
        meta = store.get_metadata(self.collection)
        self.model_key = meta.get("model") or model
        self.commit = meta.get("indexed_commit", "")
        self.embedder = Embedder(get_model(self.model_key), device=device)

    def search_many(self, queries: list[str], k: int = 10, filter: dict | None = None) -> list[list[Hit]]:
        if not 1 <= k <= 100:
            raise SearchError(f"k must be between 1 and 100 (got {k})")
        if any(not q.strip() for q in queries):
            raise SearchError("empty query")
        vectors = self.embedder.encode_queries(queries)
        return [self._hits(self.store.query(self.collection, v, k=k, filter=filter)) for v in vectors]

    def search(self, query: str, k: int = 10, filter: dict | None = None) -> list[Hit]:
        return self.search_many([query], k, filter)[0]

    def _hits(self, raw) -> list[Hit]:
        # Every point is valid at the indexed commit (unchanged chunks are not rewritten), so cite that.
        return [
            Hit(path=p["path"], start_line=int(p["start_line"]), end_line=int(p["end_line"]), symbol=p.get("symbol", ""),
                score=round(float(h.score), 4), source=self.source, commit=self.commit or p.get("commit", ""),
                text=p.get("text", ""), language=p.get("language", ""), kind=p.get("kind", ""))
            for h in raw for p in [h.payload]
        ]
