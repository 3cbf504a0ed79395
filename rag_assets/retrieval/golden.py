"""Keep a golden query file's line spans true as code moves: re-resolve each query's `symbol`.

The query file contract has path + start_line/end_line; an optional `symbol` lets this tool find
the definition again (same chunker as indexing) and rewrite the span.
"""

from __future__ import annotations

import json
from pathlib import Path

from rag_assets.chunking import chunk_file
from rag_assets.retrieval.evaluate import QueryFileError, load_queries


def symbol_span(root: Path, path: str, symbol: str) -> tuple[int, int]:
    file = root / path
    if not file.is_file():
        raise QueryFileError(f"{path}: file not found under {root}")
    spans = [(c.start_line, c.end_line) for c in chunk_file(path, file.read_text(encoding="utf-8")) if c.symbol == symbol]
    if not spans:
        raise QueryFileError(f"{path}: no chunk with symbol '{symbol}'")
    return min(s for s, _ in spans), max(e for _, e in spans)


def refresh(queries_file: str | Path, root: str | Path) -> list[str]:
    """Rewrite spans in place; returns the ids whose span changed."""
    queries_file, root = Path(queries_file), Path(root)
    queries = load_queries(queries_file)
    changed = []
    for q in queries:
        if q.get("symbol"):
            span = symbol_span(root, q["path"], q["symbol"])
            if span != (q["start_line"], q["end_line"]):
                q["start_line"], q["end_line"] = span
                changed.append(str(q["id"]))
    if changed:
        queries_file.write_text("".join(json.dumps(q) + "\n" for q in queries), encoding="utf-8")
    return changed
