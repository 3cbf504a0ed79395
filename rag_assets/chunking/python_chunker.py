"""Python by AST: functions, methods, class outlines and grouped module-level code.

Span rules (1-based, inclusive):

* function / method: first decorator line (or the comment block directly above it, with
  no blank line between) through ``end_lineno``; nested functions and classes stay inside.
* class: an *outline* chunk. Its text is the class's own lines (decorators, header, docstring,
  class-level statements, loose comments) with every method / nested class replaced by its
  decorator + signature line(s) and an indented ``...``. The stub lines are a synthesized
  table of contents, not claimed content: the span runs from the first line of the class to
  the last *own* non-blank line. So method bodies are only covered by the class span when a
  class-level statement follows them (unavoidable for a single range). An outline piece made
  only of stubs (after a split) falls back to the span of its signature lines.
* module: the lines between top-level definitions (imports, constants, ``if __name__``
  blocks, loose comments), packed greedily up to the budget, cut at statement starts.
"""

from __future__ import annotations

import ast
import gc
import tokenize
import warnings
from collections.abc import Sequence

from .text_chunker import Counter, blank_separated_starts, is_blank, one_line, pack, span_pieces
from .types import Chunk

_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def _first_line(node: ast.stmt) -> int:
    """The statement's first line, counting decorators."""
    decorators = getattr(node, "decorator_list", None) or []
    return min([node.lineno] + [d.lineno for d in decorators])


def _with_comments(lines: Sequence[str], start: int, floor: int) -> int:
    """Move ``start`` up over the comment block directly above it, staying below ``floor``."""
    while start - 1 > floor and _is_comment(lines[start - 2]):
        start -= 1
    return start


def _header(lines: Sequence[str], node: ast.stmt) -> tuple[int, str]:
    """(line of the ':' that closes a def/class header, the header on one line).

    The ':' is the first one at bracket depth 0; the one-line header is the text before it,
    comments dropped and whitespace collapsed: ``def parse(self, args) -> Result``."""
    start, limit = node.lineno, node.body[0].lineno
    feed = iter([lines[i] + "\n" for i in range(start - 1, limit)])
    depth = 0
    comment_at: dict[int, int] = {}  # header line -> column where its comment starts
    try:
        for tok in tokenize.generate_tokens(lambda: next(feed, "")):
            if tok.type == tokenize.COMMENT:
                comment_at[start + tok.start[0] - 1] = tok.start[1]
            if tok.type != tokenize.OP:
                continue
            if tok.string in ("(", "[", "{"):
                depth += 1
            elif tok.string in (")", "]", "}"):
                depth -= 1
            elif tok.string == ":" and depth == 0:
                end = start + tok.start[0] - 1
                comment_at[end] = tok.start[1]
                text = " ".join(lines[n - 1][: comment_at.get(n)] for n in range(start, end + 1)).replace("\ufeff", "")
                return end, one_line(text)
    except (tokenize.TokenError, SyntaxError):
        pass
    return start, " ".join(lines[start - 1].split()).rstrip(":")


def _header_end(lines: Sequence[str], node: ast.stmt) -> int:
    return _header(lines, node)[0]


