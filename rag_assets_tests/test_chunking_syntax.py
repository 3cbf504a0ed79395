"""Tree-sitter chunking across languages: the contract every language keeps, parse
failures, a missing grammar, minified files, budgets. Language-specific shapes are in
test_chunking_{js_ts,go_rust,jvm,c_family,scripting,config}.py, which use the helpers here.

Real grammars throughout (no mocks); the one simulated failure is the grammar import.
"""

from __future__ import annotations

import logging
import sys
import time

import pytest

from rag_assets.chunking import CHUNKER_VERSION, Chunk, chunk_file, chunk_file_with_status, grammars, split_lines
from rag_assets.chunking.tokens import count_tokens

# Kinds whose chunk is an outline (methods replaced by stubs): text is not the file's lines.
OUTLINE_KINDS = {"class", "interface", "struct", "enum", "trait", "impl", "type"}


def spans(chunks: list[Chunk]) -> list[tuple[str, str, int, int]]:
    return [(c.kind, c.symbol, c.start_line, c.end_line) for c in chunks]


def by_symbol(chunks: list[Chunk], symbol: str, part: int = 0) -> Chunk:
    return next(c for c in chunks if c.symbol == symbol and c.part == part)


def is_outline(c: Chunk) -> bool:
    return c.kind in OUTLINE_KINDS or (c.kind == "module" and c.symbol != "<module>")


def check_contract(chunks: list[Chunk], src: str, max_tokens: int = 512) -> None:
    """Budget, exact spans and texts, every non-blank line covered, one imports tuple."""
    lines = split_lines(src)
    covered: set[int] = set()
    for c in chunks:
        assert c.text.strip()
        assert 1 <= c.start_line <= c.end_line <= len(lines)
        assert c.n_tokens == count_tokens(c.text) <= max_tokens
        if not is_outline(c) and c.start_line != c.end_line:
            assert c.text == "\n".join(lines[c.start_line - 1 : c.end_line]), (c.kind, c.symbol)
        covered.update(range(c.start_line, c.end_line + 1))
    uncovered = [n for n, line in enumerate(lines, 1) if line.strip() and n not in covered]
    assert not uncovered
    assert len({c.imports for c in chunks}) <= 1


def chunks_ok(path: str, src: str, max_tokens: int = 512) -> list[Chunk]:
    chunks, status = chunk_file_with_status(path, src, max_tokens=max_tokens)
    assert status == "ok"
    check_contract(chunks, src, max_tokens)
    return chunks


# --- parse errors -------------------------------------------------------------------------

BROKEN_JS = """\
import { join } from "path";

function good(a) {
  return join(a, "x");
}

function broken(a {
  return a;
}

class Kept {
  m() {
    return 1;
  }
}

const z = ;
"""


def test_syntax_error_keeps_clean_definitions_and_windows_the_rest():
    chunks, status = chunk_file_with_status("src/bad.js", BROKEN_JS)
    assert status == "partial"
    assert spans(chunks) == [
        ("module", "<module>", 1, 1),
        ("function", "good", 3, 5),
        ("text", "", 7, 9),  # the broken function: a line window
        ("class", "Kept", 11, 15),
        ("method", "Kept.m", 12, 14),
        ("text", "", 17, 17),  # a broken statement
    ]
    check_contract(chunks, BROKEN_JS)
    assert chunks[0].imports == ("path",)


def test_error_inside_a_class_keeps_its_clean_methods():
    src = (
        "class Svc {\n"  # 1
        "  run() {\n"
        "    return 1;\n"
        "  }\n"  # 4
        "  broken( {\n"
        "  }\n"
        "}\n"
    )
    chunks, status = chunk_file_with_status("svc.ts", src)
    assert status == "partial"
    assert ("method", "Svc.run", 2, 4) in spans(chunks)
    check_contract(chunks, src)


def test_go_missing_brace_is_partial_and_covered():
    src = "package main\n\nfunc ok() int {\n\treturn 1\n}\n\nfunc broken() {\n\tif x {\n}\n"
    chunks, status = chunk_file_with_status("main.go", src)
    assert status == "partial"
    assert ("function", "ok", 3, 5) in spans(chunks)
    check_contract(chunks, src)


def test_python_syntax_error_status():
    chunks, status = chunk_file_with_status("bad.py", "def broken(:\n    pass\n")
    assert status == "partial" and spans(chunks) == [("text", "", 1, 2)]


# --- a missing grammar --------------------------------------------------------------------


@pytest.fixture
def no_kotlin_grammar(monkeypatch):
    """Boundary: the only simulated failure in these tests. ``None`` in sys.modules makes
    ``import tree_sitter_kotlin`` raise ImportError, as when the wheel is not installed."""
    grammars.reset()
    monkeypatch.setitem(sys.modules, "tree_sitter_kotlin", None)
    yield
    monkeypatch.undo()
    grammars.reset()


