"""Chunker tests: exact spans on realistic files, budgets, line-ending edge cases."""

from __future__ import annotations

import time

import pytest

from rag_assets.chunking import CHUNKER_VERSION, Chunk, chunk_file, language_for, split_lines
from rag_assets.chunking.text_chunker import window_spans, make_counter
from rag_assets.chunking.tokens import count_tokens

# Line numbers are in the right-hand comments of the expectations below.
PY = '''\
"""Greeting utilities."""

import functools
import sys

DEFAULT_NAME = "world"


# Cached: greetings are pure.
@functools.lru_cache(maxsize=None)
def greet(name: str = DEFAULT_NAME) -> str:
    """Return a greeting for ``name``."""

    def shout(s):
        return s.upper()

    return shout(f"hello {name}")


@dataclass
class Greeter(Base):
    """Greets repeatedly."""

    times = 3

    def __init__(self, name):
        self.name = name

    @property
    def message(
        self,
    ) -> str:
        return greet(self.name) * self.times

    class Config:
        verbose = True

        def dump(self):
            return {"verbose": self.verbose}


if __name__ == "__main__":
    print(Greeter(sys.argv[1]).message)
'''

PY_EXPECTED = [
    ("module", "<module>", 1, 6),  # docstring, imports, constant
    ("function", "greet", 9, 17),  # leading comment + decorator + nested shout()
    ("class", "Greeter", 20, 24),  # decorator .. `times = 3`: own lines only
    ("method", "Greeter.__init__", 26, 27),
    ("method", "Greeter.message", 29, 33),
    ("class", "Greeter.Config", 35, 36),
    ("method", "Greeter.Config.dump", 38, 39),
    ("module", "<module>", 42, 43),  # if __name__ == "__main__"
]

MD = """\
Intro paragraph before any heading.

# Project

Some intro.

## Install

Run this:

```bash
# not a heading
pip install project
```

### From source

Clone it.

Usage
-----

Call it.

# Appendix ##
Last words.
"""

MD_EXPECTED = [
    ("section", "", 1, 1),
    ("section", "Project", 3, 5),
    ("section", "Project > Install", 7, 14),  # the fenced '# not a heading' stays inside
    ("section", "Project > Install > From source", 16, 18),
    ("section", "Project > Usage", 20, 23),  # setext h2
    ("section", "Appendix", 25, 26),  # closing '##' stripped from the title
]

RST = """\
=======
 Title
=======

Intro text.

Install
=======

Steps here.

From source
-----------

Clone.

Usage
=====

Use it::

    code
    ----
"""

RST_EXPECTED = [
    ("section", "Title", 1, 5),  # overlined '=' is the first style seen: level 1
    ("section", "Title > Install", 7, 10),  # underlined '=' is another style: level 2
    ("section", "Title > Install > From source", 12, 15),
    ("section", "Title > Usage", 17, 23),  # indented '----' in a literal block is no title
]

YAML = "".join(f"key{i}:\n  value: {i}\n" for i in range(1, 51))  # 100 lines


def spans(chunks: list[Chunk]) -> list[tuple[str, str, int, int]]:
    return [(c.kind, c.symbol, c.start_line, c.end_line) for c in chunks]


def assert_contiguous(chunk: Chunk, text: str) -> None:
    lines = split_lines(text)
    assert chunk.text == "\n".join(lines[chunk.start_line - 1 : chunk.end_line])


def assert_sound(chunks: list[Chunk], max_tokens: int) -> None:
    for c in chunks:
        assert c.text.strip()
        assert 1 <= c.start_line <= c.end_line
        assert c.n_tokens == count_tokens(c.text) <= max_tokens


# --- Python -------------------------------------------------------------------------------


def test_python_spans():
    chunks = chunk_file("pkg/greet.py", PY)
    assert spans(chunks) == PY_EXPECTED
    assert {c.language for c in chunks} == {"python"}
    assert {c.path for c in chunks} == {"pkg/greet.py"}
    assert_sound(chunks, 512)
    for c in chunks:
        if c.kind != "class":
            assert_contiguous(c, PY)


