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
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from rag_assets.chunking.python_chunker import parse_ast
from rag_assets.tables import BATCH_ROWS, Table, TableError, TableWriter

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
    parsed: int = 0  # first parts whose text was read and parsed (not in the cache)
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


_DEF_COLUMNS = ["chunk_id", "path", "kind", "symbol", "start_line", "end_line", "language"]
CACHE_SCHEMA = pa.schema([("chunk_id", pa.string()), ("symbol", pa.string()), ("sentence", pa.string()),
                          ("query", pa.string())])


def _definitions(chunks: Table) -> pd.DataFrame:
    """The definition rows (no text), with their row number in the table: read a row group at a time."""
    parts = []
    for start, rows, _ in chunks.batches([c for c in _DEF_COLUMNS if c in chunks.column_names]):
        keep = (rows["kind"].isin(DEFINITION_KINDS) & (rows["symbol"].fillna("") != "")).to_numpy()
        if keep.any():
            sel = rows[keep].reset_index(drop=True)
            sel["row"] = start + np.nonzero(keep)[0]
            parts.append(sel)
    if not parts:
        return pd.DataFrame(columns=[*_DEF_COLUMNS, "row"])
    out = pd.concat(parts, ignore_index=True)
    if "language" not in out:
        out["language"] = ""
    out["language"] = out["language"].fillna("")
    return out


def _sentence_and_query(text: str, language: str, symbol: str) -> tuple[str | None, str]:
    """The docstring's first sentence (None: no docstring) and the query made of it ('' when too short)."""
    doc = doc_text(text, language)
    if not doc:
        return None, ""
    sentence = first_sentence(doc)
    if len(sentence.split()) < MIN_WORDS:
        return sentence, ""
    query = strip_name(sentence, name_tokens(symbol)).strip(" ,;:-")
    return sentence, query if len(query.split()) >= MIN_QUERY_WORDS else ""


def _mined(first: pd.DataFrame, chunks: Table, cache: pd.DataFrame | None) -> tuple[pd.DataFrame, int]:
    """`first` with sentence and query columns: from the cache where (chunk_id, symbol) is there (the chunk
    id hashes path, lines and text), else from the chunk's text, read a row-group batch at a time."""
    first = first.drop(columns=["sentence", "query"], errors="ignore")
    if cache is not None and len(cache):
        first = first.merge(cache, on=["chunk_id", "symbol"], how="left", indicator=True)
        known = (first.pop("_merge") == "both").to_numpy()
    else:
        first = first.assign(sentence=None, query=None)
        known = np.zeros(len(first), dtype=bool)
    todo = np.nonzero(~known)[0]
    todo = todo[np.argsort(first["row"].to_numpy()[todo], kind="stable")]  # file order: few row groups per batch
    sentences = first["sentence"].astype(object).to_numpy(copy=True)
    queries = first["query"].astype(object).to_numpy(copy=True)
    for lo in range(0, len(todo), BATCH_ROWS):
        sel = todo[lo:lo + BATCH_ROWS]
        texts, _ = chunks.take(first["row"].to_numpy()[sel], ["text"])
        for i, text in zip(sel, texts["text"]):
            sentences[i], queries[i] = _sentence_and_query(text, first.at[i, "language"], first.at[i, "symbol"])
    return first.assign(sentence=sentences, query=queries), len(todo)


