"""A source's documents -> its chunks table, reusing the rows of documents that did not change."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from rag_assets.chunking import CHUNKER_VERSION, chunk_file_with_status
from rag_assets.chunking.secrets import redact_secrets
from rag_assets.contract import CHUNK_COLUMNS, chunk_id, content_hash, embedding_text
from rag_assets.sources.readers import Documents
from rag_assets.tables import Table


@dataclass
class ChunkStats:
    files_indexed: int = 0
    files_rechunked: int = 0
    files_reused: int = 0
    skipped: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    # files chunked this run whose syntax tree had errors ("partial"), whose grammar is missing
    # ("fallback"), that were not parsed ("skipped": minified) or failed ("error"), by language
    parse_failures: Counter = field(default_factory=Counter)
    # secrets (AWS keys, private keys, tokens...) replaced by a marker in the files chunked this run, by kind
    secrets_redacted: Counter = field(default_factory=Counter)


def chunk_rows(source: str, path: str, key: str, commit: str, text: str, max_tokens: int,
               language: str | None = None) -> tuple[list[dict], str]:
    """One document's chunk rows, and its parse status ("ok" | "partial" | "fallback")."""
    chunks, status = chunk_file_with_status(path, text, max_tokens=max_tokens, language=language)
    rows = []
    for c in chunks:
        h = content_hash(embedding_text(c.path, c.symbol, c.text, c.signature))
        rows.append({
            "chunk_id": chunk_id(source, c.path, c.start_line, c.end_line, h), "content_hash": h,
            "source": source, "path": c.path, "blob_sha": key, "language": c.language, "kind": c.kind,
            "symbol": c.symbol, "signature": c.signature, "imports": list(c.imports), "part": c.part,
            "start_line": c.start_line, "end_line": c.end_line, "n_tokens": c.n_tokens, "commit": commit,
            "text": c.text,
        })
    return rows, status


def build_chunks(
    source: str, docs: Documents, previous: Table | None, max_tokens: int = 512,
    progress: Callable[[int], None] | None = None,
) -> tuple[pd.DataFrame, ChunkStats, dict]:
    """Chunk every document; a (path, key) chunked last time with the same settings reuses its rows.

    `key` identifies content (a git blob sha, a page's content hash), so one blob at several paths is
    read once. A document that fails to chunk is counted and named; it never fails the source.
    """
    stats = ChunkStats(skipped=Counter(docs.skipped))
    commit = docs.version
    meta = {"commit": commit, "chunker": CHUNKER_VERSION, "max_tokens": max_tokens}
    reusable = previous is not None and all(previous.meta.get(k) == meta[k] for k in ("chunker", "max_tokens"))
    prev_by_doc = previous.df.groupby(["path", "blob_sha"]) if reusable and len(previous.df) else None
    prev_keys = set(prev_by_doc.groups) if prev_by_doc is not None else set()
    parts: list[pd.DataFrame] = []
    todo: dict[str, list[str]] = {}  # content key -> paths
    for path, key in docs.wanted:
        if (path, key) in prev_keys:
            parts.append(prev_by_doc.get_group((path, key)))
            stats.files_reused += 1
            stats.files_indexed += 1
        else:
            todo.setdefault(key, []).append(path)
    if progress and stats.files_reused:
        progress(stats.files_reused)
    new_rows: list[dict] = []
    for key, text, reason in docs.read(list(todo)):
        paths = todo[key]
        if reason:
            stats.skipped[reason] += len(paths)
        else:
            # Before chunking, so token counts and spans describe the text that is indexed.
            text, secrets = redact_secrets(text)
            for path in paths:
                try:
                    rows, status = chunk_rows(source, path, key, commit, text, max_tokens, docs.language)
                except Exception as e:  # one bad file never fails the source
                    stats.skipped["error"] += 1
                    stats.errors.append(f"source '{source}': file '{path}': {type(e).__name__}: {e}")
                    continue
                new_rows.extend(rows)
                stats.secrets_redacted.update(secrets)
                if status in ("partial", "fallback", "error"):
                    stats.parse_failures[rows[0]["language"] if rows else "unknown"] += 1
                stats.files_rechunked += 1
                stats.files_indexed += 1
        if progress:
            progress(len(paths))
    if new_rows:
        parts.append(pd.DataFrame(new_rows, columns=CHUNK_COLUMNS))
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=CHUNK_COLUMNS)
    df["commit"] = commit  # reused chunks are identical at the new commit
    df = df.sort_values(["path", "start_line", "end_line"], kind="stable").drop_duplicates("chunk_id")
    return df.reset_index(drop=True)[CHUNK_COLUMNS], stats, meta
