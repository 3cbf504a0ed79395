"""Document embedding in process, before vs after, one run, on real chunk texts.

    .venv/bin/python benchmarks/embed_bench.py [--n 400] [--reps 3] [--budgets 2048,4096,8192] [--threads 1,2]

Texts: the embedding texts (`path :: symbol` header + chunk, contract.embedding_text) of the real chunks of
this repository and of the benchmark corpora already built under benchmarks/_corpus.py's cache (click,
express, gorilla-mux, serde_json), sampled with a fixed seed, so their word-piece lengths follow a real
index (median ~150, a quarter over MiniLM's 256 window).

- before: texts sorted by characters, slices of 256, sentence-transformers' encode with batch_size 32
  (the embedder as it was);
- after: Embedder.encode_documents: sorted by real word-piece length, batches of CPU_BATCH_TOKENS padded
  tokens, torch threads = embedder.auto_threads() (the CPUs other processes leave idle); when that differs
  from torch's default (all CPUs), the token batching alone with the old thread count too. Other budgets
  and thread counts with --budgets / --threads.
Variants are interleaved rep by rep (they share the machine's noise); texts/s is reported as the median and
the best rep, with process CPU seconds per text, and the padded tokens each batching computes (no noise).
Checks: output in input order, cosine >= 0.9999 against encoding each text alone (no padding, no sorting).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402


def corpus_repos() -> list[Path]:
    """This repository + the benchmark corpora already in the cache (none is downloaded here)."""
    from _corpus import CACHE

    repos = [ROOT]
    for name in ("click-8.1.7", "express-4.21.2", "gorilla-mux", "serde_json-debian"):
        if (CACHE / name / ".git").exists():
            repos.append(CACHE / name)
    return repos


def real_texts(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    from rag_assets.chunking import chunk_file
    from rag_assets.contract import embedding_text

    texts, used = [], []
    for repo in corpus_repos():
        files = subprocess.run(["git", "ls-files"], cwd=repo, capture_output=True, text=True, check=True).stdout.split()
        for f in files:
            p = repo / f
            try:
                if not p.is_file() or p.stat().st_size > 1_000_000:
                    continue
                text = p.read_text()
            except (UnicodeDecodeError, OSError):
                continue
            texts += [embedding_text(c.path, c.symbol, c.text, c.signature) for c in chunk_file(f, text)]
        used.append(repo.name)
    rng = np.random.default_rng(seed)
    return [texts[i] for i in rng.choice(len(texts), min(n, len(texts)), replace=False)], used


def encode_before(model, texts: list[str], normalize: bool, batch_size: int = 32) -> np.ndarray:
    """The embedder before: sorted by characters, slices of 8 batches, sentence-transformers batching."""
    order = np.argsort([len(t) for t in texts])[::-1]
    out = np.empty((len(texts), len(model.encode(["x"])[0])), dtype=np.float32)
    step = batch_size * 8
    for lo in range(0, len(texts), step):
        idx = order[lo:lo + step]
        out[idx] = model.encode([texts[i] for i in idx], batch_size=batch_size, normalize_embeddings=normalize,
                                convert_to_numpy=True, show_progress_bar=False)
    return out


def padded_before(lengths: np.ndarray, texts: list[str], batch_size: int = 32) -> int:
    order = np.argsort([len(t) for t in texts])[::-1]
    total = 0
    for lo in range(0, len(texts), batch_size * 8):
        sub = sorted(order[lo:lo + batch_size * 8], key=lambda i: -len(texts[i]))  # as sentence-transformers sorts
        for b in range(0, len(sub), batch_size):
            part = sub[b:b + batch_size]
            total += len(part) * max(lengths[i] for i in part)
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--model", default="minilm-l6")
    ap.add_argument("--budgets", default="", help="extra token budgets to try, e.g. 1024,2048,8192")
    ap.add_argument("--threads", default="", help="torch thread counts to try for 'after', e.g. 1,2")
    ap.add_argument("--no-single", action="store_true", help="skip the one-text-at-a-time reference check")
    args = ap.parse_args()

    import torch

    from rag_assets.embedding.embedder import (
        CPU_BATCH_TOKENS, Embedder, auto_threads, cpu_threads, free_cpus, token_batches,
    )
    from rag_assets.embedding.models import get_model

    texts, used = real_texts(args.n)
    spec = get_model(args.model)
    idle = free_cpus(1.0)  # what the others leave idle now (we are not encoding yet)
    auto = auto_threads()
    emb = Embedder(spec, device="cpu")
    model = emb.model  # loaded outside the timings
    torch_default = cpu_threads()  # what torch used before: every CPU
    lengths = np.array(emb.token_lengths(texts))
    real = int(lengths.sum())

    base = "before (chars, batch 32)"
    default = f"after (tokens {CPU_BATCH_TOKENS}, auto threads)"
    variants = {base: (lambda: encode_before(model, texts, spec.normalize), torch_default)}
    if auto != torch_default:  # the batching alone, threads as before
        variants[f"tokens {CPU_BATCH_TOKENS}, {torch_default} threads"] = (lambda: emb.encode_documents(texts), torch_default)
    variants[default] = (lambda: emb.encode_documents(texts), auto)
    budgets = {CPU_BATCH_TOKENS: default}
    for b in [int(b) for b in args.budgets.split(",") if b and int(b) != CPU_BATCH_TOKENS]:
        e = Embedder(spec, device="cpu", max_batch_tokens=b)
        budgets[b] = f"tokens {b}, auto threads"
        variants[budgets[b]] = (lambda e=e: e.encode_documents(texts), auto)
    for th in [int(t) for t in args.threads.split(",") if t and int(t) not in (auto, torch_default)]:
        variants[f"tokens {CPU_BATCH_TOKENS}, {th} threads"] = (lambda: emb.encode_documents(texts), th)

    pads = {base: padded_before(lengths, texts)}
    for b, name in budgets.items():
        order, batches = token_batches(lengths, b)
        pads[name] = sum((sl.stop - sl.start) * int(lengths[order[sl.start]]) for sl in batches)
    if f"tokens {CPU_BATCH_TOKENS}, {torch_default} threads" in variants:
        pads[f"tokens {CPU_BATCH_TOKENS}, {torch_default} threads"] = pads[default]
    for k in variants:
        if k.startswith(f"tokens {CPU_BATCH_TOKENS},"):
            pads[k] = pads[default]

    encode_before(model, texts[:16], spec.normalize)  # warm up both paths
    emb.encode_documents(texts[:16])
    walls: dict[str, list[float]] = {k: [] for k in variants}
    cpus: dict[str, list[float]] = {k: [] for k in variants}
    vecs: dict[str, np.ndarray] = {}
    for rep in range(args.reps):
        for name, (fn, threads) in variants.items():
            torch.set_num_threads(threads)
            w, c = time.perf_counter(), time.process_time()
            vecs[name] = fn()
            walls[name].append(time.perf_counter() - w)
            cpus[name].append(time.process_time() - c)
        print(f"rep {rep + 1}: " + "  ".join(f"[{k}] {len(texts) / walls[k][-1]:.1f}/s" for k in variants),
              flush=True)

    print(f"\n{len(texts)} real chunk texts from {', '.join(used)}; word-pieces (capped at {spec.max_seq_length}) "
          f"p10/p50/p90 {np.percentile(lengths, 10):.0f}/{np.percentile(lengths, 50):.0f}/"
          f"{np.percentile(lengths, 90):.0f}, {np.mean(lengths == spec.max_seq_length):.0%} at the window; "
          f"model {spec.key}; {os.cpu_count()} CPUs, {idle:.1f} idle at start -> auto threads {auto}; "
          f"load {os.getloadavg()[0]:.1f}")
    med = {k: len(texts) / np.median(v) for k, v in walls.items()}
    print(f"{'variant':<36} {'texts/s median':>14} {'best':>7} {'vs before':>9} {'CPU ms/text':>11} {'padded/real':>11}")
    for k in variants:
        pad = f"{pads[k] / real:.3f}" if k in pads else "-"
        print(f"{k:<36} {med[k]:>14.1f} {len(texts) / min(walls[k]):>7.1f} {med[k] / med[base]:>8.2f}x "
              f"{np.median(cpus[k]) / len(texts) * 1e3:>11.1f} {pad:>11}")

    after = default
    cos_ba = (vecs[after] * vecs[base]).sum(axis=1)
    print(f"after vs before, same input order: cosine min {cos_ba.min():.6f}")
    if not args.no_single:
        single = np.stack([model.encode([t], batch_size=1, normalize_embeddings=spec.normalize)[0] for t in texts])
        for k in (base, after):
            c = (vecs[k] * single).sum(axis=1)
            print(f"{k} vs one text at a time (unsorted, unpadded): cosine min {c.min():.6f} mean {c.mean():.7f}")


if __name__ == "__main__":
    main()