def test_python_class_outline_lists_methods_without_bodies():
    greeter = next(c for c in chunk_file("greet.py", PY) if c.symbol == "Greeter")
    assert greeter.text == (
        "@dataclass\n"
        "class Greeter(Base):\n"
        '    """Greets repeatedly."""\n'
        "\n"
        "    times = 3\n"
        "\n"
        "    def __init__(self, name):\n"
        "        ...\n"
        "\n"
        "    @property\n"
        "    def message(\n"
        "        self,\n"
        "    ) -> str:\n"
        "        ...\n"
        "\n"
        "    class Config:\n"
        "        ..."
    )
    config = next(c for c in chunk_file("greet.py", PY) if c.symbol == "Greeter.Config")
    assert config.text == "    class Config:\n        verbose = True\n\n        def dump(self):\n            ..."


def test_python_class_attribute_after_methods_extends_span():
    src = "class A:\n    def f(self):\n        return 1\n\n    x = 2\n"
    assert spans(chunk_file("a.py", src)) == [("class", "A", 1, 5), ("method", "A.f", 2, 3)]


def test_python_comments_attach_to_following_def_and_tabs():
    src = (
        "class T:\n"  # 1
        "\t# Says hi.\n"  # 2: directly above the method -> the method's chunk
        "\tdef hi(self):\n"
        "\t\treturn 'hi'\n"
        "\n"
        "\t# loose comment\n"  # 6: blank line below -> class content
        "\n"
        "\tdef bye(self):\n"  # 8
        "\t\treturn 'bye'\n"
    )
    chunks = chunk_file("t.py", src)
    assert spans(chunks) == [("class", "T", 1, 6), ("method", "T.hi", 2, 4), ("method", "T.bye", 8, 9)]
    assert chunks[0].text == "class T:\n\tdef hi(self):\n\t\t...\n\n\t# loose comment\n\n\tdef bye(self):\n\t\t..."


def test_python_one_liners_and_async():
    src = (
        "class Empty: pass\n"
        "\n"
        "class P:\n"
        "    def one(self): return 1\n"
        "\n"
        "async def fetch():\n"
        "    await go()\n"
    )
    chunks = chunk_file("a.py", src)
    assert spans(chunks) == [
        ("class", "Empty", 1, 1),
        ("class", "P", 3, 3),
        ("method", "P.one", 4, 4),
        ("function", "fetch", 6, 7),
    ]
    assert chunks[1].text == "class P:\n    def one(self): return 1"  # one-liner stub: no '...'


def test_python_small_budget_splits_under_budget():
    max_tokens = 40
    body = "\n".join(f"    total += compute_value_{i}(argument_{i}, other_{i})" for i in range(30))
    src = PY + f"\n\ndef big():\n    total = 0\n{body}\n    return total\n"
    chunks = chunk_file("greet.py", src, max_tokens=max_tokens)
    assert_sound(chunks, max_tokens)
    big = [c for c in chunks if c.symbol == "big"]
    assert len(big) > 1 and {c.kind for c in big} == {"function"}
    first_big = len(PY.splitlines()) + 3
    assert big[0].start_line == first_big and big[-1].end_line == first_big + 32
    for prev, nxt in zip(big, big[1:]):
        assert nxt.start_line == prev.end_line + 1  # consecutive, nothing lost
    for c in chunks:
        if c.kind != "class":
            assert_contiguous(c, src)
    # Every symbol of the unsplit result survives.
    assert {c.symbol for c in chunks} >= {s for _, s, _, _ in PY_EXPECTED}


def test_python_module_code_split_at_statement_starts():
    src = "".join(f"CONSTANT_{i} = {{\n    'key': 'value number {i}',\n}}\n" for i in range(20))
    chunks = chunk_file("consts.py", src, max_tokens=60)
    assert len(chunks) > 1
    assert_sound(chunks, 60)
    for c in chunks:
        assert c.kind == "module" and c.symbol == "<module>"
        assert c.start_line % 3 == 1 and c.end_line % 3 == 0  # whole statements only
        assert_contiguous(c, src)


def test_python_crlf_and_no_trailing_newline():
    crlf = PY.replace("\n", "\r\n")
    chunks = chunk_file("greet.py", crlf)
    assert spans(chunks) == PY_EXPECTED
    assert all("\r" not in c.text for c in chunks)
    for c in chunks:
        if c.kind != "class":
            assert_contiguous(c, crlf)

    no_newline = PY.rstrip("\n")
    chunks = chunk_file("greet.py", no_newline)
    assert spans(chunks) == PY_EXPECTED
    assert chunks[-1].text.endswith(".message)")


