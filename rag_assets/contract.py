"""The index contract: what the pipeline writes and what search, rerank and store migration read.

Collection names, ids, the text the models read, the payload of a point, the sparse scheme, the
citation format and the partition-key format. Changing any of these needs a re-index (or a migration),
so they live here, in one small module with no heavy imports.
"""

from __future__ import annotations

import hashlib
import uuid

# ---------------------------------------------------------------- ids
# Deterministic: the same chunk always gets the same id and point, so every step is idempotent.
_NS = uuid.UUID("6f1c3a52-8d0e-4f6b-9a51-2c7d93e4b1a0")


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def chunk_id(source: str, path: str, start_line: int, end_line: int, text_hash: str) -> str:
    return hashlib.sha256(f"{source}\0{path}\0{start_line}\0{end_line}\0{text_hash}".encode()).hexdigest()[:32]


def point_id(chunk_id_: str) -> str:
    return str(uuid.uuid5(_NS, chunk_id_))


# ---------------------------------------------------------------- names and keys
def collection_name(source: str, model_key: str) -> str:
    """One collection per source × model; the source's alias (its own name) points at the live one."""
    return f"{source}__{model_key}"


def partition_key(source: str, model_key: str) -> str:
    """The source × model partition as a string: Dagster joins a multi-partition key's values in the
    order of its dimension names ("model" < "source"). defs/partitions builds the same key."""
    return f"{model_key}|{source}"


# ---------------------------------------------------------------- chunks and points
CHUNK_COLUMNS = [
    "chunk_id", "content_hash", "source", "path", "blob_sha", "language", "kind",
    "symbol", "signature", "imports", "part", "start_line", "end_line", "n_tokens", "commit", "text",
]
# `part`: 1, 2, ... for the pieces of a definition split under the token budget (each keeps the symbol).
PAYLOAD_COLUMNS = ["source", "path", "language", "kind", "symbol", "signature", "imports", "part", "start_line",
                   "end_line", "commit", "text"]


def embedding_text(path: str, symbol: str, text: str, signature: str = "") -> str:
    """What the models read (dense and sparse): a header naming the file, the qualified symbol and its
    one-line signature helps queries that name files or functions, even when the body is cut off."""
    header = f"{path} :: {symbol}" if symbol else path
    if signature and signature not in text.split("\n", 1)[0]:
        header = f"{header} :: {signature}"
    return f"{header}\n{text}"


def citation(path: str, start_line: int, end_line: int, commit: str) -> str:
    """`path:start-end @ commit12`, on one line: a path with control characters (git allows a newline
    in a file name), a double quote or a backslash is quoted as git quotes it (`"a\\nb.py"`); the JSON
    `path` of a hit stays the real path."""
    return f"{quote_path(path)}:{start_line}-{end_line} @ {commit[:12]}"


# git's quote_c_style escapes (quote.c): the named ones, then octal for the other control characters.
_C_ESCAPES = {"\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f", "\r": "\\r",
              '"': '\\"', "\\": "\\\\"}


def _needs_escape(c: str) -> bool:
    # C0 controls and DEL (as git), and the C1 controls and Unicode line/paragraph separators, which
    # some readers take for line breaks (git with core.quotePath=true escapes those bytes too).
    return c < " " or "\x7f" <= c <= "\x9f" or c in "\u2028\u2029"


def quote_path(path: str) -> str:
    """A path as `git ls-files` prints it with core.quotePath=false: unchanged unless it holds a control
    character, `"` or `\\`; then in double quotes with C escapes, other control characters as the octal
    of their UTF-8 bytes (`"e\\033x"`). Non-ASCII letters stay as they are."""
    if not any(c in '"\\' or _needs_escape(c) for c in path):
        return path
    out = []
    for c in path:
        if c in _C_ESCAPES:
            out.append(_C_ESCAPES[c])
        elif _needs_escape(c):
            out.append("".join(f"\\{b:03o}" for b in c.encode("utf-8")))
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


# ---------------------------------------------------------------- sparse vectors
# BM25 length normalisation against a fixed mean (see store/sparse.py for why it is fixed).
SPARSE_AVG_LEN = 80.0
SPARSE_SCHEME = f"bm25 blake2b32 avg_len={SPARSE_AVG_LEN:g}"
