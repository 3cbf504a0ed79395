"""Mine golden queries from a source's own chunks, for sources without a hand-written query file.

Recipe "docstring": a definition's docstring / doc comment, first sentence, is the query; the
definition's span (all its parts) is the target. The chunk text contains that docstring, so to keep it
from being a string match:
- only first sentences of >= MIN_WORDS words are kept;
- the definition's own name tokens (`total_price` -> total, price, prices) are removed from the query;
- functions and methods are preferred, then other definitions, then test code;
- queries whose text is shared by several definitions are dropped (ambiguous);
- at most `cap` queries, sampled with a fixed seed (same chunks -> same set).

Pure: a chunks DataFrame in (chunk_id, path, kind, symbol, signature, start_line, end_line, text,
language; optional part), a DataFrame of queries out (the query-file contract's fields + symbol).
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rag_assets.chunking.python_chunker import parse_ast

RECIPE = "docstring"
MINING_VERSION = "1"  # bump when the recipe changes: the golden_queries asset's code version
MIN_WORDS = 6  # words in the docstring's first sentence
MIN_QUERY_WORDS = 4  # words left once the symbol's own name is taken out
DEFAULT_CAP = 50
DEFAULT_SEED = 0
QUERY_COLUMNS = ["id", "query", "path", "start_line", "end_line", "kind", "symbol", "language", "recipe"]

CALLABLE_KINDS = {"function", "method"}
DEFINITION_KINDS = CALLABLE_KINDS | {"class", "interface", "struct", "enum", "trait", "impl", "type"}
_HASH_COMMENT_LANGUAGES = {"python", "ruby", "bash", "shell", "sh", "perl", "r", "elixir", "powershell"}
_TEST_PATH = re.compile(r"(^|/)(tests?|spec|specs|__tests__|testing)/|(^|/)test_[^/]*$|_test\.\w+$|"
                        r"\.(spec|test)\.\w+$|Tests?\.(java|kt|cs|swift)$")
_TAG_LINE = re.compile(r"^\s*(@\w+|:param|:returns?:|:raises|Args:|Arguments:|Returns:|Raises:|Parameters\b|Example)")
_SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)(?<!\betc)(?<!\bvs)[.!?](?=\s|$)")
_WORD_EDGE = re.compile(r"^[^\w]+|[^\w]+$")


@dataclass
class MiningStats:
    definitions: int = 0  # definition chunks (first part only) seen
    with_doc: int = 0  # ... that carry a docstring / doc comment
    long_enough: int = 0  # ... whose first sentence has >= MIN_WORDS words
    kept: int = 0  # ... still >= MIN_QUERY_WORDS words once the name is stripped, and not ambiguous
    sampled: int = 0
    by_kind: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"definitions": self.definitions, "with_doc": self.with_doc, "long_enough": self.long_enough,
                "kept": self.kept, "sampled": self.sampled, "by_kind": dict(self.by_kind)}


# ------------------------------------------------------------------ doc text
def _python_docstring(text: str) -> str | None:
    try:
        tree = parse_ast(textwrap.dedent(text))
    except (SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return ast.get_docstring(node)
    return None


def _leading_comment(text: str, language: str) -> str | None:
    """The comment block at the top of the chunk (doc comments precede the definition)."""
    out: list[str] = []
    in_block = False
    for raw in text.splitlines():
        line = raw.strip()
        if in_block:
            end = line.find("*/")
            body = line[:end] if end >= 0 else line
            out.append(re.sub(r"^\*+\s?", "", body))
            if end >= 0:
                in_block = False
            continue
        if not line:
            if out:
                out.append("")
            continue
        if line.startswith("/*"):
            body = re.sub(r"^/\*+!?\s?", "", line)
            end = body.find("*/")
            out.append(re.sub(r"^\*+\s?", "", body[:end] if end >= 0 else body))
            in_block = end < 0
        elif line.startswith("//"):
            out.append(re.sub(r"^//[/!]?\s?", "", line))
        elif line.startswith("#") and language in _HASH_COMMENT_LANGUAGES and not line.startswith(("#!", "#[")):
            out.append(re.sub(r"^#+\s?", "", line))
        elif line.startswith("--") and language in {"sql", "lua", "haskell"}:
            out.append(re.sub(r"^--+\s?", "", line))
        else:
            break  # the definition (or a decorator / annotation) starts
    doc = "\n".join(out).strip()
    return doc or None


def doc_text(text: str, language: str) -> str | None:
    if language == "python":
        return _python_docstring(text) or _leading_comment(text, language)
    return _leading_comment(text, language)


def first_sentence(doc: str) -> str:
    """The first paragraph up to its first sentence end, on one line (tags like @param end it)."""
    para = []
    for line in doc.strip().splitlines():
        if not line.strip() or _TAG_LINE.match(line):
            break
        para.append(line.strip())
    flat = " ".join(" ".join(para).split())
    m = _SENTENCE_END.search(flat)
    return (flat[:m.start()] if m else flat).strip()


# ------------------------------------------------------------------ name stripping
def name_tokens(symbol: str) -> set[str]:
    """The definition's own name and its parts, lower case: `Cart.total_price` -> total_price, total, price."""
    own = re.split(r"::|\.|#|->", symbol or "")[-1]
    own = re.sub(r"[^\w]", "", own)
    if not own:
        return set()
    parts = re.findall(r"[A-Z]+(?=[A-Z][a-z]|\d|\b|_)|[A-Z]?[a-z]+|[A-Z]+|\d+", own)
    tokens = {own.lower(), *(p.lower() for p in parts if p)}
    return {t for t in tokens if t}


