"""MCP server: code search, budgeted context, source status and re-index requests for coding agents.

    rag-assets mcp                                   # stdio: an IDE launches it
    rag-assets mcp --http --port 8765 --token T      # streamable HTTP at http://127.0.0.1:8765/mcp

Tools: search_code, ask, list_sources, reindex; agent memory: remember, recall, forget, note, list_notes
(rag_assets/memory). `--read-only` serves none that writes or starts work. Expected failures (bad
arguments, unknown source, a busy store) come back as tool errors with one line of text; the server
keeps running.

On Edge the server keeps one reader open for all calls (service/stores.py): it reads the published
generation of each collection, so it never waits for an index run nor blocks one, and moves to a newer
generation on the first call after a run publishes it. The query encoder stays loaded
(embedding/query_encoder.py caches it), so only the first search pays its load.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, Field

from rag_assets import settings
from rag_assets.retrieval.answer import MAX_BUDGET, MIN_BUDGET
from rag_assets.retrieval.search import DEFAULT_MODE, Searcher, payload_filter
from rag_assets.service.errors import one_line
from rag_assets.service.health import bearer_authorized, ops_routes, unauthorized
from rag_assets.service.metrics import observe
from rag_assets.service.stores import embedded_lock, open_store_for_reading
from rag_assets.service.tool_errors import check_arguments, tool_errors
from rag_assets.store import QUERY_MODES

DEFAULT_PORT = 8765


# ------------------------------------------------------------------ results
class SearchHit(BaseModel):
    path: str
    start_line: int
    end_line: int
    symbol: str
    score: float
    commit: str
    language: str
    kind: str
    citation: str = Field(description="path:start-end @ commit")
    text: str
    source: str
    collection: str = Field(description="the collection that answered (what the source's alias points at)")
    model: str = Field(description="the embedding model of that collection")


class AskResult(BaseModel):
    question: str
    context: str = Field(description="the chosen spans, each under a '### path:start-end @ commit' header")
    citations: list[str]
    tokens_used: int
    budget: int
    source_tokens: int = Field(description="tokens of the whole source (all its chunks); 0 if unknown")
    saving: float = Field(description="1 - tokens_used / source_tokens")
    dropped: int = Field(description="hits that did not fit the budget")
    model: str | None = Field(description="the LLM that answered, or None when none is configured")
    answer: str | None
    cached: bool = Field(default=False, description="the answer was reused: same question, context and model")


class SourceState(BaseModel):
    source: str
    kind: str | None = None
    live_model: str | None
    points: int | None
    chunks: int | None
    indexed_commit: str | None
    head_commit: str | None
    state: str = Field(description="fresh | indexed | stale (new commits) | not indexed | ...")
    error: str | None = None
    failure: str | None = Field(default=None, description="failed runs since the last success, e.g. "
                                "'failed 3× at a1b2c3d4e5f6: step chunks: ...'; None when the last run succeeded")


class ReindexResult(BaseModel):
    run_id: str
    job: str
    partition: str
    status: str
    submitted_to: str


# ------------------------------------------------------------------ plumbing
_one_line = one_line


_tool_errors = tool_errors


# ------------------------------------------------------------------ tools
def search_code(
    query: Annotated[str, Field(description="what to find: words, identifiers, a question")],
    source: Annotated[str, Field(description="source name (see list_sources)")],
    k: Annotated[int, Field(description="number of hits", json_schema_extra={"minimum": 1, "maximum": 100})] = 10,
    mode: Annotated[str, Field(description="hybrid (dense + BM25, best), dense or sparse",
                               json_schema_extra={"enum": list(QUERY_MODES)})] = DEFAULT_MODE,
    language: Annotated[str | None, Field(description="only this language: python, markdown, ...")] = None,
    path_glob: Annotated[str | None, Field(description="only paths matching this glob, e.g. src/**/*.py")] = None,
    kind: Annotated[str | None, Field(description="function, method, class, module, section or text")] = None,
    rerank: Annotated[str | None, Field(description="rerank the top 50 (as the CLI's --rerank): collection:<model> "
                                        "(that model's stored vectors, cheap), <model> (re-encode), or "
                                        "cross:<local folder>")] = None,
    include_notes: Annotated[bool, Field(description="also return up to 3 of the source's notes (kind 'note', "
                                         "after the code hits)")] = False,
) -> list[SearchHit]:
    """Search a source's code and docs; each hit cites path:start-end at the indexed commit, and names the
    collection and model that answered."""
    # Ranges and modes are checked by Searcher (one-line errors); the schema only advertises them.
    with _tool_errors(), observe("search_code", source), open_store_for_reading() as store:
        searcher = Searcher(store, source)
        hits = searcher.search(query, k=k, filter=payload_filter(language, kind), mode=mode, path_glob=path_glob,
                               rerank=_scorer(rerank, store, source))
    answered = {"collection": searcher.collection, "model": searcher.model_key or ""}
    notes = _notes_hits(query, source, k) if include_notes else []
    return [SearchHit(**{f: v for f, v in h.to_dict().items() if f in SearchHit.model_fields}, citation=h.citation,
                      **answered) for h in hits] + notes


def _notes_hits(query: str, source: str, k: int) -> list[SearchHit]:
    from rag_assets.memory.tools import notes_as_search_hits

    return [SearchHit(**{f: v for f, v in d.items() if f in SearchHit.model_fields})
            for d in notes_as_search_hits(query, source, k)]


def _scorer(spec: str | None, store, source: str):
    """The rerank scorer for `spec` (retrieval/rerank.py get_scorer); a bad spec is a one-line tool error."""
    if not spec:
        return None
    from rag_assets.retrieval.rerank import get_scorer

    try:
        return get_scorer(spec, store, source)
    except KeyError as e:  # unknown model key
        raise ToolError(f"rerank: {e.args[0]}") from None
    except (ValueError, OSError) as e:  # the other model's collection is missing; no such cross-encoder folder
        raise ToolError(f"rerank: {_one_line(e)}") from None


def ask(
    question: Annotated[str, Field(description="a question about the code base")],
    source: Annotated[str, Field(description="source name (see list_sources)")],
    budget: Annotated[int, Field(description="most tokens of context to return",
                                 json_schema_extra={"minimum": MIN_BUDGET, "maximum": MAX_BUDGET})] = 4000,
    language: Annotated[str | None, Field(description="only this language: python, go, markdown, ...")] = None,
    path_glob: Annotated[str | None, Field(description="only paths matching this glob, e.g. src/**/*.py")] = None,
    kind: Annotated[str | None, Field(description="function, method, class, module, section or text")] = None,
    include_notes: Annotated[bool, Field(description="put the source's most relevant notes (decisions, "
                                         "conventions) first in the context")] = False,
) -> Annotated[CallToolResult, AskResult]:
    """The best spans for a question, merged per file and cut to a token budget, with citations;
    answered by an LLM when one is configured (RAG_LLM_BASE_URL)."""
    from rag_assets.service.ask import ask as ask_flow

    with _tool_errors(), observe("ask", source):
        out = ask_flow(question, source, budget, language=language, kind=kind, path_glob=path_glob,
                       include_notes=include_notes)
    result = AskResult(**out.to_dict())
    return CallToolResult(content=[TextContent(type="text", text=_render_ask(result))],
                          structured_content=result.model_dump())


def _render_ask(r: AskResult) -> str:
    whole = f"{r.source_tokens} tokens ({r.saving:.1%} saved)" if r.source_tokens else "unknown size"
    lines = [f"Context for: {r.question}",
             f"{len(r.citations)} spans, {r.tokens_used} of {r.budget} budget tokens; whole source: {whole}"
             + (f"; {r.dropped} hits did not fit" if r.dropped else ""), "", r.context or "(no hits)"]
    if r.model:
        lines += [f"Answer ({r.model}{', cached' if r.cached else ''}):", r.answer or ""]
    else:
        lines += ["Answer: no model is configured (set RAG_LLM_BASE_URL, RAG_LLM_API_KEY, RAG_LLM_MODEL); "
                  "answer from the context above."]
    return "\n".join(lines)


def list_sources(
    check_remote: Annotated[bool, Field(description="ask each remote for its head commit (network)")] = True,
) -> list[SourceState]:
    """Every configured source: live model, point count, indexed commit, remote head and freshness."""
    from rag_assets.service.status import source_status

    with _tool_errors(), embedded_lock():
        rows = source_status(check_remote=check_remote)
    return [SourceState(**{f: r.get(f) for f in SourceState.model_fields}) for r in rows]


def reindex(source: Annotated[str, Field(description="source name from sources.yaml")]) -> ReindexResult:
    """Request a snapshot+chunk run for a source from Dagster (the daemon runs it; automation then
    re-embeds its collections). Returns the run id at once."""
    from rag_assets.service.runs import request_index_run

    with _tool_errors():
        return ReindexResult(**request_index_run(source))


def request_index_run(source: str) -> dict:
    """Queue a snapshot+chunk run for `source` (see service/runs.py)."""
    from rag_assets.service.runs import request_index_run as request

    return request(source)


# ------------------------------------------------------------------ server and transports
class RagMCPServer(MCPServer):
    """The SDK's server, with every tool's arguments checked first (service/tool_errors.check_arguments):
    unknown names and wrong types are one-line tool errors instead of being ignored or coerced."""

    async def call_tool(self, name, arguments, context=None):
        tool = self._tool_manager.get_tool(name)
        if tool is not None:
            check_arguments(tool, arguments)
        return await super().call_tool(name, arguments, context)


def build_server(read_only: bool = False) -> MCPServer:
    """read_only: no tool that writes or starts work (reindex, remember, forget, note)."""
    from rag_assets.memory.tools import READ_TOOLS, WRITE_TOOLS

    # WARNING: an IDE shows stderr; anticipated tool errors (INFO) are the agent's to read, not the log's.
    server = RagMCPServer("rag-assets", log_level="WARNING", instructions=(
        "Search indexed git repositories and docs. list_sources shows what is indexed; search_code finds "
        "spans (cite them as path:start-end); ask returns a token-budgeted context for a question. "
        "recall finds what earlier sessions learned about a source; list_notes shows its recorded decisions"
        + ("." if read_only else "; remember and note record new ones, forget removes a wrong one.")))
    tools = (search_code, ask, list_sources, *READ_TOOLS)
    for fn in tools if read_only else (*tools, reindex, *WRITE_TOOLS):
        server.add_tool(fn)
    return server


class BearerAuth:
    """ASGI wrapper: every HTTP request must carry `Authorization: Bearer <token>`, else 401."""

    def __init__(self, app, token: str):
        self.app, self.token = app, token

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and not bearer_authorized(scope, self.token):
            return await unauthorized()(scope, receive, send)
        await self.app(scope, receive, send)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a hostname: it may resolve to anything


def run(transport: str = "stdio", host: str = "127.0.0.1", port: int = DEFAULT_PORT, token: str | None = None,
        read_only: bool = False) -> None:
    """Serve until stopped. transport: "stdio" | "http" (streamable HTTP at /mcp)."""
    if transport == "stdio":
        build_server(read_only).run("stdio")
        return
    if transport != "http":
        raise ValueError(f"unknown transport {transport!r} (stdio or http)")
    if not token and not is_loopback(host):
        # Anyone who can reach the port could read the indexed code and queue runs.
        raise ValueError(f"refusing to serve on {host} without a bearer token: pass --token "
                         "(or set RAG_MCP_TOKEN), or bind to 127.0.0.1")
    import uvicorn

    app = build_server(read_only).streamable_http_app(host=host)  # DNS-rebinding protection on loopback hosts
    print(f"rag-assets MCP server: http://{host}:{port}/mcp"
          f"{' (bearer token required)' if token else ' (no token: loopback only)'}", file=sys.stderr, flush=True)
    # /healthz and /readyz answer without a token; /metrics asks for it (service/health.py).
    uvicorn.run(ops_routes(BearerAuth(app, token) if token else app, token), host=host, port=port, log_level="warning")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rag-assets mcp", description="Serve search over MCP (stdio by default).")
    p.add_argument("--http", action="store_true", help="streamable HTTP instead of stdio")
    p.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"HTTP port (default {DEFAULT_PORT})")
    p.add_argument("--token", default=settings.current().mcp_token,
                   help="bearer token HTTP clients must send (default: RAG_MCP_TOKEN); required off loopback")
    p.add_argument("--read-only", action="store_true",
                   help="serve no tool that writes or starts work (reindex, remember, forget, note)")
    return p


def main(argv: list[str] | None = None) -> int:
    """`rag-assets mcp [--http] [--host H] [--port P] [--token T] [--read-only]`; returns the exit code."""
    args = build_parser().parse_args(argv)
    if not 1 <= args.port <= 65535:  # the OS would take 70000 modulo 65536 and listen on 4464
        print(f"rag-assets mcp: error: --port must be between 1 and 65535 (got {args.port})", file=sys.stderr)
        return 2
    try:
        run("http" if args.http else "stdio", args.host, args.port, args.token, read_only=args.read_only)
    except ValueError as e:
        print(f"rag-assets mcp: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
