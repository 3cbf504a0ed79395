"""Agent memory figures: remember (a durable log append), recall straight from the log, the index build,
and recall through the indexed memory collection (+ a few log entries newer than it).

Generated memories (templated facts over a vocabulary, some repeated, some near-duplicates) in a temp
data dir with the embedded store; the model is loaded once before anything is timed.

    python benchmarks/memory_bench.py [--memories 500] [--tail 10] [--queries 50]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

TOPICS = ["tests", "deploys", "the CLI", "the sensor", "the store", "chunking", "docs", "the MCP server",
          "migrations", "backups", "logging", "errors", "the UI", "benchmarks", "the cache", "releases"]
FACTS = ["{t} run through make", "{t} must stay under {n} seconds", "{t} are owned by team {n}",
         "the user wants {t} explained briefly", "{t} broke on Python 3.{n} once", "{t} use port {n}0",
         "never touch {t} on Fridays", "{t} are documented in section {n} of the README"]


def pct(ms: list[float]) -> str:
    a = np.asarray(ms)
    return f"p50 {np.percentile(a, 50):7.1f} ms | p95 {np.percentile(a, 95):7.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--memories", type=int, default=500)
    ap.add_argument("--tail", type=int, default=10, help="memories written after the index run")
    ap.add_argument("--queries", type=int, default=50)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="memory-bench-"))
    os.environ.update(RAG_DATA_DIR=str(tmp / "data"), RAG_SOURCES=str(tmp / "sources.yaml"))
    for var in ("QDRANT_URL", "RAG_MODEL", "RAG_STORE_ENGINE"):
        os.environ.pop(var, None)
    (tmp / "sources.yaml").write_text("sources:\n  - {name: bench, kind: git, url: .}\n")

    from rag_assets import settings
    from rag_assets.embedding.embedder import Embedder
    from rag_assets.embedding.models import get_model, live_model_key
    from rag_assets.memory import api
    from rag_assets.memory.index import build_memory_index
    from rag_assets.memory.recall import recall
    from rag_assets.store import open_store

    rnd = random.Random(7)
    texts = [rnd.choice(FACTS).format(t=rnd.choice(TOPICS), n=rnd.randint(1, 9)) for _ in range(args.memories)]
    queries = [f"what do we know about {rnd.choice(TOPICS)}?" for _ in range(args.queries)]
    spec = get_model(live_model_key())
    embedder = Embedder(spec)
    embedder.encode_queries(["warm up"])

    t = []
    for i, text in enumerate(texts):
        t0 = time.perf_counter()
        api.remember(text.capitalize() if i % 3 else text, "bench", category=rnd.choice(["project", "preference"]))
        t.append(1000 * (time.perf_counter() - t0))
    print(f"remember ({args.memories}, fsync'd log append)       {pct(t)}")

    t0 = time.perf_counter()
    recall(queries[0], "bench")
    print(f"recall from the log, first call (embeds all {args.memories}): {time.perf_counter() - t0:7.2f} s")
    t = []
    for q in queries:
        t0 = time.perf_counter()
        recall(q, "bench")
        t.append(1000 * (time.perf_counter() - t0))
    print(f"recall from the log, vectors cached in process    {pct(t)}")

    with open_store(settings.current().data_dir) as store:
        t0 = time.perf_counter()
        stats = build_memory_index(store, settings.current().data_dir, "bench", spec, embedder.encode_documents)
        print(f"index build (cold): {time.perf_counter() - t0:.2f} s; {stats.live_memories} memories -> "
              f"{stats.memory_points} points ({stats.merged} merged), {stats.embedded} embedded")
        t0 = time.perf_counter()
        build_memory_index(store, settings.current().data_dir, "bench", spec, embedder.encode_documents)
        print(f"index build (nothing new): {time.perf_counter() - t0:.2f} s")

    for i in range(args.tail):
        api.remember(f"tail fact {i}: {rnd.choice(texts)} (updated)", "bench")
    t = []
    for q in queries:
        t0 = time.perf_counter()
        hits = recall(q, "bench")
        t.append(1000 * (time.perf_counter() - t0))
    assert any(h.indexed for h in hits)
    print(f"recall, index + {args.tail} newer log entries (store opened per call) {pct(t)}")
    t = []
    for q in queries:
        t0 = time.perf_counter()
        embedder.encode_queries([q])
        t.append(1000 * (time.perf_counter() - t0))
    print(f"  of which the query's encoding alone             {pct(t)}")


if __name__ == "__main__":
    sys.exit(main())