def strip_name(sentence: str, tokens: set[str]) -> str:
    def is_name(word: str) -> bool:
        w = _WORD_EDGE.sub("", word).removesuffix("()").lower()
        w = _WORD_EDGE.sub("", w)
        if not w:
            return False
        if w in tokens or (w.endswith("es") and w[:-2] in tokens) or (w.endswith("s") and w[:-1] in tokens):
            return True
        pieces = [p for p in re.split(r"[._:#]+", w) if p]  # `Cart.total_price` written out in the doc
        return len(pieces) > 1 and pieces[-1] in tokens

    return " ".join(w for w in sentence.split() if not is_name(w))


# ------------------------------------------------------------------ mining
def _tier(kind: str, path: str) -> int:
    if _TEST_PATH.search(path):
        return 2
    return 0 if kind in CALLABLE_KINDS else 1


def mine_queries(chunks: pd.DataFrame, cap: int = DEFAULT_CAP,
                 seed: int = DEFAULT_SEED) -> tuple[pd.DataFrame, MiningStats]:
    """Up to `cap` queries (QUERY_COLUMNS) from the chunks' definitions; deterministic for given chunks."""
    stats = MiningStats()
    if chunks is None or not len(chunks):
        return pd.DataFrame(columns=QUERY_COLUMNS), stats
    df = chunks[chunks["kind"].isin(DEFINITION_KINDS) & (chunks["symbol"].fillna("") != "")]
    # The definition's whole span over its parts; the docstring lives in the first part.
    spans = df.groupby(["path", "symbol"]).agg(start_line=("start_line", "min"), end_line=("end_line", "max"))
    first = df.sort_values(["path", "symbol", "start_line"]).drop_duplicates(["path", "symbol"], keep="first")
    cands = []
    for row in first.itertuples(index=False):
        stats.definitions += 1
        doc = doc_text(row.text, row.language or "")
        if not doc:
            continue
        stats.with_doc += 1
        sentence = first_sentence(doc)
        if len(sentence.split()) < MIN_WORDS:
            continue
        stats.long_enough += 1
        query = strip_name(sentence, name_tokens(row.symbol)).strip(" ,;:-")
        if len(query.split()) < MIN_QUERY_WORDS:
            continue
        start, end = spans.loc[(row.path, row.symbol)]
        cands.append({"id": f"{row.path}:{row.symbol}", "query": query, "path": row.path,
                      "start_line": int(start), "end_line": int(end), "kind": row.kind, "symbol": row.symbol,
                      "language": row.language or "", "recipe": RECIPE, "_tier": _tier(row.kind, row.path),
                      "_sentence": sentence.lower()})
    # The same words for two definitions (docstring or query): no single right answer.
    shared = {key: pd.Series([c[key].lower() for c in cands]).value_counts() for key in ("_sentence", "query")}
    cands = [c for c in cands if all(shared[key][c[key].lower()] == 1 for key in shared)]
    stats.kept = len(cands)
    cands.sort(key=lambda c: (c["path"], c["start_line"], c["symbol"]))
    rng = np.random.default_rng(seed)
    chosen: list[dict] = []
    for tier in (0, 1, 2):  # prefer functions and methods, then other definitions, then test code
        pool = [c for c in cands if c["_tier"] == tier]
        room = cap - len(chosen)
        if room <= 0:
            break
        if len(pool) > room:
            pool = [pool[i] for i in sorted(rng.choice(len(pool), room, replace=False))]
        chosen += pool
    chosen.sort(key=lambda c: (c["path"], c["start_line"], c["symbol"]))
    stats.sampled = len(chosen)
    for c in chosen:
        stats.by_kind[c["kind"]] = stats.by_kind.get(c["kind"], 0) + 1
    out = pd.DataFrame([{k: c[k] for k in QUERY_COLUMNS} for c in chosen], columns=QUERY_COLUMNS)
    return out, stats


def as_query_dicts(df: pd.DataFrame) -> list[dict]:
    """Rows in the query-file contract's shape (ints as ints), for `evaluate`."""
    out = []
    for r in df.to_dict("records"):
        r["start_line"], r["end_line"] = int(r["start_line"]), int(r["end_line"])
        out.append(r)
    return out
