"""Document embedding: token-length batching (order and vectors as unsorted), CPU threads, and the GPU path
(device auto-detection, fp16 on CUDA only) as far as a CPU can test it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rag_assets.embedding import embedder as emb_mod
from rag_assets.embedding.embedder import (
    CPU_BATCH_TOKENS, Embedder, auto_threads, configure_cpu_threads, cpu_threads, free_cpus, pick_device,
    token_batches, use_fp16,
)
from rag_assets.embedding.models import get_model

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ batching by tokens
def test_token_batches_cover_every_text_once_longest_first_within_budget():
    rng = np.random.default_rng(0)
    lengths = list(rng.integers(3, 257, size=500)) + [256] * 20 + [3] * 20
    order, batches = token_batches(lengths, 1024)
    assert sorted(order.tolist()) == list(range(len(lengths)))
    assert [lengths[i] for i in order] == sorted(lengths, reverse=True)
    covered = [i for sl in batches for i in order[sl]]
    assert covered == order.tolist()
    for sl in batches:
        idx = order[sl]
        assert len(idx) * max(lengths[i] for i in idx) <= 1024
    # short texts share big batches, window-length ones small batches
    _, batches = token_batches([8] * 200 + [256] * 8, 1024)
    assert [sl.stop - sl.start for sl in batches] == [4, 4, 128, 72]


def test_token_batches_edge_cases():
    order, batches = token_batches([600, 5, 5], 512)  # longer than the budget: alone
    assert order.tolist() == [0, 1, 2] and [(s.start, s.stop) for s in batches] == [(0, 1), (1, 3)]
    order, batches = token_batches([4, 4, 4, 4], 1000, max_count=3)
    assert [(s.start, s.stop) for s in batches] == [(0, 3), (3, 4)]
    assert token_batches([], 512)[1] == []


# ------------------------------------------------------------------ device, fp16, threads
def test_device_auto_detection(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto") == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device("auto") == "cpu"
    assert pick_device("cpu") == "cpu" and pick_device("cuda:1") == "cuda:1"


def test_embedder_resolves_auto_device_lazily(monkeypatch):
    import torch

    e = Embedder(get_model("minilm-l6"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert e.device == "cuda"
    assert e.batch_tokens == 32 * 256  # GPU: batch_size windows per batch
    cpu = Embedder(get_model("minilm-l6"), device="cpu")
    assert cpu.device == "cpu" and cpu.batch_tokens == CPU_BATCH_TOKENS
    assert Embedder(get_model("minilm-l6"), device="cpu", max_batch_tokens=999).batch_tokens == 999


def test_fp16_on_cuda_only():
    assert use_fp16("cuda") and use_fp16("cuda:0")
    assert not use_fp16("cpu") and not use_fp16("mps")


class FakeST:
    """Stands in for SentenceTransformer: records the device and whether half() was called."""

    instances: list = []

    def __init__(self, path, device=None):
        self.path, self.device, self.halved, self.max_seq_length = path, device, False, None
        FakeST.instances.append(self)

    def half(self):
        self.halved = True
        return self

    def tokenizer(self, texts, **kw):
        return {"input_ids": [list(range(min(len(t.split()) + 2, kw.get("max_length", 512)))) for t in texts]}

    def encode(self, texts, batch_size=32, normalize_embeddings=True, **kw):
        # a vector that depends only on the text (as a real model's does, up to float noise)
        out = np.stack([np.random.default_rng(abs(hash(t)) % 2**32).normal(size=384) for t in texts]).astype(np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture
def fake_st(monkeypatch):
    import sentence_transformers

    FakeST.instances = []
    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", FakeST)
    emb_mod._load.cache_clear()
    yield FakeST
    emb_mod._load.cache_clear()


def test_model_is_halved_on_cuda_and_not_on_cpu(fake_st, monkeypatch):
    import torch

    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    emb_mod._load("/m", "cuda", 256)
    emb_mod._load("/m", "cpu", 256)
    cuda, cpu = fake_st.instances
    assert (cuda.device, cuda.halved, cuda.max_seq_length) == ("cuda", True, 256)
    assert (cpu.device, cpu.halved) == ("cpu", False)


def test_worker_takes_the_cuda_fp16_path_when_torch_sees_a_gpu(fake_st, monkeypatch, tmp_path):
    """The worker end to end on a (faked) CUDA box: device auto -> cuda, model halved, order kept."""
    import torch

    from rag_assets.embedding import worker
    from rag_assets.tables import read_table, write_table

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    texts = [" ".join(["w"] * n) for n in (3, 300, 40, 1, 120, 7)]
    hashes = [f"h{i}" for i in range(len(texts))]
    write_table(tmp_path / "in.parquet", pd.DataFrame({"content_hash": hashes, "text": texts}))
    stats = worker.run(tmp_path / "in.parquet", tmp_path / "out.parquet", "minilm-l6", batch_size=2)
    assert stats["device"] == "cuda" and stats["texts"] == len(texts)
    assert fake_st.instances[-1].device == "cuda" and fake_st.instances[-1].halved
    out = read_table(tmp_path / "out.parquet")
    assert out.df["content_hash"].tolist() == hashes
    np.testing.assert_allclose(out.vectors, FakeST(None).encode(texts), atol=1e-6)  # input order


def test_cpu_threads_follow_affinity_and_cgroup_quota(monkeypatch, tmp_path):
    monkeypatch.setattr(emb_mod.os, "sched_getaffinity", lambda pid: set(range(8)))
    quota = tmp_path / "cpu.max"
    monkeypatch.setattr(emb_mod, "CGROUP_CPU_MAX", quota)
    assert cpu_threads() == 8  # no cgroup file
    quota.write_text("max 100000\n")
    assert cpu_threads() == 8
    quota.write_text("250000 100000\n")  # docker --cpus 2.5
    assert cpu_threads() == 3


def test_auto_threads_use_the_cpus_others_leave_idle(monkeypatch):
    monkeypatch.setattr(emb_mod, "cpu_threads", lambda: 2)
    for idle, want in ((2.0, 2), (1.6, 2), (1.4, 1), (0.7, 1), (0.0, 1)):
        monkeypatch.setattr(emb_mod, "free_cpus", lambda window_s=0.3, idle=idle: idle)
        assert auto_threads() == want, idle
    monkeypatch.setattr(emb_mod, "free_cpus", lambda window_s=0.3: 15.0)  # a big idle host, a 2-CPU quota
    assert auto_threads() == 2


def test_free_cpus_reads_proc_stat_deltas(monkeypatch, tmp_path):
    stat = tmp_path / "stat"
    monkeypatch.setattr(emb_mod, "PROC_STAT", stat)
    samples = iter([(100, 1000), (160, 1100)])  # 60 of 100 jiffies idle over the window

    def write_next(_):
        idle, total = next(samples)
        stat.write_text(f"cpu  {total - idle} 0 0 {idle} 0 0 0 0 0 0\ncpu0 1 0 0 1\ncpu1 1 0 0 1\nintr 1\n")

    write_next(None)
    monkeypatch.setattr(emb_mod.time, "sleep", write_next)
    assert free_cpus() == pytest.approx(0.6 * 2)
    monkeypatch.setattr(emb_mod, "PROC_STAT", tmp_path / "missing")  # no /proc: assume the machine is ours
    monkeypatch.setattr(emb_mod, "cpu_threads", lambda: 4)
    assert free_cpus() == 4.0


def test_configure_cpu_threads_explicit_user_and_auto(monkeypatch):
    import torch

    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 64)
    monkeypatch.setattr(emb_mod, "auto_threads", lambda: 2)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    configure_cpu_threads()
    assert calls == [2]
    configure_cpu_threads(3)  # an explicit count (EmbeddingRunner.threads, worker --threads) wins
    assert calls == [2, 3]
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    configure_cpu_threads()
    assert calls == [2, 3]  # the user's environment stands


# ------------------------------------------------------------------ real model, real chunks
def real_chunk_texts(n: int = 48) -> list[str]:
    """Embedding texts of real chunks of this repository (all lengths: one-liners to over the window)."""
    from rag_assets.chunking import chunk_file
    from rag_assets.contract import embedding_text

    files = subprocess.run(["git", "ls-files", "rag_assets", "README.md"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    texts = []
    for f in sorted(files):
        p = ROOT / f
        if p.suffix in (".py", ".md") and p.is_file():
            texts += [embedding_text(c.path, c.symbol, c.text, c.signature) for c in chunk_file(f, p.read_text())]
    rng = np.random.default_rng(1)
    return [texts[i] for i in rng.choice(len(texts), n, replace=False)]


@pytest.mark.slow
def test_token_batched_vectors_equal_unbatched_ones_in_input_order():
    texts = real_chunk_texts() + ["x", "def f(): pass"]
    e = Embedder(get_model("minilm-l6"), device="cpu", max_batch_tokens=1024)
    lengths = e.token_lengths(texts)
    assert max(lengths) == 256 and min(lengths) < 10  # truncated ones and short ones both present
    ticks = []
    got = e.encode_documents(texts, progress=ticks.append)
    assert sum(ticks) == len(texts)
    # one text at a time: no padding, no sorting: the unambiguous reference
    want = np.stack([e.model.encode([t], batch_size=1, normalize_embeddings=True)[0] for t in texts])
    cos = (got * want).sum(axis=1)
    assert cos.min() >= 0.9999, cos.min()
    assert got.dtype == np.float32 and got.shape == (len(texts), 384)
