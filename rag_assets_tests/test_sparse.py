"""The code-aware BM25 sparse encoder: tokenizer, BM25 weights, stable hashed indices."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag_assets.store.sparse import (
    DEFAULT_AVG_LEN,
    K1,
    SparseVec,
    encode_document,
    encode_query,
    token_index,
    tokenize,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("ParquetIOManager", ["parquetiomanager", "parquet", "io", "manager"]),
        ("parse_sources", ["parse_sources", "parse", "sources"]),
        ("getHTTPResponse", ["gethttpresponse", "get", "http", "response"]),
        ("XMLHttpRequest", ["xmlhttprequest", "xml", "http", "request"]),
        ("qdrant_client", ["qdrant_client", "qdrant", "client"]),
        ("os.path.join", ["os.path.join", "os", "path", "join"]),
        ("sha256 utf8 HTTPServer2", ["sha256", "sha", "256", "utf8", "utf", "httpserver2", "http", "server"]),
        ("__init__", ["__init__", "init"]),
        ("Port 6333 or 404", ["port", "6333", "404"]),
        ("naïve Café", ["naïve", "café"]),
    ],
)
def test_tokenize_identifiers(text, expected):
    assert tokenize(text) == expected


def test_tokenize_dotted_keeps_component_parts():
    assert tokenize("qdrant_client.models.SparseVector") == [
        "qdrant_client.models.sparsevector",
        "qdrant_client", "qdrant", "client",
        "models",
        "sparsevector", "sparse", "vector",
    ]  # fmt: skip


def test_tokenize_drops_short_tokens_stopwords_and_receivers():
    # 1-char tokens go, standalone stopwords go, `self.` is stripped from dotted names.
    assert tokenize("x = self.store.query(a, b)") == ["store.query", "store", "query"]
    assert tokenize("def f(self): return None") == []
    assert tokenize("How do I return the value of the config?") == ["value", "config"]
    # ...but a stopword inside an identifier stays a part of it.
    assert tokenize("to_dict is_empty") == ["to_dict", "to", "dict", "is_empty", "is", "empty"]


def test_tokenize_repeats_count():
    assert tokenize("load load LOAD") == ["load"] * 3


def _weight(vec: SparseVec, token: str) -> float:
    (pos,) = np.nonzero(vec.indices == token_index(token))[0]
    return float(vec.values[pos])


def test_document_vector_shape_and_types():
    vec = encode_document("def load_config(path): return parse(path) + parse(path)")
    assert vec.indices.dtype == np.uint32 and vec.values.dtype == np.float32
    assert np.all(np.diff(vec.indices.astype(np.int64)) > 0)  # unique, ascending
    assert len(vec) == len(set(tokenize("load_config path parse"))) and np.all(vec.values > 0)
    assert len(encode_document("+ - * /")) == 0


def test_bm25_formula():
    # 4 tokens: parse x3, config x1 -> tf*(k1+1) / (tf + k1*(1 - b + b*4/avg))
    vec = encode_document("parse parse parse config", avg_len=10.0, k1=1.2, b=0.75)
    norm = 1.2 * (1 - 0.75 + 0.75 * 4 / 10)
    assert _weight(vec, "parse") == pytest.approx(3 * 2.2 / (3 + norm))
    assert _weight(vec, "config") == pytest.approx(1 * 2.2 / (1 + norm))
    # At the average length a single occurrence weighs exactly 1.
    assert _weight(encode_document("alpha beta", avg_len=2.0), "alpha") == pytest.approx(1.0)


def test_bm25_tf_saturates():
    texts = ["token " * tf + "filler " * (20 - tf) for tf in (1, 2, 4, 8, 16)]  # same length
    w = [_weight(encode_document(t, avg_len=20), "token") for t in texts]
    assert all(a < b for a, b in zip(w, w[1:]))  # more occurrences, more weight
    gains = np.diff(w)
    assert all(a > b for a, b in zip(gains, gains[1:]))  # ...with diminishing returns
    assert w[-1] < K1 + 1  # bounded by k1 + 1


def test_bm25_length_normalisation():
    short = encode_document("parse_sources " + "alpha " * 5)
    long = encode_document("parse_sources " + "alpha " * 500)
    assert _weight(short, "parse_sources") > _weight(long, "parse_sources")
    # b=0 switches normalisation off
    no_b = [encode_document(t, b=0.0) for t in ("parse " + "alpha " * 5, "parse " + "alpha " * 500)]
    assert _weight(no_b[0], "parse") == pytest.approx(_weight(no_b[1], "parse"))
    # avg_len matters only through len/avg_len
    text = "parse " + "alpha " * 9
    assert _weight(encode_document(text, avg_len=DEFAULT_AVG_LEN), "parse") > _weight(
        encode_document(text, avg_len=5.0), "parse"
    )


def test_query_vector_is_unit_weights_per_unique_token():
    vec = encode_query("ParquetIOManager parquet parquet")
    assert vec.values.dtype == np.float32 and np.all(vec.values == 1.0)
    tokens = ("parquetiomanager", "parquet", "io", "manager")
    assert sorted(vec.indices.tolist()) == sorted({token_index(t) for t in tokens})
    assert len(encode_query("")) == 0


def test_token_index_is_pinned():
    # blake2b-32: changing the hash silently breaks every stored sparse vector -- re-index then.
    assert token_index("parse_sources") == 1096597378
    assert token_index("qdrant") == 585620190


def test_indices_stable_across_processes():
    text = "class ParquetIOManager: def load_input(self, context): return pd.read_parquet(path)"
    code = (
        "import sys; from rag_assets.store.sparse import encode_document as e; v = e(sys.argv[1]); "
        "print(','.join(map(str, v.indices.tolist()))); print(','.join(repr(float(x)) for x in v.values))"
    )
    mine = encode_document(text)
    for seed in ("1", "2"):  # Python's own str hash differs per seed; ours must not
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO_ROOT)}
        out = subprocess.run(
            [sys.executable, "-c", code, text], capture_output=True, text=True, env=env, check=True
        )
        idx_line, val_line = out.stdout.strip().splitlines()
        assert [int(i) for i in idx_line.split(",")] == mine.indices.tolist()
        assert np.allclose([float(v) for v in val_line.split(",")], mine.values)
