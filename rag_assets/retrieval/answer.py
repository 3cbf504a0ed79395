"""`ask`: the best chunks for a question, merged per file and cut to a token budget, with citations.

An agent gets five right spans instead of a whole repository. With an OpenAI-compatible endpoint
configured (RAG_LLM_BASE_URL, RAG_LLM_API_KEY, RAG_LLM_MODEL) a model also answers from that context.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from rag_assets.chunking import split_lines
from rag_assets.contract import citation
from rag_assets.retrieval.search import Hit
from rag_assets import settings
from rag_assets.tables import Tables, read_table_if_exists
from rag_assets.chunking.tokens import count_tokens

MIN_BUDGET, MAX_BUDGET = 200, 100_000  # tokens of context; below 200 barely one span fits

SYSTEM_PROMPT = (
    "You answer questions about a code base using ONLY the context given. Cite every claim with the "
    "span it comes from, written exactly as in the context headers: path:start-end. If the context "
    "does not answer the question, say so."
)


@dataclass
class Block:
    """One contiguous span of one file (merged from overlapping hits), or a non-contiguous chunk."""

    path: str
    start_line: int
    end_line: int
    commit: str
    symbols: list[str]
    lines: dict[int, str] | None  # line number -> text, for contiguous spans
    text: str
    score: float
    language: str = ""

    @property
    def citation(self) -> str:
        return citation(self.path, self.start_line, self.end_line, self.commit)

    def render(self) -> str:
        body = "\n".join(self.lines[n] for n in range(self.start_line, self.end_line + 1)) if self.lines else self.text
        names = ", ".join(s for s in dict.fromkeys(self.symbols) if s)
        return f"### {self.citation}{f'  ({names})' if names else ''}\n```{self.language}\n{body}\n```\n"


@dataclass
class Context:
    question: str
    blocks: list[Block] = field(default_factory=list)
    tokens: int = 0
    budget: int = 0
    source_tokens: int = 0
    dropped: int = 0  # hits that did not fit the budget

    @property
    def text(self) -> str:
        return "\n".join(b.render() for b in self.blocks)

    @property
    def saving(self) -> float:
        return 1 - self.tokens / self.source_tokens if self.source_tokens else 0.0


def _as_block(h: Hit) -> Block:
    lines = split_lines(h.text)
    contiguous = len(lines) == h.end_line - h.start_line + 1
    return Block(h.path, h.start_line, h.end_line, h.commit, [h.symbol],
                 dict(zip(range(h.start_line, h.end_line + 1), lines)) if contiguous else None, h.text, h.score,
                 h.language if h.language not in ("text", "") else "")


def merge_hits(hits: list[Hit]) -> list[Block]:
    """Merge overlapping or adjacent contiguous spans of the same file; keep the best score; rank order."""
    blocks: list[Block] = []
    for h in hits:
        b = _as_block(h)
        for other in blocks:
            if (other.path == b.path and other.lines is not None and b.lines is not None
                    and b.start_line <= other.end_line + 1 and other.start_line <= b.end_line + 1):
                other.lines.update(b.lines)
                other.start_line, other.end_line = min(other.start_line, b.start_line), max(other.end_line, b.end_line)
                other.symbols += b.symbols
                other.score = max(other.score, b.score)
                break
            if other.path == b.path and other.start_line <= b.start_line and b.end_line <= other.end_line and other.lines:
                break  # already inside a merged span
        else:
            blocks.append(b)
    return blocks


def source_tokens(source: str) -> int:
    """Tokens of the whole source (all its chunks), what an agent would read without retrieval; 0 if unknown."""
    path = Tables(settings.current().data_dir).chunks_path(source)
    return _tokens_of(path, path.stat().st_mtime_ns) if path.exists() else 0


@lru_cache(maxsize=32)
def _tokens_of(path: Path, mtime_ns: int) -> int:  # keyed on mtime: a re-chunk invalidates it
    table = read_table_if_exists(path)
    return int(table.df["n_tokens"].sum()) if table is not None else 0


def assemble(question: str, hits: list[Hit], budget: int, source_tokens: int) -> Context:
    """Add blocks best-first while they fit the budget (counted with tiktoken, headers included)."""
    ctx = Context(question, budget=budget, source_tokens=source_tokens)
    for b in merge_hits(hits):
        cost = count_tokens(b.render())
        if ctx.tokens + cost > budget:
            ctx.dropped += 1
            continue
        ctx.blocks.append(b)
        ctx.tokens += cost
    return ctx


def ask_llm(ctx: Context, timeout: float = 120) -> str:
    """One chat completion against an OpenAI-compatible endpoint; the answer cites the context's spans."""
    import httpx

    llm = settings.current().llm
    if llm is None:
        raise RuntimeError("no model configured (set RAG_LLM_BASE_URL, RAG_LLM_API_KEY, RAG_LLM_MODEL)")
    base, key, model = llm.base_url, llm.api_key, llm.model
    resp = httpx.post(
        f"{base}/chat/completions", timeout=timeout,
        headers={"Authorization": f"Bearer {key}"} if key else {},
        json={"model": model, "temperature": 0, "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"Context:\n\n{ctx.text}\n\nQuestion: {ctx.question}"},
        ]},
    )
    if resp.status_code != 200:
        raise RuntimeError(f"model endpoint {base} answered HTTP {resp.status_code}: {resp.text[:200]}")
    return resp.json()["choices"][0]["message"]["content"]
