"""`ask`, one flow for the CLI and the MCP server: search, merge spans per file, cut to a token budget,
and let a configured LLM answer from that context. A failing model call keeps the context and says why."""

from __future__ import annotations

from dataclasses import dataclass

from rag_assets import settings
from rag_assets.retrieval.answer import (
    MAX_BUDGET, MIN_BUDGET, SYSTEM_PROMPT, Context, assemble, ask_llm, source_tokens,
)
from rag_assets.retrieval.search import DEFAULT_MODE, SearchError, Searcher, payload_filter
from rag_assets.service.errors import one_line
from rag_assets.service.stores import open_store_for_reading

ASK_CANDIDATES = 20  # hits ranked before the budget cuts them


@dataclass
class Answer:
    context: Context
    model: str | None  # the LLM that answered; None when none is configured
    answer: str | None  # its answer, or "(model call failed: ...)"
    cached: bool = False  # the answer came from the answer cache (same question, same context, same model)

    def to_dict(self) -> dict:
        c = self.context
        return {"question": c.question, "context": c.text, "citations": [b.citation for b in c.blocks],
                "tokens_used": c.tokens, "budget": c.budget, "source_tokens": c.source_tokens,
                "saving": round(c.saving, 4), "dropped": c.dropped, "model": self.model, "answer": self.answer,
                "cached": self.cached}


def ask(question: str, source: str, budget: int = 4000, *, k: int = ASK_CANDIDATES, model: str | None = None,
        mode: str = DEFAULT_MODE, rerank: str | None = None, language: str | None = None, kind: str | None = None,
        path_glob: str | None = None, include_notes: bool = False) -> Answer:
    """include_notes: the source's most relevant notes (rag_assets/memory) go first in the context."""
    if not MIN_BUDGET <= budget <= MAX_BUDGET:
        raise SearchError(f"budget must be between {MIN_BUDGET} and {MAX_BUDGET} tokens (got {budget})")
    with open_store_for_reading() as store:
        searcher = Searcher(store, source, model=model)
        scorer = None
        if rerank:
            from rag_assets.retrieval.rerank import get_scorer

            scorer = get_scorer(rerank, store, source)
        hits = searcher.search(question, k=k, filter=payload_filter(language, kind), mode=mode, path_glob=path_glob,
                               rerank=scorer)
    if include_notes:  # after the store is closed: recall opens it again
        from rag_assets.memory.api import note_hits

        hits = note_hits(question, source) + hits
    ctx = assemble(question, hits, budget, source_tokens(source))
    llm = settings.current().llm
    if llm is None:
        return Answer(ctx, None, None)
    from rag_assets.memory import answers  # the same question meeting the same context: the same answer

    key = answers.answer_key(source, question, ctx.text, llm.model, llm.base_url, SYSTEM_PROMPT)
    cached = answers.lookup(source, key)
    if cached is not None:
        return Answer(ctx, llm.model, cached, cached=True)
    try:
        text = ask_llm(ctx)
    except Exception as e:  # the context is still worth returning
        return Answer(ctx, llm.model, f"(model call failed: {one_line(e)})")
    answers.store(source, key, question, llm.model, text)
    return Answer(ctx, llm.model, text)
