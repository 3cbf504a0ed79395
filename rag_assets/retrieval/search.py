"""Search a source's live collection (through its alias) and return hits with citations."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from rag_assets.embedding.embedder import Embedder
from rag_assets.sources.filters import glob_match
from rag_assets.contract import citation, collection_name
from rag_assets.embedding.models import get_model
from rag_assets.store.sparse import encode_query as sparse_query
from rag_assets.retrieval import ranking
from rag_assets.store import QUERY_MODES, VectorStore

DEFAULT_MODE = "hybrid"
DEFAULT_FUSION = "score"  # hybrid: "score" (normalised scores, see ranking.py) or "rrf" (in the store)
FUSIONS = ("score", "rrf")  # measured better than dense and sparse alone: see README, retrieval quality


class SearchError(ValueError):
    pass


def payload_filter(language: str | None = None, kind: str | None = None, path: str | None = None) -> dict | None:
    """The store filter for the CLI's and the MCP tools' filter options (unset ones dropped)."""
    flt = {k: v for k, v in {"language": language, "kind": kind, "path": path}.items() if v}
    return flt or None


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
    chunk_id: str = ""
    signature: str = ""
    part: int = 0  # 1, 2, ... for pieces of a split definition

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def citation(self) -> str:
        return citation(self.path, self.start_line, self.end_line, self.commit)


def known_sources(store: VectorStore) -> list[str]:
    """Sources in the sources file, and retired ones whose alias still answers searches."""
    from rag_assets.sources.config import SourcesError, load_sources

    try:
        names = set(load_sources())
    except SourcesError:
        names = set()
    return sorted(names | set(store.aliases()))


class Searcher:
    """Resolves a source to its collection once, loads its model once, then answers many queries."""

    def __init__(self, store: VectorStore, source: str, model: str | None = None, device: str = "auto"):
        self.store, self.source = store, source
        if model:
            try:
                get_model(model)
            except KeyError as e:
                raise SearchError(e.args[0]) from None  # unknown embedding model '...' (known: ...)
        self.collection = collection_name(source, model) if model else store.resolve_alias(source)
        if not self.collection or not store.collection_exists(self.collection):
            known = known_sources(store)
            if source not in known:
                raise SearchError(f"unknown source '{source}' (known sources: {', '.join(known) or 'none'})")
            what, flag = (f"model '{model}'", f" --model {model}") if model else ("its live model", "")
            raise SearchError(f"source '{source}' is not indexed with {what} (run: rag-assets index {source}{flag})")
        meta = store.get_metadata(self.collection)
        self.model_key = meta.get("model") or model
        self.commit = meta.get("indexed_commit", "")
        self.embedder = Embedder(get_model(self.model_key), device=device)
        self._paths: list[str] | None = None

    def search_many(self, queries: list[str], k: int = 10, filter: dict | None = None, *, mode: str = DEFAULT_MODE,
                    path_glob: str | None = None, rerank=None, candidates: int = 50,
                    fusion: str = DEFAULT_FUSION) -> list[list[Hit]]:
        """Top k per query. mode: dense | sparse | hybrid (both lists fused: by normalised scores, or by
        reciprocal rank inside the store; see ranking.py). path_glob narrows to matching paths; rerank
        (a rerank.Scorer) reorders the top `candidates`."""
        if not 1 <= k <= 100:
            raise SearchError(f"k must be between 1 and 100 (got {k})")
        if mode not in QUERY_MODES:
            raise SearchError(f"mode must be one of {', '.join(QUERY_MODES)} (got {mode!r})")
        if any(not q.strip() for q in queries):
            raise SearchError("empty query")
        if fusion not in FUSIONS:
            raise SearchError(f"fusion must be one of {', '.join(FUSIONS)} (got {fusion!r})")
        filter = dict(filter or {})
        if path_glob:
            paths = [p for p in self.paths() if glob_match(path_glob, p)]
            if not paths:
                return [[] for _ in queries]
            filter["path"] = paths
        depth = max(k, candidates) if rerank else k
        dense = self.embedder.encode_queries(queries) if mode != "sparse" else [None] * len(queries)
        out = []
        for q, v in zip(queries, dense):
            if mode == "hybrid" and fusion == "score":
                hits = self._score_fused(q, v, filter or None, depth)
            else:
                raw = self.store.query(self.collection, v, k=depth, filter=filter or None, mode=mode,
                                       sparse_vector=sparse_query(q) if mode != "dense" else None)
                hits = self._hits(raw)
            if rerank is not None:
                from rag_assets.retrieval.rerank import rerank as _rerank

                hits = _rerank(q, hits, rerank, k)
            out.append(hits[:k])
        return out

    def _score_fused(self, query: str, vector, filter: dict | None, depth: int) -> list[Hit]:
        prefetch = max(depth, 50)  # as the store's hybrid query: the top 50 of each list
        dense = self._hits(self.store.query(self.collection, vector, k=prefetch, filter=filter, mode="dense"))
        sparse = self._hits(self.store.query(self.collection, None, k=prefetch, filter=filter, mode="sparse",
                                             sparse_vector=sparse_query(query)))
        return ranking.score_fusion(dense, sparse, depth)

    def search(self, query: str, k: int = 10, filter: dict | None = None, **kw) -> list[Hit]:
        return self.search_many([query], k, filter, **kw)[0]

    def paths(self) -> list[str]:
        """Every indexed path (read once per Searcher): path globs become an any-of filter in the store."""
        if self._paths is None:
            self._paths = sorted({p["path"] for _, p, _ in self.store.scroll(self.collection)})
        return self._paths

    def _hits(self, raw) -> list[Hit]:
        # Every point is valid at the indexed commit (unchanged chunks are not rewritten), so cite that.
        return [
            Hit(path=p["path"], start_line=int(p["start_line"]), end_line=int(p["end_line"]), symbol=p.get("symbol", ""),
                score=round(float(h.score), 4), source=self.source, commit=self.commit or p.get("commit", ""),
                text=p.get("text", ""), language=p.get("language", ""), kind=p.get("kind", ""),
                chunk_id=p.get("chunk_id", ""), signature=p.get("signature") or "",
                part=int(p.get("part") or 0))
            for h in raw for p in [h.payload]
        ]
