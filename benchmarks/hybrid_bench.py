"""Query latency of dense / sparse / hybrid retrieval on synthetic code-like chunks.

    .venv/bin/python benchmarks/hybrid_bench.py --n 20000 --dim 384
    .venv/bin/python benchmarks/hybrid_bench.py --engine local --n 2000   # local mode is slow

Dense vectors are random; sparse vectors are rag_assets.store.sparse BM25 vectors of texts drawn
from a Zipf-distributed identifier vocabulary (snake_case / CamelCase / dotted), ~100 tokens
per chunk like real 512-token chunks. Queries: 1-3 identifiers of a random chunk + a word.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rag_assets.store.sparse import encode_documents, encode_query  # noqa: E402
from rag_assets.store import open_store  # noqa: E402

WORDS = (
    "load save parse read write get set update delete create build index query search store vector "
    "config path file source chunk token model embed batch cache client server request response "
    "manager handler resource asset sensor schedule job run partition alias collection point payload "
    "filter score limit offset stream buffer context session engine shard segment commit repo tree"
).split()


def make_vocab(rng: np.random.Generator, size: int) -> list[str]:
    vocab = []
    for _ in range(size):
        parts = list(rng.choice(WORDS, size=int(rng.integers(1, 4))))
        style = rng.integers(0, 3)
        if style == 0:
            vocab.append("_".join(parts))
        elif style == 1:
            vocab.append("".join(p.capitalize() for p in parts))
        else:
            vocab.append(".".join(parts))
    return vocab


def make_texts(rng: np.random.Generator, n: int, vocab: list[str]) -> list[str]:
    # Zipf ranks -> a few very common identifiers, a long tail of rare ones.
    ranks = np.minimum(rng.zipf(1.3, size=(n, 40)), len(vocab)) - 1
    return [" ".join(f"{vocab[r]}(x)" for r in row) for row in ranks]


def pct(ms: list[float]) -> str:
    a = np.asarray(ms)
    return f"p50 {np.percentile(a, 50):6.2f} ms | p95 {np.percentile(a, 95):6.2f} ms | mean {a.mean():6.2f} ms"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="edge", choices=["edge", "local"])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--prefetch-k", type=int, default=50)
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    vocab = make_vocab(rng, 5000)
    texts = make_texts(rng, args.n, vocab)
    t = time.perf_counter()
    sparse = encode_documents(texts)
    enc = time.perf_counter() - t
    vectors = rng.standard_normal((args.n, args.dim)).astype(np.float32)
    ids = [str(uuid.UUID(int=int(rng.integers(1, 2**62)) << 64 | i)) for i in range(args.n)]
    langs = ["python", "markdown", "rst"]
    payloads = [{"source": "bench", "language": langs[i % 3], "path": f"f{i % 100}.py"} for i in range(args.n)]

    picks = rng.integers(0, args.n, args.queries)
    q_dense = vectors[picks] + 0.5 * rng.standard_normal((args.queries, args.dim)).astype(np.float32)
    q_text = []
    for j in picks:
        words = texts[j].replace("(x)", "").split()
        q_text.append(" ".join(rng.choice(words, size=int(rng.integers(1, 4)))) + " " + str(rng.choice(WORDS)))
    q_sparse = [encode_query(q) for q in q_text]

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(tmp, engine=args.engine)
        store.ensure_collection("bench", args.dim)
        t = time.perf_counter()
        store.upsert("bench", ids, vectors, payloads, sparse=sparse, batch_size=512)
        up = time.perf_counter() - t
        t = time.perf_counter()
        store.finalize("bench")
        fin = time.perf_counter() - t

        def timed(**kw) -> list[float]:
            out = []
            for qd, qs in zip(q_dense, q_sparse):
                t = time.perf_counter()
                store.query("bench", qd, k=args.k, sparse_vector=qs, prefetch_k=args.prefetch_k, **kw)
                out.append((time.perf_counter() - t) * 1000)
            return out

        timed(mode="hybrid")  # warm-up: page in segments and indexes
        rows = {
            "dense": timed(mode="dense"),
            "sparse": timed(mode="sparse"),
            "hybrid": timed(mode="hybrid"),
            "hybrid+filter": timed(mode="hybrid", filter={"language": "python"}),
        }
        store.close()

    nnz = np.mean([len(s) for s in sparse])
    print(f"engine={args.engine} n={args.n} dim={args.dim} k={args.k} prefetch_k={args.prefetch_k}")
    print(f"encode   {args.n / enc:,.0f} docs/s, {nnz:.0f} nonzeros/doc")
    print(f"upsert   {args.n / up:,.0f} pts/s ({up:.2f} s), finalize {fin:.2f} s")
    for mode, ms in rows.items():
        print(f"{mode:14s} {pct(ms)}")


if __name__ == "__main__":
    main()
