"""Code-aware chunking: file text -> ``Chunk``s with exact 1-based line spans.

Python is split by its ``ast``; JavaScript/TypeScript, Go, Rust, Java, Kotlin, C, C++, C#,
Ruby, PHP, Swift and shell by tree-sitter (syntax_chunker.py, one engine driven by the specs
in syntax_languages.py); JSON / YAML / TOML at top-level keys when over the budget;
Markdown / reStructuredText by headings; everything else into overlapping line windows.
Every chunk is non-blank and has ``n_tokens <= max_tokens``. For every chunk except type
outlines and fragments of an over-long line,
``text == "\\n".join(split_lines(file_text)[start_line - 1 : end_line])``.
"""

from __future__ import annotations

import logging

from .config_chunker import CONFIG_LANGUAGES, chunk_config
from .grammars import GrammarUnavailable, unavailable
from .languages import language_for
from .markup_chunker import chunk_markdown, chunk_rst
from .python_chunker import chunk_python, parse
from .syntax_chunker import MINIFIED_CHARS_PER_LINE, chunk_syntax
from .syntax_languages import SPECS
from .text_chunker import Counter, make_counter, split_lines, window_spans
from .types import Chunk

log = logging.getLogger(__name__)

# Bump whenever chunk boundaries or texts change: it is the assets' Dagster code version.
CHUNKER_VERSION = "3"  # 3: secrets redacted before chunking

# Below this a single character (up to 4 UTF-8 bytes) might not fit in a chunk.
MIN_MAX_TOKENS = 8

# Parse status, for counting parse failures per language:
OK = "ok"  # parsed cleanly, or a language chunked without a parser (Markdown, plain text)
PARTIAL = "partial"  # syntax errors: clean definitions chunked, the rest windowed (Python: all windowed)
FALLBACK = "fallback"  # grammar wheel missing / broken (see grammars.unavailable()): windows
SKIPPED = "skipped"  # not parsed on purpose (minified: lines average > 1000 chars): windows
ERROR = "error"  # the syntax chunker failed on this file (a bug; logged): windows
STATUSES = (OK, PARTIAL, FALLBACK, SKIPPED, ERROR)

__all__ = [
    "CHUNKER_VERSION", "Chunk", "GrammarUnavailable", "STATUSES", "chunk_file", "chunk_file_with_status",
    "language_for", "split_lines", "unavailable",
]


def chunk_file(path: str, text: str, max_tokens: int = 512, encoding: str = "cl100k_base",
               language: str | None = None) -> list[Chunk]:
    """Chunks of one file, in file order (a class outline precedes its methods).

    `language` overrides detection by extension (a docs page URL is Markdown whatever it ends with)."""
    return chunk_file_with_status(path, text, max_tokens, encoding, language)[0]


def _windows(path: str, language: str, lines: list[str], max_tokens: int, count: Counter, encoding: str) -> list[Chunk]:
    spans = window_spans(lines, max_tokens, count, encoding)
    return [Chunk(path, language, "text", "", a, b, t, n) for a, b, t, n in spans]


def chunk_file_with_status(path: str, text: str, max_tokens: int = 512, encoding: str = "cl100k_base",
                           language: str | None = None) -> tuple[list[Chunk], str]:
    """``chunk_file`` plus the parse status: one of ``STATUSES``. Never raises for file content."""
    if max_tokens < MIN_MAX_TOKENS:
        raise ValueError(f"max_tokens must be >= {MIN_MAX_TOKENS}, got {max_tokens}")
    lines = split_lines(text)
    if not any(line.strip() for line in lines):
        return [], OK
    count = make_counter(encoding)
    language = language or language_for(path)
    if language == "python":
        tree = parse(text)
        if tree is not None:
            return chunk_python(path, lines, tree, max_tokens, count, encoding), OK
        return _windows(path, language, lines, max_tokens, count, encoding), PARTIAL
    if language == "markdown":
        return chunk_markdown(path, lines, max_tokens, count, encoding), OK
    if language == "rst":
        return chunk_rst(path, lines, max_tokens, count, encoding), OK
    if language not in SPECS and language not in CONFIG_LANGUAGES:
        return _windows(path, language, lines, max_tokens, count, encoding), OK
    if len(text) > MINIFIED_CHARS_PER_LINE * len(lines):
        return _windows(path, language, lines, max_tokens, count, encoding), SKIPPED
    try:
        if language in CONFIG_LANGUAGES:
            result = chunk_config(language, path, lines, max_tokens, count, encoding)
            return result or (_windows(path, language, lines, max_tokens, count, encoding), PARTIAL)
        # .tsx needs the TSX grammar (TypeScript's own rejects JSX); .jsx is fine with JavaScript's.
        grammar = "tsx" if language == "typescript" and path.lower().endswith(".tsx") else None
        return chunk_syntax(SPECS[language], language, path, lines, max_tokens, count, encoding, grammar, SPECS)
    except GrammarUnavailable:  # logged once per language by the loader
        return _windows(path, language, lines, max_tokens, count, encoding), FALLBACK
    except RecursionError:
        log.warning("syntax chunking of %s hit the recursion limit; windowed", path)
        return _windows(path, language, lines, max_tokens, count, encoding), ERROR
    except Exception:  # never let one odd file stop a repository's indexing
        log.exception("syntax chunking of %s failed; windowed", path)
        return _windows(path, language, lines, max_tokens, count, encoding), ERROR
