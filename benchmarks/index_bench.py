"""Index a real third-party repo through the real pipeline and compare with raw sentence-transformers.

Prints files/s, chunks/s, embedded texts/s, upsert points/s, the ratio of the pipeline's cold index
time to raw `encode` of the same texts (same model, batch size, process), one-file reindex time, and
search p50/p95 over 200 queries at 20,000 points. All figures come from one run on this machine.

    python benchmarks/index_bench.py [--spec click==8.1.7] [--engine edge|local]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import yaml  # noqa: E402
from _corpus import commit_all, sdist_repo  # noqa: E402


def _meta(instance, asset: str) -> dict:
    from dagster import AssetKey

    rec = instance.fetch_materializations(AssetKey(asset), limit=1).records[0]
    return {k: v.value for k, v in rec.asset_materialization.metadata.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", default="click==8.1.7")
    ap.add_argument("--engine", default="edge")
    ap.add_argument("--points", type=int, default=20_000)
    args = ap.parse_args()

    from dagster import instance_for_test

    from rag_assets.embedding.embedder import Embedder
    from rag_assets.contract import collection_name, embedding_text
    from rag_assets.embedding.models import get_model
    from rag_assets.service.runs import index_source
    from rag_assets.store import open_store

    src_repo = sdist_repo(args.spec)
    work = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    repo = work / "repo"
    os.system(f"git clone -q {src_repo} {repo}")
    os.environ.update(RAG_DATA_DIR=str(work / "data"), RAG_SOURCES=str(work / "sources.yaml"),
                      RAG_STORE_ENGINE=args.engine)
    (work / "sources.yaml").write_text(yaml.safe_dump({"sources": [{"name": "bench", "kind": "git", "url": str(repo)}]}))
    spec = get_model("minilm-l6")
    emb = Embedder(spec)
    emb.encode_documents(["warm up"])  # model load outside every timing below
    print(f"corpus: {args.spec}  engine: {args.engine}  device: {emb.device}  model load {emb.load_seconds:.1f}s")

    # The texts the pipeline will embed, from a dry chunking pass (not timed).
    from rag_assets.chunking.documents import build_chunks
    from rag_assets.sources.config import get_source
    from rag_assets.sources.readers import FetchContext, reader_for

    source = get_source("bench")
    fetched = reader_for(source).fetch(source, FetchContext(work / "probe"))
    chunks, _, _ = build_chunks(source.name, reader_for(source).documents(fetched.table), None)
    texts = list(dict.fromkeys(embedding_text(p, s, t, g) for p, s, t, g in
                               zip(chunks["path"], chunks["symbol"], chunks["text"], chunks["signature"])))

    def raw_encode() -> float:
        t0 = time.perf_counter()
        emb.encode_documents(texts)
        return time.perf_counter() - t0

    (work / "dh").mkdir()
    with instance_for_test(temp_dir=str(work / "dh")) as instance:
        raw_before = raw_encode()  # bracket the pipeline: the machine's speed drifts
        t0 = time.perf_counter()
        index_source("bench", spec.key, instance=instance)
        cold = time.perf_counter() - t0
        raw = (raw_before + raw_encode()) / 2
        snap, ch, em, col = (_meta(instance, a) for a in ("repo_snapshot", "chunks", "embeddings", "qdrant_collection"))

        print(f"files: {ch['files_indexed']}  chunks: {ch['chunks']}  tokens: {ch['tokens']}")
        print(f"files/s (snapshot+chunk): {ch['files_indexed'] / (snap['seconds'] + ch['seconds']):.0f}")
        print(f"chunks/s (chunking): {ch['chunks'] / ch['seconds']:.0f}")
        print(f"embedded texts/s (pipeline): {em['texts_per_s']}")
        print(f"upsert points/s: {col['upserted'] / max(col['seconds'], 1e-9):.0f}")
        print(f"cold index {cold:.1f}s (snapshot, chunks, embeddings, upsert, alias and all checks) vs raw encode "
              f"{raw:.1f}s (mean of before/after) of the same {len(texts)} texts: "
              f"ratio {cold / raw:.3f}")

        # One-file commit: append a function to the largest Python file.
        target = max(repo.rglob("*.py"), key=lambda p: p.stat().st_size)
        target.write_text(target.read_text() + "\n\ndef bench_added_function():\n    return 'added'\n")
        commit_all(repo, "one-file change")
        t0 = time.perf_counter()
        index_source("bench", spec.key, instance=instance)
        one = time.perf_counter() - t0
        em2, col2 = _meta(instance, "embeddings"), _meta(instance, "qdrant_collection")
        print(f"one-file reindex: {one:.2f}s (embedded {em2['embedded']}, upserted {col2['upserted']}, "
              f"deleted {col2['deleted']})")

    # Search at N points: the real vectors plus jittered copies, in a separate collection, with the
    # same BM25 sparse vectors indexing makes, so dense, sparse and hybrid are all measured.
    from rag_assets.retrieval.answer import assemble
    from rag_assets.contract import embedding_text as _et
    from rag_assets.retrieval.search import Searcher
    from rag_assets.store.sparse import encode_documents, encode_query

    with open_store(work / "data", engine=args.engine) as store:
        name = collection_name("bench", spec.key)
        ids, payloads, vecs = zip(*[(i, p, v) for i, p, v in store.scroll(name, with_vectors=True)])
        base = np.stack(vecs)
        rng = np.random.default_rng(0)
        reps = -(-args.points // len(base))
        big = np.concatenate([base + rng.normal(0, 0.02, base.shape).astype(np.float32) for _ in range(reps)])[: args.points]
        import uuid

        big_ids = [str(uuid.uuid5(uuid.NAMESPACE_OID, str(i))) for i in range(len(big))]
        big_payloads = [dict(payloads[i % len(payloads)]) for i in range(len(big))]
        sparse = encode_documents([_et(p["path"], p.get("symbol", ""), p["text"]) for p in big_payloads])
        store.ensure_collection("bench_big", spec.dim)
        t0 = time.perf_counter()
        store.upsert("bench_big", big_ids, big, big_payloads, sparse=sparse)
        store.finalize("bench_big")
        print(f"upsert+finalize {len(big)} points (dense + sparse): {time.perf_counter() - t0:.1f}s")
        queries = [f"how does {p['symbol'] or p['path']} work" for p in payloads[:200]]
        q = lambda xs, p: float(np.percentile(xs, p))  # noqa: E731
        for mode in ("dense", "sparse", "hybrid"):
            lat, lat_total = [], []
            for text in queries:
                t0 = time.perf_counter()
                v = emb.encode_queries([text])[0] if mode != "sparse" else None
                sv = encode_query(text) if mode != "dense" else None
                t1 = time.perf_counter()
                store.query("bench_big", v, k=10, mode=mode, sparse_vector=sv)
                t2 = time.perf_counter()
                lat.append((t2 - t1) * 1000)
                lat_total.append((t2 - t0) * 1000)
            print(f"search {mode:<6} at {len(big)} points, {len(queries)} queries: store p50/p95 "
                  f"{q(lat, 50):.1f}/{q(lat, 95):.1f} ms; with query encoding p50/p95 "
                  f"{q(lat_total, 50):.1f}/{q(lat_total, 95):.1f} ms")
        # ask: hybrid search for 20 candidates + merge + token budget, on the real (small) collection.
        store.set_alias("bench", name)
        searcher = Searcher(store, "bench")
        lat = []
        for text in queries[:50]:
            t0 = time.perf_counter()
            assemble(text, searcher.search(text, k=20), 4000, 10**6)
            lat.append((time.perf_counter() - t0) * 1000)
        print(f"ask (hybrid k=20 + merge + 4000-token budget) p50/p95 {q(lat, 50):.1f}/{q(lat, 95):.1f} ms")

if __name__ == "__main__":
    main()
