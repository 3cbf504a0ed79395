"""Rough VectorStore timings: upsert rate, finalize, query latency, reopen.

    .venv/bin/python benchmarks/store_bench.py --engine edge --n 20000 --dim 384
    .venv/bin/python benchmarks/store_bench.py --engine local --n 2000   # local mode is slow
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
from rag_assets.store import open_store  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="edge", choices=["edge", "local"])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--quantization", default=None, choices=[None, "int8", "binary"])
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.n, args.dim)).astype(np.float32)
    ids = [str(uuid.uuid4()) for _ in range(args.n)]
    langs = ["python", "markdown", "rst"]
    payloads = [
        {"source": "bench", "path": f"f{i % 100}.py", "language": langs[i % 3], "symbol": f"s{i}", "kind": "function"}
        for i in range(args.n)
    ]
    qs = vectors[rng.integers(0, args.n, args.queries)]

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(tmp, engine=args.engine)
        store.ensure_collection("bench", args.dim, quantization=args.quantization)
        t = time.perf_counter()
        store.upsert("bench", ids, vectors, payloads, batch_size=512)
        up = time.perf_counter() - t
        t = time.perf_counter()
        store.finalize("bench")
        fin = time.perf_counter() - t

        def per_query(**kw) -> float:
            t = time.perf_counter()
            for q in qs:
                store.query("bench", q, k=10, **kw)
            return (time.perf_counter() - t) / len(qs) * 1000

        default_ms = per_query()
        exact_ms = per_query(exact=True)
        filtered_ms = per_query(filter={"language": "python"})
        store.close()
        t = time.perf_counter()
        store = open_store(tmp, engine=args.engine)
        store.count("bench")
        reopen = time.perf_counter() - t
        store.close()

    print(f"engine={args.engine} n={args.n} dim={args.dim} quantization={args.quantization}")
    print(f"upsert   {args.n / up:,.0f} pts/s ({up:.2f} s)")
    print(f"finalize {fin:.2f} s")
    print(f"query    default {default_ms:.2f} ms | exact {exact_ms:.2f} ms | filtered {filtered_ms:.2f} ms (k=10)")
    print(f"reopen   {reopen:.3f} s (open + count)")


if __name__ == "__main__":
    main()