def mine_table(chunks: Table, cap: int = DEFAULT_CAP, seed: int = DEFAULT_SEED,
               cache: pd.DataFrame | None = None) -> tuple[pd.DataFrame, MiningStats, pd.DataFrame]:
    """Up to `cap` queries (QUERY_COLUMNS) from the chunks' definitions; deterministic for given chunks.

    Streamed: reads the definitions' columns without text, then the text of only those first parts that
    `cache` (the third value returned by the last call: chunk_id, symbol, sentence, query) does not hold,
    so a commit re-parses the docstrings of the definitions it changed, not of the repository."""
    stats = MiningStats()
    defs = _definitions(chunks) if chunks is not None and len(chunks) else pd.DataFrame(columns=[*_DEF_COLUMNS, "row"])
    if not len(defs):
        return pd.DataFrame(columns=QUERY_COLUMNS), stats, CACHE_SCHEMA.empty_table().to_pandas()
    # The definition's whole span over its parts; the docstring lives in the first part.
    spans = defs.groupby(["path", "symbol"], sort=False).agg(start=("start_line", "min"), end=("end_line", "max"))
    first = defs.sort_values(["path", "symbol", "start_line"]).drop_duplicates(["path", "symbol"], keep="first")
    first, stats.parsed = _mined(first.reset_index(drop=True), chunks, cache)
    new_cache = first[["chunk_id", "symbol", "sentence", "query"]].reset_index(drop=True)

    stats.definitions = len(first)
    with_doc = first["sentence"].notna()
    stats.with_doc = int(with_doc.sum())
    stats.long_enough = int(first.loc[with_doc, "sentence"].map(lambda s: len(s.split()) >= MIN_WORDS).sum())
    cands = first[first["query"].fillna("") != ""].join(spans, on=["path", "symbol"])
    # The same words for two definitions (docstring or query): no single right answer.
    sentence_l, query_l = cands["sentence"].str.lower(), cands["query"].str.lower()
    unique = sentence_l.map(sentence_l.value_counts()).eq(1) & query_l.map(query_l.value_counts()).eq(1)
    cands = cands[unique]
    stats.kept = len(cands)
    cands = cands.assign(start_line=cands["start"].astype(int), end_line=cands["end"].astype(int))
    cands = cands.sort_values(["path", "start_line", "symbol"], kind="stable").reset_index(drop=True)
    tier = np.where(cands["path"].map(lambda p: bool(_TEST_PATH.search(p))).astype(bool), 2, np.where(cands["kind"].isin(CALLABLE_KINDS), 0, 1))
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for t in (0, 1, 2):  # prefer functions and methods, then other definitions, then test code
        pool = list(np.nonzero(tier == t)[0])
        room = cap - len(chosen)
        if room <= 0:
            break
        if len(pool) > room:
            pool = [pool[i] for i in sorted(rng.choice(len(pool), room, replace=False))]
        chosen += pool
    out = cands.iloc[sorted(chosen, key=lambda i: (cands.at[i, "path"], cands.at[i, "start_line"],
                                                    cands.at[i, "symbol"]))].copy()
    out["id"] = out["path"] + ":" + out["symbol"]
    out["recipe"] = RECIPE
    out = out[QUERY_COLUMNS].reset_index(drop=True)
    stats.sampled = len(out)
    stats.by_kind = {k: int(v) for k, v in out["kind"].value_counts(sort=False).items()}
    return out, stats, new_cache


def mine_queries(chunks: pd.DataFrame, cap: int = DEFAULT_CAP,
                 seed: int = DEFAULT_SEED) -> tuple[pd.DataFrame, MiningStats]:
    """mine_table over an in-memory chunks DataFrame."""
    if chunks is None or not len(chunks):
        return pd.DataFrame(columns=QUERY_COLUMNS), MiningStats()
    out, stats, _ = mine_table(Table(chunks.reset_index(drop=True), {}), cap=cap, seed=seed)
    return out, stats


def load_cache(path: Path) -> pd.DataFrame | None:
    """The mining cache written by save_cache, or None when missing, damaged or from another recipe."""
    try:
        t = Table.open(path)
        if t.meta.get("version") != MINING_VERSION or t.meta.get("recipe") != RECIPE:
            return None
        return t.df
    except (FileNotFoundError, TableError):
        return None


def save_cache(path: Path, cache: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with TableWriter(path, {"version": MINING_VERSION, "recipe": RECIPE}, schema=CACHE_SCHEMA) as w:
        for lo in range(0, len(cache), BATCH_ROWS):
            w.write(cache.iloc[lo:lo + BATCH_ROWS])
        w.commit()


def as_query_dicts(df: pd.DataFrame) -> list[dict]:
    """Rows in the query-file contract's shape (ints as ints), for `evaluate`."""
    out = []
    for r in df.to_dict("records"):
        r["start_line"], r["end_line"] = int(r["start_line"]), int(r["end_line"])
        out.append(r)
    return out
