"""Sentence-transformers encoding for documents and queries, offline, on the best device.

Documents: texts are tokenized once with the model's own tokenizer, sorted by their real length in
word-pieces (capped at the model's window) and cut into batches by padded tokens, not by count, so a batch
of short texts is large and a batch of window-length ones small, and almost nothing is padding (sorting by
characters, as before, padded ~20 % of the work on real chunks; see benchmarks/embed_bench.py). Vectors come
back in input order and equal the unsorted ones (each batch goes through the model's own `encode`).

Queries go through query_encoder.py (an int8 ONNX encoder for the default model, this one otherwise).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from rag_assets.embedding.models import ModelSpec, model_path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach a model hub at run time
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Padded tokens per batch. CPU: small batches keep the activations in cache; 4,096 (16 window-length texts,
# ~100 short ones) measured best of 1k-16k on 2 cores (benchmarks/embed_bench.py). GPU: batch_size windows.
CPU_BATCH_TOKENS = 4096
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # "<quota> <period>" or "max <period>" (cgroup v2)


def pick_device(device: str = "auto") -> str:
    """auto: cuda when torch sees a GPU, else mps (Apple), else cpu; anything else is taken as given."""
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def use_fp16(device: str) -> bool:
    """Half precision on CUDA only (~2x throughput there, same ranking); CPU and MPS stay float32."""
    return device == "cuda" or device.startswith("cuda:")


def cpu_threads() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota (a container's
    `--cpus`), which torch's default (the host's physical cores) does not see."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


PROC_STAT = Path("/proc/stat")


def _cpu_jiffies() -> tuple[int, int, int]:
    """(idle incl. iowait, total, CPUs) from /proc/stat, host-wide."""
    lines = PROC_STAT.read_text().splitlines()
    fields = [int(x) for x in lines[0].split()[1:]]
    ncpu = sum(1 for line in lines[1:] if line.startswith("cpu"))
    return fields[3] + (fields[4] if len(fields) > 4 else 0), sum(fields[:8]), ncpu


def free_cpus(window_s: float = 0.3) -> float:
    """CPUs left idle by other processes right now: /proc/stat's idle share over a short window (we sleep
    meanwhile, so it is the others' use), times the host's CPUs. Not a load average: those remember the
    minute before (e.g. this run's own chunking step) and would starve an idle machine."""
    try:
        idle0, total0, ncpu = _cpu_jiffies()
        time.sleep(window_s)
        idle1, total1, _ = _cpu_jiffies()
    except (OSError, ValueError, IndexError):
        return float(cpu_threads())  # no /proc (not Linux): assume the machine is ours
    if total1 <= total0:
        return float(cpu_threads())
    return (idle1 - idle0) / (total1 - total0) * ncpu


def auto_threads() -> int:
    """torch threads for encoding on the CPU: the CPUs we may use that other processes leave idle, at least
    1. Measured on the shared 2-core box (benchmarks/embed_bench.py): idle, 2 threads encode ~1.65x faster
    than 1; with other jobs keeping it busy (load >= 4), 1 thread is 1.6-1.8x faster than 2: OpenMP's two
    workers wait on each other whenever one of them is descheduled."""
    n = cpu_threads()
    return max(1, min(n, math.floor(free_cpus() + 0.5)))


def configure_cpu_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads: `threads` when given; else leave OMP_NUM_THREADS / MKL_NUM_THREADS to
    rule when the user set them; else auto_threads(). More threads than free CPUs only adds contention."""
    import torch

    if threads:
        n = threads
    elif os.environ.get("OMP_NUM_THREADS") or os.environ.get("MKL_NUM_THREADS"):
        return torch.get_num_threads()
    else:
        n = auto_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return torch.get_num_threads()


@lru_cache(maxsize=4)
def _load(path: str, device: str, max_seq_length: int):
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the "Loading weights" bar is noise in logs and the CLI
    if device == "cpu":
        configure_cpu_threads()
    model = SentenceTransformer(path, device=device)
    model.max_seq_length = max_seq_length
    if use_fp16(device):
        model.half()  # fp16 on GPU: ~2x throughput, same ranking
    return model


_load_lock = threading.Lock()


def token_batches(lengths: Sequence[int], max_tokens: int, max_count: int | None = None) -> tuple[np.ndarray, list[slice]]:
    """Order (longest first, stable) and slices of that order such that each batch's padded size
    (count x its longest) stays within max_tokens (a text longer than the budget goes alone)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    batches, lo = [], 0
    while lo < len(order):
        longest = max(1, int(lengths[order[lo]]))
        n = max(1, max_tokens // longest)
        if max_count:
            n = min(n, max_count)
        batches.append(slice(lo, min(lo + n, len(order))))
        lo += n
    return order, batches


class Embedder:
    def __init__(self, spec: ModelSpec, device: str = "auto", batch_size: int = 32, max_batch_tokens: int | None = None,
                 threads: int | None = None):
        self.spec = spec
        self.threads = threads  # torch CPU threads; None: auto at model load (see configure_cpu_threads)
        self._device = None if device == "auto" else device  # resolved on first use: importing torch costs seconds
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.load_seconds = 0.0
        self._model = None

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = pick_device("auto")
        return self._device

    @property
    def model(self):
        """Loaded on first use: a run with nothing new to embed never pays the model load."""
        if self._model is None:
            t = time.perf_counter()
            with _load_lock:  # one load per process even when threads (an MCP server) ask at once
                self._model = _load(model_path(self.spec), self.device, self.spec.max_seq_length)
                if self.threads and self.device == "cpu":
                    configure_cpu_threads(self.threads)
            self.load_seconds = time.perf_counter() - t
        return self._model

    @property
    def batch_tokens(self) -> int:
        if self.max_batch_tokens:
            return self.max_batch_tokens
        return CPU_BATCH_TOKENS if self.device == "cpu" else self.batch_size * self.spec.max_seq_length

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        """Each text's length in the model's word-pieces, special tokens included, capped at its window."""
        tok = self.model.tokenizer
        cap = self.spec.max_seq_length
        enc = tok(list(texts), add_special_tokens=True, truncation=True, max_length=cap,
                  return_attention_mask=False, return_token_type_ids=False)
        return [min(len(ids), cap) for ids in enc["input_ids"]]

    def _encode(self, texts: Sequence[str], prompt: str, progress: Callable[[int], None] | None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.spec.dim), dtype=np.float32)
        full = [prompt + t for t in texts]
        if self.threads and self.device == "cpu":
            configure_cpu_threads(self.threads)
        order, batches = token_batches(self.token_lengths(full), self.batch_tokens)
        out = np.empty((len(texts), self.spec.dim), dtype=np.float32)
        pending = 0
        tick = max(1, self.batch_size * 8)  # progress about every 256 texts, as before
        for sl in batches:
            idx = order[sl]
            vecs = self.model.encode(
                [full[i] for i in idx],
                batch_size=len(idx),  # one forward pass: the batch is already sized by tokens
                normalize_embeddings=self.spec.normalize,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            out[idx] = vecs.astype(np.float32, copy=False)
            pending += len(idx)
            if progress and pending >= tick:
                progress(pending)
                pending = 0
        if progress and pending:
            progress(pending)
        return out

    def encode_documents(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        return self._encode(texts, self.spec.document_prompt, progress)

    def encode_reference_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Query vectors from this (reference) model, whatever RAG_QUERY_ENCODER says."""
        return self._encode(texts, self.spec.query_prompt, None)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Query vectors from the encoder query_encoder picks for this model (int8 ONNX for the default one)."""
        from rag_assets.embedding.query_encoder import encode_queries

        return encode_queries(self.spec, list(texts), device=self._device or "auto")
