"""Code-aware chunking: file text -> ``Chunk``s with exact 1-based line spans.

Python is split by AST, Markdown / reStructuredText by headings, everything else into
overlapping line windows. Every chunk is non-blank and has ``n_tokens <= max_tokens``.
For every chunk except class outlines and fragments of an over-long line,
``text == "\\n".join(split_lines(file_text)[start_line - 1 : end_line])``.
"""

from __future__ import annotations

from .languages import language_for
from .markup_chunker import chunk_markdown, chunk_rst
from .python_chunker import chunk_python, parse
from .text_chunker import make_counter, split_lines, window_spans
from .types import Chunk

# Bump whenever chunk boundaries or texts change: it is the assets' Dagster code version.
CHUNKER_VERSION = "1"

# Below this a single character (up to 4 UTF-8 bytes) might not fit in a chunk.
MIN_MAX_TOKENS = 8

__all__ = ["CHUNKER_VERSION", "Chunk", "chunk_file", "language_for", "split_lines"]


def chunk_file(path: str, text: str, max_tokens: int = 512, encoding: str = "cl100k_base",
               language: str | None = None) -> list[Chunk]:
    """Chunks of one file, in file order (a class outline precedes its methods).

    `language` overrides detection by extension (a docs page URL is Markdown whatever it ends with)."""
    if max_tokens < MIN_MAX_TOKENS:
        raise ValueError(f"max_tokens must be >= {MIN_MAX_TOKENS}, got {max_tokens}")
    lines = split_lines(text)
    if not any(line.strip() for line in lines):
        return []
    count = make_counter(encoding)
    language = language or language_for(path)
    if language == "python":
        tree = parse(text)
        if tree is not None:
            return chunk_python(path, lines, tree, max_tokens, count, encoding)
    elif language == "markdown":
        return chunk_markdown(path, lines, max_tokens, count, encoding)
    elif language == "rst":
        return chunk_rst(path, lines, max_tokens, count, encoding)
    return [
        Chunk(path, language, "text", "", a, b, t, n)
        for a, b, t, n in window_spans(lines, max_tokens, count, encoding)
    ]