def test_python_bom_and_form_feed():
    # \f is not a line break for Python or editors (str.splitlines would count it).
    src = "\ufeffimport os\n\x0c\ndef f():\n    return os.sep\n"
    assert spans(chunk_file("a.py", src)) == [("module", "<module>", 1, 1), ("function", "f", 3, 4)]


def test_python_syntax_error_falls_back_to_windows():
    src = "def broken(:\n    pass\nprint 'py2'\n"
    chunks = chunk_file("bad.py", src)
    assert spans(chunks) == [("text", "", 1, 3)]
    assert chunks[0].language == "python"
    assert_contiguous(chunks[0], src)


def test_python_2000_lines_is_fast():
    funcs = []
    for i in range(200):
        funcs.append(f"def func_{i}(a, b):\n    \"\"\"Doc {i}.\"\"\"\n" + "".join(
            f"    a = a * {j} + b  # step {j}\n" for j in range(7)) + "    return a\n")
    src = "import os\n\n\n" + "\n".join(funcs)
    assert len(split_lines(src)) >= 2000
    chunk_file("warmup.py", "x = 1\n")  # load the encoding outside the timing
    t0 = time.perf_counter()
    chunks = chunk_file("big.py", src)
    assert time.perf_counter() - t0 < 1.0
    assert len(chunks) == 201
    t0 = time.perf_counter()
    small = chunk_file("big.py", src, max_tokens=40)
    assert time.perf_counter() - t0 < 1.0
    assert_sound(small, 40)


# --- Markup -------------------------------------------------------------------------------


def test_markdown_sections():
    chunks = chunk_file("README.md", MD)
    assert spans(chunks) == MD_EXPECTED
    assert {c.language for c in chunks} == {"markdown"}
    for c in chunks:
        assert_contiguous(c, MD)
    assert "# not a heading" in chunks[2].text


def test_markdown_tilde_fence_front_matter_and_lists():
    src = (
        "---\n"  # 1 front matter: its closing '---' is no setext underline
        "title: Doc\n"
        "---\n"
        "~~~~\n"  # 4
        "## inside fence\n"
        "~~~~\n"
        "- a list item\n"  # 7 list item + '---' is a thematic break, not a heading
        "---\n"
        "Title\n"  # 9
        "=====\n"
        "text\n"
    )
    assert spans(chunk_file("doc.mdx", src)) == [("section", "", 1, 8), ("section", "Title", 9, 11)]


def test_markdown_oversized_section_splits_at_blank_lines():
    paras = "\n\n".join(f"Paragraph {i} says something about topic number {i}." for i in range(12))
    src = f"# Big\n\n{paras}\n\n## Next\n\nDone.\n"
    chunks = chunk_file("big.md", src, max_tokens=40)
    assert_sound(chunks, 40)
    big = [c for c in chunks if c.symbol == "Big"]
    assert len(big) > 1
    assert big[0].start_line == 1
    lines = split_lines(src)
    for c in big:
        assert_contiguous(c, src)
        assert c.start_line == 1 or lines[c.start_line - 2] == ""  # cut after a blank line
    assert spans(chunks)[-1] == ("section", "Big > Next", 27, 29)


def test_rst_sections():
    chunks = chunk_file("docs/index.rst", RST)
    assert spans(chunks) == RST_EXPECTED
    assert {c.language for c in chunks} == {"rst"}
    for c in chunks:
        assert_contiguous(c, RST)


def test_rst_underline_too_short_is_not_a_title():
    src = "Intro\n\nLong title here\n===\n\nText.\n"
    assert spans(chunk_file("a.rst", src)) == [("section", "", 1, 6)]


# --- Plain text windows -------------------------------------------------------------------


def test_yaml_windows_overlap():
    # A file format without structure-aware chunking (YAML itself now splits at top-level
    # keys, see test_chunking_config.py).
    chunks = chunk_file("config/app.ini", YAML)
    assert spans(chunks) == [("text", "", 1, 60), ("text", "", 51, 100)]
    assert {c.language for c in chunks} == {"ini"}
    for c in chunks:
        assert_contiguous(c, YAML)


