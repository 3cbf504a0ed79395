"""The chunk record every chunker returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chunk:
    path: str  # repo-relative, forward slashes
    language: str  # "python", "markdown", "rst", "text", ... (see languages.language_for)
    kind: str  # "function" | "method" | "class" | "module" | "section" | "text"
    symbol: str  # qualified: "Outer.method", "<module>", "Title > Sub", "" for plain text
    start_line: int  # 1-based, inclusive
    end_line: int  # 1-based, inclusive
    text: str
    n_tokens: int  # tiktoken count of text (cl100k_base)
