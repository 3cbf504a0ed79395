"""Retrieval quality and the model migration, on this repository and on a third-party corpus (click).

For each corpus: index with all-MiniLM-L6-v2 then migrate to all-mpnet-base-v2 through the real jobs
(wall time and texts/s per model); recall@1/5/10 and MRR@10 on the golden file for dense, sparse,
hybrid and hybrid + rerank; and recall@10 of quantized (int8, binary; rescored) and HNSW search against
exact search on the same queries (Qdrant Edge, where both are real). One run, one machine.

    python benchmarks/retrieval_bench.py [--corpora rag-assets,click,express,gorilla-mux,serde-json]
        [--skip-mpnet] [--skip-approx] [--baseline-windows] [--query-encoders reference,onnx]

--baseline-windows also indexes each corpus with the old chunker (line windows for every language but
Python, Markdown and reStructuredText) and evaluates it beside the syntax-tree chunker, in the same run.

--query-encoders reference,onnx evaluates the minilm-l6 collections once per query encoder (RAG_QUERY_ENCODER:
the sentence-transformers model, or the int8 ONNX export; documents are the same reference vectors) and
prints recall@10 / MRR@10 side by side, with the cosine between the two encoders' query vectors.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import yaml  # noqa: E402
from _corpus import cargo_repo, gocode_repo, npm_repo, sdist_repo  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "retrieval.json"
CORPORA = {"rag-assets": (lambda: ROOT, ROOT / "evals" / "rag-assets.jsonl"),
           "click": (lambda: sdist_repo("click==8.1.7"), ROOT / "evals" / "click.jsonl"),
           "express": (lambda: npm_repo("express@4.21.2"), ROOT / "evals" / "express.jsonl"),
           "gorilla-mux": (gocode_repo, ROOT / "evals" / "gorilla-mux.jsonl"),
           "serde-json": (cargo_repo, ROOT / "evals" / "serde-json.jsonl")}


def _source(corpus: str, repo: Path, golden: Path) -> dict:
    # The golden files hold the queries verbatim: a corpus that indexes them answers its own test.
    return {"name": corpus, "kind": "git", "url": str(repo), "queries": str(golden), "exclude": ["evals/**"]}


def windows_chunker(path, text, max_tokens=512, language=None):
    """The chunker before syntax trees: Python by AST, Markdown/RST by headings, line windows otherwise."""
    from rag_assets.chunking import Chunk, chunk_file_with_status, language_for
    from rag_assets.chunking.text_chunker import make_counter, split_lines, window_spans

    lang = language or language_for(path)
    if lang in ("python", "markdown", "rst"):
        return chunk_file_with_status(path, text, max_tokens=max_tokens, language=language)
    lines = split_lines(text)
    if not any(line.strip() for line in lines):
        return [], "ok"
    spans = window_spans(lines, max_tokens, make_counter("cl100k_base"), "cl100k_base")
    return [Chunk(path, lang, "text", "", a, b, txt, n) for a, b, txt, n in spans], "ok"


def baseline_windows(corpus: str, repo: Path, golden: Path, queries: list) -> dict:
    """Index with the windows chunker into its own data dir (minilm-l6) and evaluate hybrid search."""
    from unittest import mock

    from dagster import instance_for_test

    from rag_assets.retrieval.evaluate import evaluate
    from rag_assets.retrieval.search import Searcher
    from rag_assets.service.runs import index_source
    from rag_assets.store import open_store

    work = Path(tempfile.mkdtemp(prefix=f"rag-retrieval-{corpus}-windows-"))
    saved = {k: os.environ.get(k) for k in ("RAG_DATA_DIR", "RAG_SOURCES")}
    os.environ.update(RAG_DATA_DIR=str(work / "data"), RAG_SOURCES=str(work / "sources.yaml"))
    (work / "sources.yaml").write_text(yaml.safe_dump({"sources": [_source(corpus, repo, golden)]}))
    (work / "dh").mkdir()
    try:
        with mock.patch("rag_assets.chunking.documents.chunk_file_with_status", windows_chunker), \
                instance_for_test(temp_dir=str(work / "dh")) as instance:
            index_source(corpus, "minilm-l6", instance=instance)
            chunks = _meta(instance, "chunks")["chunks"]
        with open_store(work / "data") as store:
            s = Searcher(store, corpus, model="minilm-l6")
            out = {f"minilm-l6 hybrid{'' if f == 'score' else ' (rrf fusion)'} (windows chunker)":
                   {**evaluate(s, queries, mode="hybrid", fusion=f)["overall"], "chunks": chunks} for f in ("score", "rrf")}
    finally:
        os.environ.update({k: v for k, v in saved.items() if v is not None})
    print(f"[{corpus}] windows chunker: {chunks} chunks", flush=True)
    return out


def _meta(instance, asset: str) -> dict:
    from dagster import AssetKey

    rec = instance.fetch_materializations(AssetKey(asset), limit=1).records[0]
    return {k: v.value for k, v in rec.asset_materialization.metadata.items()}


def approx_recall(store, name: str, dim: int, queries: np.ndarray, quantization: str | None) -> float:
    """Copy the collection's real vectors into a collection with HNSW (+ quantization) really built."""
    ids, vecs = zip(*[(i, v) for i, _, v in store.scroll(name, with_vectors=True)])
    copy = f"bench_{quantization or 'hnsw'}_{uuid.uuid4().hex[:6]}"
    store.ensure_collection(copy, dim, quantization=quantization, indexing_threshold=1, sparse=False)
    store.upsert(copy, list(ids), np.stack(vecs), [{} for _ in ids])
    store.finalize(copy)
    overlap = []
    for q in queries:
        exact = {h.id for h in store.query(copy, q, k=10, exact=True)}
        approx = {h.id for h in store.query(copy, q, k=10, rescore=True)}  # store default oversampling
        overlap.append(len(exact & approx) / len(exact))
    store.delete_collection(copy)
    return float(np.mean(overlap))


