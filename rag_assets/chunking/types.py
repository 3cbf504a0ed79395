"""The chunk record every chunker returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chunk:
    path: str  # repo-relative, forward slashes
    language: str  # "python", "markdown", "rst", "text", ... (see languages.language_for)
    # "function" | "method" | "class" | "interface" | "struct" | "enum" | "trait" | "impl" |
    # "type" | "module" (a Ruby module, or "<module>": grouped top-level code) | "section" | "text"
    kind: str
    symbol: str  # qualified: "Outer.method", "Parser::parse", "<module>", "Title > Sub", "" for plain text
    start_line: int  # 1-based, inclusive
    end_line: int  # 1-based, inclusive
    text: str
    n_tokens: int  # tiktoken count of text (cl100k_base)
    # The definition's header on one line, whitespace collapsed, no body or decorators:
    # "func (c *Command) Execute() error", "def parse(self, args) -> Result"; "" for other chunks.
    signature: str = ""
    # What the file imports ("fmt", "./router", "java.util.List", "os.path"): the same tuple
    # on every chunk of a file.
    imports: tuple[str, ...] = ()
    # 1, 2, ... when one definition (or class outline, or section) is split over several
    # chunks that all keep its symbol; 0 when it fits in one. Not set for grouped module code.
    part: int = 0