def test_windows_cut_early_for_budget():
    chunks = chunk_file("config/app.yaml", YAML, max_tokens=40)
    assert_sound(chunks, 40)
    assert chunks[0].start_line == 1 and chunks[-1].end_line == 100
    for prev, nxt in zip(chunks, chunks[1:]):
        assert prev.start_line < nxt.start_line <= prev.end_line + 1  # overlap, no gap
    for c in chunks:
        assert_contiguous(c, YAML)


def test_window_spans_small_window():
    lines = [f"line {i}" for i in range(1, 11)]
    got = [(a, b) for a, b, _, _ in window_spans(lines, 512, make_counter("cl100k_base"), "cl100k_base", 4, 1)]
    assert got == [(1, 4), (4, 7), (7, 10)]


def test_windows_trim_blank_edges():
    src = "\n\n  \nfirst\n\nsecond\n\n\n"
    assert spans(chunk_file("notes.txt", src)) == [("text", "", 4, 6)]


def test_huge_single_line_is_split_by_tokens():
    line = ",".join(f"v{i}:{i * 7919 % 10007}" for i in range(3000))  # minified-style
    src = f"// header\n{line}\n// footer\n"
    chunks = chunk_file("dist/app.min.js", src, max_tokens=100)
    assert_sound(chunks, 100)
    mid = [c for c in chunks if c.start_line == 2]
    assert len(mid) > 10
    assert all(c.end_line == 2 for c in mid)
    assert "".join(c.text for c in mid) == line
    assert (chunks[0].start_line, chunks[-1].end_line) == (1, 3)


def test_huge_line_inside_python_function():
    src = "def f():\n    return '" + "x y " * 2000 + "'\n"
    chunks = chunk_file("a.py", src, max_tokens=50)
    assert_sound(chunks, 50)
    assert [(c.kind, c.symbol) for c in chunks] == [("function", "f")] * len(chunks)
    assert chunks[0].text == "def f():"
    assert all(c.start_line == c.end_line == 2 for c in chunks[1:])


# --- Edge cases and API -------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "\n", "   \n\t\n", "\r\n\r\n"])
@pytest.mark.parametrize("path", ["a.py", "a.md", "a.rst", "a.txt"])
def test_empty_files(path, text):
    assert chunk_file(path, text) == []


def test_special_token_text_and_crlf_text_file():
    src = "a <|endoftext|> b\r\nsecond line\r\n"
    chunks = chunk_file("notes.txt", src)
    assert spans(chunks) == [("text", "", 1, 2)]
    assert chunks[0].text == "a <|endoftext|> b\nsecond line"


def test_split_lines_semantics():
    assert split_lines("") == []
    assert split_lines("a") == ["a"]
    assert split_lines("a\n") == ["a"]
    assert split_lines("a\n\n") == ["a", ""]
    assert split_lines("a\r\nb\rc\nd") == ["a", "b", "c", "d"]
    assert split_lines("a\x0cb\u2028c\n") == ["a\x0cb\u2028c"]


def test_max_tokens_floor():
    with pytest.raises(ValueError):
        chunk_file("a.txt", "hello", max_tokens=2)


def test_language_for():
    cases = {
        "src/app.py": "python",
        "types.pyi": "python",
        "README.md": "markdown",
        "docs/x.mdx": "markdown",
        "docs/index.rst": "rst",
        "web/app.JS": "javascript",
        "web/app.tsx": "typescript",
        "main.go": "go",
        "lib.rs": "rust",
        "Main.java": "java",
        "x.c": "c",
        "x.h": "c",
        "x.hpp": "cpp",
        "run.sh": "shell",
        "ci.yml": "yaml",
        "pyproject.toml": "toml",
        "package.json": "json",
        "index.html": "html",
        "style.css": "css",
        "schema.sql": "sql",
        "Dockerfile": "dockerfile",
        "Makefile": "make",
        "LICENSE": "text",
        "notes.txt": "text",
        "windows\\path\\mod.py": "python",
    }
    assert {p: language_for(p) for p in cases} == cases


def test_chunker_version_is_a_string():
    assert isinstance(CHUNKER_VERSION, str) and CHUNKER_VERSION