@contextlib.contextmanager
def query_encoder(name: str | None):
    """RAG_QUERY_ENCODER=name inside (read at each encode), restored after; None leaves it as it is."""
    saved = os.environ.get("RAG_QUERY_ENCODER")
    if name:
        os.environ["RAG_QUERY_ENCODER"] = name
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("RAG_QUERY_ENCODER", None)
        else:
            os.environ["RAG_QUERY_ENCODER"] = saved


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpora", default="rag-assets,click")
    ap.add_argument("--skip-mpnet", action="store_true")
    ap.add_argument("--skip-approx", action="store_true", help="skip HNSW/quantized vs exact recall")
    ap.add_argument("--baseline-windows", action="store_true", help="also evaluate the line-windows chunker")
    ap.add_argument("--reuse", default="", help="corpus=workdir,...: evaluate stores a previous run built")
    ap.add_argument("--out", default=str(OUT), help=f"results JSON, merged per corpus (default {OUT})")
    ap.add_argument("--query-encoders", default="",
                    help="e.g. reference,onnx: evaluate minilm-l6 once per query encoder (RAG_QUERY_ENCODER)")
    args = ap.parse_args()
    encoders = [e for e in args.query_encoders.split(",") if e]
    reuse = dict(x.split("=", 1) for x in args.reuse.split(",") if x)

    from dagster import instance_for_test

    from rag_assets.embedding.embedder import Embedder
    from rag_assets.retrieval.evaluate import evaluate, load_queries
    from rag_assets.contract import collection_name
    from rag_assets.embedding.models import get_model
    from rag_assets.embedding.query_encoder import encode_queries, onnx_available
    from rag_assets.retrieval.rerank import get_scorer
    from rag_assets.service.runs import index_source
    from rag_assets.retrieval.search import Searcher
    from rag_assets.store import open_store

    results = {}
    for corpus in args.corpora.split(","):
        repo_fn, golden = CORPORA[corpus]
        out_file = Path(args.out)
        previous = json.loads(out_file.read_text()).get(corpus, {}) if corpus in reuse and out_file.exists() else {}
        work = Path(reuse[corpus]) if corpus in reuse else Path(tempfile.mkdtemp(prefix=f"rag-retrieval-{corpus}-"))
        repo = work / "repo"
        if corpus not in reuse:
            subprocess.run(["git", "clone", "-q", str(repo_fn()), str(repo)], check=True)
        if corpus == "rag-assets":  # the golden spans that match the indexed commit
            golden = repo / "evals" / "rag-assets.jsonl"
        os.environ.update(RAG_DATA_DIR=str(work / "data"), RAG_SOURCES=str(work / "sources.yaml"),
                          RAG_RECALL_THRESHOLD="0.0")
        (work / "sources.yaml").write_text(yaml.safe_dump({"sources": [_source(corpus, repo, golden)]}))
        queries = load_queries(golden)
        models = ["minilm-l6"] + ([] if args.skip_mpnet else ["mpnet-base"])
        row: dict = {"queries": len(queries), "models": previous.get("models", {})}
        (work / "dh").mkdir(exist_ok=True)
        with instance_for_test(temp_dir=str(work / "dh")) as instance:
            for m in models if corpus not in reuse else []:
                Embedder(get_model(m)).encode_documents(["warm up"])  # model load outside the timing
                t0 = time.perf_counter()
                index_source(corpus, m, instance=instance)
                wall = time.perf_counter() - t0
                em = _meta(instance, "embeddings")
                row["models"][m] = {"index_wall_s": round(wall, 1), "texts_per_s": em["texts_per_s"],
                                    "chunks": em["chunks"]}
                print(f"[{corpus}] indexed with {m}: {wall:.1f}s, {em['texts_per_s']} texts/s, {em['chunks']} chunks",
                      flush=True)
        with open_store(work / "data") as store:
            evals = {}
            for m in models:
                s = Searcher(store, corpus, model=m)
                for enc in (encoders if encoders and onnx_available(m) else [None]):
                    tag = f" [{enc} queries]" if enc else ""
                    with query_encoder(enc):
                        for mode in ("dense", "sparse", "hybrid"):
                            if mode == "sparse" and (m != "minilm-l6" or enc not in (None, encoders[0])):
                                continue  # identical to minilm's sparse (same BM25 vectors, no query vector)
                            evals[f"{m} {mode}{tag if mode != 'sparse' else ''}"] = evaluate(s, queries, mode=mode)["overall"]
                        evals[f"{m} hybrid (rrf fusion){tag}"] = evaluate(s, queries, mode="hybrid", fusion="rrf")["overall"]
                if encoders and onnx_available(m):
                    texts = [q["query"] for q in queries]
                    vecs = {}
                    for enc in encoders:
                        with query_encoder(enc):
                            vecs[enc] = encode_queries(m, texts)
                    if len(vecs) == 2:
                        a, b = vecs.values()
                        cos = (a * b).sum(axis=1)
                        row["query_encoder_cosine"] = {"min": round(float(cos.min()), 5), "mean": round(float(cos.mean()), 5)}
                        print(f"[{corpus}] {m} query vectors {' vs '.join(vecs)}: cosine min {cos.min():.5f} "
                              f"mean {cos.mean():.5f}", flush=True)
            if "mpnet-base" in models:
                s = Searcher(store, corpus, model="minilm-l6")
                scorer = get_scorer("collection:mpnet-base", store, corpus)
                evals["minilm-l6 hybrid + rerank(mpnet vectors)"] = evaluate(s, queries, mode="hybrid",
                                                                             rerank=scorer)["overall"]
            if args.baseline_windows:
                evals.update(baseline_windows(corpus, repo, golden, queries))
            row["eval"] = evals
            for name, m in evals.items():
                print(f"[{corpus}] {name:<42} R@1 {m['recall@1']:.3f}  R@5 {m['recall@5']:.3f}  "
                      f"R@10 {m['recall@10']:.3f}  MRR@10 {m['mrr@10']:.3f}", flush=True)
            row["approx_vs_exact_recall@10"] = {}
            for m in models if not args.skip_approx else []:
                spec = get_model(m)
                qv = Embedder(spec).encode_queries([q["query"] for q in queries])
                for quant in (None, "int8", "binary"):
                    r = approx_recall(store, collection_name(corpus, m), spec.dim, qv, quant)
                    row["approx_vs_exact_recall@10"][f"{m} {quant or 'hnsw'}"] = round(r, 4)
                    print(f"[{corpus}] {m} {quant or 'hnsw (no quantization)'} vs exact recall@10: {r:.4f}", flush=True)
        results[corpus] = row
    if len(encoders) == 2:
        _side_by_side(results, encoders)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    merged = {**(json.loads(out.read_text()) if out.exists() else {}), **results}
    out.write_text(json.dumps(merged, indent=1))
    print(f"wrote {out}")


def _side_by_side(results: dict, encoders: list[str]) -> None:
    a, b = encoders
    print(f"\nR@10 / MRR@10, minilm-l6 documents, {a} vs {b} query encoder (same run, same collections)")
    print(f"{'golden file':<14} {'mode':<20} {a:>15} {b:>15}  cosine min/mean")
    for corpus, row in results.items():
        cos = row.get("query_encoder_cosine", {})
        for mode in ("dense", "hybrid", "hybrid (rrf fusion)"):
            ra, rb = (row["eval"].get(f"minilm-l6 {mode} [{e} queries]") for e in (a, b))
            if ra and rb:
                print(f"{corpus:<14} {mode:<20} {ra['recall@10']:.3f} / {ra['mrr@10']:.3f}   "
                      f"{rb['recall@10']:.3f} / {rb['mrr@10']:.3f}  {cos.get('min', 0):.4f}/{cos.get('mean', 0):.4f}")


if __name__ == "__main__":
    main()