def test_missing_grammar_falls_back_to_windows(no_kotlin_grammar, caplog):
    src = "".join(f"fun f{i}(x: Int): Int {{\n    return x + {i}\n}}\n\n" for i in range(20))
    with caplog.at_level(logging.WARNING, logger="rag_assets.chunking.grammars"):
        chunks, status = chunk_file_with_status("src/Main.kt", src)
        again, status2 = chunk_file_with_status("src/Other.kt", src)
    assert status == status2 == "fallback"
    assert {c.kind for c in chunks} == {"text"} and {c.language for c in chunks} == {"kotlin"}
    check_contract(chunks, src)
    assert chunks == [Chunk(**{**c.__dict__, "path": "src/Main.kt"}) for c in again]
    # One clear line, logged once per language.
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1
    assert messages[0].startswith("grammar for 'kotlin' unavailable: ModuleNotFoundError")
    assert "\n" not in messages[0]
    assert grammars.unavailable() == {"kotlin": messages[0]}
    # Other languages are unaffected.
    assert chunk_file_with_status("a.go", "package a\n\nfunc F() {}\n")[1] == "ok"


def test_grammar_unavailable_message():
    with pytest.raises(grammars.GrammarUnavailable, match=r"^grammar for 'cobol' unavailable: LookupError"):
        grammars.load_language("cobol")


# --- minified and oversized input ---------------------------------------------------------


def test_5mb_minified_js_is_fast_and_under_budget():
    body = "".join(
        f'function f{i}(a,b){{var c=a+b*{i};if(c>{i}){{return c}}else{{return [a,b,"s{i}"]}}}};' for i in range(60000)
    )
    assert len(body) > 5_000_000 and "\n" not in body
    chunk_file("warm.js", "x")
    t0 = time.perf_counter()
    chunks, status = chunk_file_with_status("dist/app.min.js", body)
    elapsed = time.perf_counter() - t0
    assert status == "skipped"  # not parsed: one line holds everything
    assert elapsed < 30  # ~2 s here; generous for a shared machine
    assert all(c.n_tokens <= 512 and c.start_line == c.end_line == 1 for c in chunks)
    assert "".join(c.text for c in chunks) == body


def test_oversized_function_splits_at_statements_with_part_numbers():
    stmts = "".join(f"  total += computeValue{i}(argument{i}, other{i});\n" for i in range(40))
    src = f"// Sums.\nexport function big(a: number): number {{\n  let total = 0;\n{stmts}  return total;\n}}\n"
    chunks = chunks_ok("big.ts", src, max_tokens=60)
    assert {(c.kind, c.symbol, c.signature) for c in chunks} == {
        ("function", "big", "export function big(a: number): number")}
    assert [c.part for c in chunks] == list(range(1, len(chunks) + 1)) and len(chunks) > 3
    assert chunks[0].start_line == 1 and chunks[-1].end_line == 45
    for prev, nxt in zip(chunks, chunks[1:]):
        assert nxt.start_line == prev.end_line + 1
    lines = split_lines(src)
    for c in chunks[1:]:  # every cut is at a statement start
        assert lines[c.start_line - 1].startswith(("  total", "  return"))


def test_oversized_outline_splits_between_members():
    methods = "".join(f"  /** Doc {i}. */\n  method{i}(x: number): number {{\n    return x * {i};\n  }}\n\n"
                      for i in range(30))
    src = f"export class Big {{\n  field = 1;\n\n{methods}}}\n"
    chunks = chunks_ok("big.ts", src, max_tokens=80)
    outline = [c for c in chunks if c.symbol == "Big"]
    assert len(outline) > 1 and [c.part for c in outline] == list(range(1, len(outline) + 1))
    assert all(c.kind == "class" for c in outline)
    assert outline[0].text.startswith("export class Big {\n  field = 1;")
    assert "  method0(x: number): number { ... }" in outline[0].text
    assert len([c for c in chunks if c.kind == "method"]) == 30


def test_crlf_bom_and_tabs_keep_spans():
    src = "\ufeffpackage main\r\n\r\n// F does.\r\nfunc F() {\r\n\treturn\r\n}\r\n"
    chunks = chunk_file("f.go", src)
    assert spans(chunks) == [("module", "<module>", 1, 1), ("function", "F", 3, 6)]
    assert chunks[1].text == "// F does.\nfunc F() {\n\treturn\n}"
    assert chunks[1].signature == "func F()"


def test_unicode_before_a_stub_keeps_utf8_columns():
    src = "class Ünïcode {\n  naïve(s = \"é\") {\n    return s;\n  }\n}\n"
    outline = chunk_file("u.js", src)[0]
    assert outline.text == "class Ünïcode {\n  naïve(s = \"é\") { ... }\n}"


def test_chunker_version():
    assert CHUNKER_VERSION == "3"  # 3: secrets redacted before chunking
