"""MCP round-trip latency of search_code over stdio, beside the same search in process.

Indexes a real third-party repo (default click==8.1.7) into a temp dir, starts the MCP server over
stdio with the SDK's client, warms it up, then times 50 search_code calls (p50/p95/mean). For
comparison it times the same searches in process, opening the store per call (what the server does)
and with the store held open, so the MCP + JSON share and the per-call store open are visible.

    python benchmarks/mcp_bench.py [--spec click==8.1.7] [--calls 50] [--mode hybrid]
    python benchmarks/mcp_bench.py --source NAME   # an already indexed source of the current setup
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import anyio  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402
from _corpus import sdist_repo  # noqa: E402

QUERIES = [
    "parse command line options", "echo text to the terminal with colors", "prompt the user for a password",
    "show a progress bar", "group of subcommands", "option default from an environment variable",
    "validate a file path argument", "shell completion", "invoke a command in tests with CliRunner",
    "ask for confirmation before continuing",
]


def pct(ms: list[float]) -> str:
    a = np.asarray(ms)
    return f"p50 {np.percentile(a, 50):7.2f} ms | p95 {np.percentile(a, 95):7.2f} ms | mean {a.mean():7.2f} ms"


def index_corpus(spec: str) -> str:
    from dagster import instance_for_test

    from rag_assets.service.runs import index_source

    work = Path(tempfile.mkdtemp(prefix="rag-mcp-bench-"))
    os.environ.update(RAG_DATA_DIR=str(work / "data"), RAG_SOURCES=str(work / "sources.yaml"))
    os.environ.pop("QDRANT_URL", None)
    (work / "sources.yaml").write_text(yaml.safe_dump(
        {"sources": [{"name": "bench", "kind": "git", "url": str(sdist_repo(spec))}]}))
    (work / "dh").mkdir()
    t0 = time.perf_counter()
    with instance_for_test(temp_dir=str(work / "dh")) as instance:
        print(index_source("bench", "minilm-l6", instance=instance))
    print(f"indexed {spec} in {time.perf_counter() - t0:.1f}s (not part of the figures below)")
    return "bench"


async def mcp_latencies(source: str, calls: int, warmup: int, mode: str) -> tuple[list[float], float, int]:
    from mcp import ClientSession, StdioServerParameters, stdio_client

    params = StdioServerParameters(command=sys.executable, args=["-m", "rag_assets.mcp_server"], env=dict(os.environ))
    t0 = time.perf_counter()
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        startup = time.perf_counter() - t0
        args = {"source": source, "k": 10, "mode": mode}
        for q in QUERIES[:warmup]:  # the first call loads the model
            res = await session.call_tool("search_code", {"query": q, **args})
            assert not res.is_error, res.content[0].text
        out, size = [], 0
        for i in range(calls):
            t = time.perf_counter()
            res = await session.call_tool("search_code", {"query": QUERIES[i % len(QUERIES)], **args})
            out.append((time.perf_counter() - t) * 1000)
            size += sum(len(c.text) for c in res.content)
    return out, startup, size // calls


def in_process_latencies(source: str, calls: int, mode: str) -> tuple[list[float], list[float]]:
    from rag_assets.defs.resources import VectorStoreResource
    from rag_assets.retrieval.search import Searcher

    with VectorStoreResource().open() as store:
        searcher = Searcher(store, source)
        searcher.search("warm up", mode=mode)
        held = []
        for i in range(calls):
            t = time.perf_counter()
            searcher.search(QUERIES[i % len(QUERIES)], k=10, mode=mode)
            held.append((time.perf_counter() - t) * 1000)
    per_call = []
    for i in range(calls):
        t = time.perf_counter()
        with VectorStoreResource().open() as store:
            Searcher(store, source).search(QUERIES[i % len(QUERIES)], k=10, mode=mode)
        per_call.append((time.perf_counter() - t) * 1000)
    return per_call, held


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", default="click==8.1.7")
    ap.add_argument("--source", help="benchmark this already indexed source instead of indexing --spec")
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--mode", default="hybrid", choices=["hybrid", "dense", "sparse"])
    args = ap.parse_args()

    source = args.source or index_corpus(args.spec)
    mcp, startup, size = anyio.run(mcp_latencies, source, args.calls, args.warmup, args.mode)
    per_call, held = in_process_latencies(source, args.calls, args.mode)
    print(f"source: {source}  mode: {args.mode}  k: 10  calls: {args.calls} after {args.warmup} warm-up")
    print(f"server start + initialize over stdio: {startup:.2f}s; mean response {size} chars")
    print(f"MCP search_code round trip (stdio): {pct(mcp)}")
    print(f"in process, store opened per call:  {pct(per_call)}")
    print(f"in process, store held open:        {pct(held)}")


if __name__ == "__main__":
    main()
