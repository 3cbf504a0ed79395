"""Searches never wait for an index run: concurrent search_code over streamable HTTP, idle and during a write.

Indexes a real third-party repo (default click==8.1.7), starts the MCP server over streamable HTTP, then:
1. idle:    N concurrent search_code calls, each from its own client session (N agents): errors, p50/p95;
2. writing: the same while another process is in the middle of an index run of that source (it has begun
            writing the collection, deleting every point of its copy, and not published): errors, p50/p95,
            and how many answers equal the answers from before (they must all: the published state);
3. after:   the writer publishes; the next calls must see the new state (here: no hits).

    python benchmarks/concurrent_search_bench.py [--spec click==8.1.7] [--calls 100]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import anyio  # noqa: E402
import httpx  # noqa: E402
import numpy as np  # noqa: E402
from mcp_bench import QUERIES, index_corpus  # noqa: E402

TOKEN = "bench-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def one_call(url: str, query: str, source: str) -> tuple[float, str | None, list]:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120) as client, \
            streamable_http_client(url, http_client=client) as streams, ClientSession(*streams[:2]) as s:
        await s.initialize()
        t = time.perf_counter()
        res = await s.call_tool("search_code", {"query": query, "source": source, "k": 5})
        ms = (time.perf_counter() - t) * 1000
    if res.is_error:
        return ms, res.content[0].text, []
    hits = (res.structured_content or {}).get("result", [])
    return ms, None, [(h["path"], h["start_line"]) for h in hits]


async def burst(url: str, source: str, n: int) -> list[tuple[float, str | None, list]]:
    out: list = [None] * n

    async def run(i: int) -> None:
        try:
            out[i] = await one_call(url, QUERIES[i % len(QUERIES)], source)
        except Exception as e:  # a transport error counts as an error, not a crash of the benchmark
            while isinstance(e, BaseExceptionGroup):
                e = e.exceptions[0]
            out[i] = (float("nan"), f"{type(e).__name__}: {e}", [])

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(run, i)
    return out


def report(label: str, results: list, expected: list | None = None) -> None:
    ms = np.array([r[0] for r in results if r[1] is None])
    errors = [r[1] for r in results if r[1] is not None]
    line = f"{label:8s} calls {len(results):4d} | errors {len(errors):3d}"
    if len(ms):
        line += f" | p50 {np.percentile(ms, 50):7.1f} ms | p95 {np.percentile(ms, 95):7.1f} ms"
    if expected is not None:
        same = sum(r[2] == expected[i % len(expected)] for i, r in enumerate(results))
        line += f" | answers equal to before: {same}/{len(results)}"
    print(line)
    for e in errors[:3]:
        print("   error:", e[:200])


WRITER = """
import sys, time
from rag_assets.store import open_store
s = open_store(sys.argv[1])
name = s.resolve_alias(sys.argv[2])
s.delete(name, sorted(s.ids(name)))  # mid-run: the copy is empty, nothing published
print("writing", flush=True)
sys.stdin.readline()                 # until told to publish
s.finalize(name)
s.close()
print("published", flush=True)
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", default="click==8.1.7")
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--reuse", type=Path, help="the work dir of an earlier run (its index is brought back first)")
    args = ap.parse_args()

    if args.reuse:
        from dagster import DagsterInstance

        from rag_assets.service.runs import index_source

        os.environ.update(RAG_DATA_DIR=str(args.reuse / "data"), RAG_SOURCES=str(args.reuse / "sources.yaml"))
        with DagsterInstance.local_temp() as instance:  # re-upserts from the tables; no re-embedding
            print(index_source("bench", "minilm-l6", instance=instance))
        source = "bench"
    else:
        source = index_corpus(args.spec)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    log = open(Path(os.environ["RAG_DATA_DIR"]).parent / "server.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "rag_assets.mcp_server", "--http", "--port", str(port),
                               "--token", TOKEN], stdout=log, stderr=subprocess.STDOUT)
    writer = None
    try:
        for _ in range(600):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        warm = anyio.run(burst, url, source, len(QUERIES))  # loads the model; also the answers to compare
        expected = [r[2] for r in warm]
        print(f"source: {source}  k: 5  concurrent calls: {args.calls}, each from its own MCP session")
        report("idle", anyio.run(burst, url, source, args.calls), expected)

        writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent(WRITER), os.environ["RAG_DATA_DIR"], source],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert writer.stdout.readline().strip() == "writing"
        report("writing", anyio.run(burst, url, source, args.calls), expected)
        writer.stdin.write("\n")
        writer.stdin.flush()
        assert writer.stdout.readline().strip() == "published"
        after = anyio.run(burst, url, source, 10)
        report("after", after)
        print(f"after the publish: {sum(not r[2] for r in after)}/10 calls see the new (empty) state")
    finally:
        if writer is not None and writer.poll() is None:
            writer.kill()
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
