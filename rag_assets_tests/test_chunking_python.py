"""Python (ast) chunks carry the new fields too: signature, imports, part."""

from __future__ import annotations

from rag_assets.chunking import chunk_file

from .test_chunking_syntax import by_symbol, check_contract

SRC = '''\
import os.path
from . import sibling
from ..pkg.util import helper as h


class Parser(Base,  # the base
             metaclass=Meta):
    """Parses."""

    def parse(
        self,
        args: list[str],  # raw argv
    ) -> "Result":
        import json
        return json.loads(args[0])

    async def fetch(self, url: str = "http://x:1") -> bytes: return b""


def top(): pass
'''


def test_python_signatures_and_imports():
    chunks = chunk_file("pkg/parser.py", SRC)
    check_contract(chunks, SRC)
    sigs = {c.symbol: c.signature for c in chunks}
    assert sigs == {
        "<module>": "",
        "Parser": "class Parser(Base, metaclass=Meta)",  # comment dropped, one line
        "Parser.parse": 'def parse(self, args: list[str]) -> "Result"',
        "Parser.fetch": 'async def fetch(self, url: str = "http://x:1") -> bytes',  # ':' in a default
        "top": "def top()",
    }
    # Every chunk: the file's imports, function-level ones included, relative ones with dots.
    assert {c.imports for c in chunks} == {("os.path", ".", "..pkg.util", "json")}


def test_python_parts_are_numbered():
    body = "".join(f"    total += compute_value_{i}(argument_{i}, other_{i})\n" for i in range(30))
    src = f"X = 1\n\n\ndef big():\n    total = 0\n{body}    return total\n"
    chunks = chunk_file("big.py", src, max_tokens=40)
    big = [c for c in chunks if c.symbol == "big"]
    assert [c.part for c in big] == list(range(1, len(big) + 1)) and len(big) > 2
    assert {c.signature for c in big} == {"def big()"}
    assert by_symbol(chunks, "<module>").part == 0  # grouped module code has no parts