def _imported(node: ast.stmt) -> list[str]:
    """``import os.path`` -> ["os.path"]; ``from ..pkg import x`` -> ["..pkg"]; else []."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        return ["." * node.level + (node.module or "")]
    return []


class _PythonChunker:
    def __init__(self, path: str, lines: Sequence[str], tree: ast.Module, budget: int, count: Counter, encoding: str):
        self.path, self.lines, self.tree = path, lines, tree
        self.budget, self.count, self.encoding = budget, count, encoding
        self.out: list[Chunk] = []
        # Preferred cut points when a piece must be split: statement starts (with their
        # leading comments), then paragraph starts. The same walk finds what the file
        # imports (function-level imports included).
        stmt_starts: set[int] = set()
        imports: list[str] = []
        for n in ast.walk(tree):
            if isinstance(n, ast.stmt):
                stmt_starts.add(_with_comments(lines, _first_line(n), 0))
                imports += _imported(n)
        self.imports = tuple(dict.fromkeys(imports))
        self.cuts = (stmt_starts, blank_separated_starts(lines))

    def _emit(self, kind: str, symbol: str, start: int, end: int, node: ast.stmt | None = None) -> None:
        """Chunks of one definition (``node``; numbered parts when split) or of module code."""
        signature = _header(self.lines, node)[1] if node is not None else ""
        pieces = span_pieces(self.lines, start, end, self.budget, self.count, self.encoding, self.cuts)
        numbered = node is not None and len(pieces) > 1
        for i, (a, b, text, nt) in enumerate(pieces):
            self.out.append(Chunk(self.path, "python", kind, symbol, a, b, text, nt, signature, self.imports,
                                  i + 1 if numbered else 0))

    def _units(self, body: list[ast.stmt], floor: int) -> list[tuple[int, int, ast.stmt]]:
        """(start, end, node) of each def/class in ``body``; ``floor`` is the line above it."""
        units = []
        for stmt in body:
            if isinstance(stmt, _SCOPES):
                units.append((_with_comments(self.lines, _first_line(stmt), floor), stmt.end_lineno, stmt))
            floor = stmt.end_lineno
        return units

    def run(self) -> list[Chunk]:
        pos = 1
        for start, end, node in self._units(self.tree.body, 0):
            if start > pos:
                self._emit("module", "<module>", pos, start - 1)
            if isinstance(node, ast.ClassDef):
                self._class(node, start, "")
            else:
                self._emit("function", node.name, start, end, node)
            pos = end + 1
        if pos <= len(self.lines):
            self._emit("module", "<module>", pos, len(self.lines))
        return self.out

    def _stub(self, node: ast.stmt) -> list[tuple[str, int | None, bool]]:
        """Decorators + signature lines of a method / nested class, then an indented '...'."""
        header_end = _header_end(self.lines, node)
        entries = [(self.lines[i - 1], i, False) for i in range(_first_line(node), header_end + 1)]
        if node.body[0].lineno > header_end:  # not a one-liner like `def f(self): return 1`
            def_line = self.lines[node.lineno - 1]
            indent = def_line[: len(def_line) - len(def_line.lstrip())]
            entries.append((indent + ("\t" if "\t" in indent else "    ") + "...", None, False))
        return entries

    def _class(self, node: ast.ClassDef, start: int, prefix: str) -> None:
        symbol = prefix + node.name
        header_end = _header_end(self.lines, node)
        if node.body[0].lineno <= header_end:  # `class A: pass`: nothing to outline
            self._emit("class", symbol, start, node.end_lineno, node)
            return
        children = self._units(node.body, header_end)

        # (text, file line or None, own?) for the outline; own lines define the span.
        entries: list[tuple[str, int | None, bool]] = []
        cut_idx: set[int] = set()
        line, ci = start, 0
        while line <= node.end_lineno:
            if ci < len(children) and line == children[ci][0]:
                cut_idx.add(len(entries))
                entries.extend(self._stub(children[ci][2]))
                line = children[ci][1] + 1
                ci += 1
            else:
                if line in self.cuts[0]:
                    cut_idx.add(len(entries))
                entries.append((self.lines[line - 1], line, True))
                line += 1
        self._outline(entries, cut_idx, symbol, _header(self.lines, node)[1])

        for c_start, c_end, child in children:
            if isinstance(child, ast.ClassDef):
                self._class(child, c_start, symbol + ".")
            else:
                self._emit("method", f"{symbol}.{child.name}", c_start, c_end, child)

    def _outline(self, entries: list[tuple[str, int | None, bool]], cut_idx: set[int], symbol: str,
                 signature: str) -> None:
        texts = [e[0] for e in entries]
        pieces = pack(texts, self.budget, self.count, self.encoding, (cut_idx,))
        for i, p in enumerate(pieces):
            part = entries[p.first : p.last + 1]
            own = [n for t, n, is_own in part if is_own and not is_blank(t)]
            nums = own or [n for _, n, _ in part if n is not None]
            if nums:  # a piece holding only a synthesized '...' has nothing to cite
                self.out.append(Chunk(self.path, "python", "class", symbol, min(nums), max(nums), p.text, p.n_tokens,
                                      signature, self.imports, i + 1 if len(pieces) > 1 else 0))


def parse_ast(source: str) -> ast.Module:
    """ast.parse with no garbage collection meanwhile. CPython 3.11.0-3.11.4 (Debian 12's 3.11.2) raises
    SystemError "AST constructor recursion depth mismatch" when a finalizer runs while the tree is
    converted (gh-106905); in a long-lived process some object's finalizer eventually does."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. SyntaxWarning for invalid escapes
            return ast.parse(source)
    finally:
        if enabled:
            gc.enable()


def parse(text: str) -> ast.Module | None:
    """The module's AST, or None when it does not parse (callers fall back to windows)."""
    source = text[1:] if text.startswith("\ufeff") else text  # ast rejects a BOM in a str
    try:
        return parse_ast(source)
    except (SyntaxError, ValueError, RecursionError):  # ValueError: NUL bytes
        return None


def chunk_python(
    path: str, lines: Sequence[str], tree: ast.Module, budget: int, count: Counter, encoding: str
) -> list[Chunk]:
    return _PythonChunker(path, lines, tree, budget, count, encoding).run()
