"""The MCP server through the SDK's own client: stdio and streamable HTTP, tools, errors, auth, busy store.

One indexed source and one server per transport for the whole module (each server loads the
embedding model once); a blocking portal lets plain sync tests drive the async client.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
import pytest

from anyio.from_thread import start_blocking_portal
from dagster import DagsterRunStatus, instance_for_test
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from rag_assets.mcp_server import main, request_index_run
from rag_assets_tests.conftest import Env
from rag_assets_tests.gitrepo import make_repo
from rag_assets_tests.test_pipeline import MATH, SHOP
from rag_assets_tests.conftest import index_run_writing

pytestmark = pytest.mark.slow  # loads the model and/or runs Dagster

TOKEN = "s3cret-token"
SERVER = [sys.executable, "-m", "rag_assets.mcp_server"]


# Filler modules, so the source is much bigger than one answer's context (as real sources are).
FILLER = {
    f"pkg/{topic}.py": "\n\n".join(
        f"def {topic}_{verb}(items: list, limit: int = 10) -> list:\n"
        f'    """{verb.capitalize()} {topic} items up to a limit."""\n'
        f"    out = [i for i in items if i is not None]\n    return sorted(out)[:limit]\n"
        for verb in ("load", "save", "merge", "split", "validate", "render"))
    for topic in ("invoice", "customer", "shipment", "ledger", "report", "catalog")
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, log) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)


@asynccontextmanager
async def _session(transport):
    async with transport as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


class Client:
    """Sync calls into an MCP client session that lives in a portal's event loop."""

    def __init__(self, portal, session):
        self.portal, self.session = portal, session

    def tools(self) -> dict:
        return {t.name: t for t in self.portal.call(self.session.list_tools).tools}

    def call(self, tool: str, **args):
        return self.portal.call(self.session.call_tool, tool, args)

    def ok(self, tool: str, **args):
        res = self.call(tool, **args)
        assert not res.is_error, res.content[0].text
        return res.structured_content

    def error(self, tool: str, **args) -> str:
        res = self.call(tool, **args)
        assert res.is_error, f"{tool}({args}) did not fail"
        text = res.content[0].text
        assert "\n" not in text  # one line for the agent to read
        return text


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("mcp")
    (root / "dagster_home").mkdir()
    with pytest.MonkeyPatch.context() as mp, instance_for_test(temp_dir=str(root / "dagster_home")) as instance:
        mp.setenv("RAG_DATA_DIR", str(root / "data"))
        mp.setenv("RAG_SOURCES", str(root / "sources.yaml"))
        mp.setenv("DAGSTER_HOME", instance.root_directory)  # the servers queue runs here
        for var in ("QDRANT_URL", "RAG_MODEL", "RAG_LLM_BASE_URL", "RAG_DAGSTER_URL", "RAG_MCP_TOKEN"):
            mp.delenv(var, raising=False)
        env = Env(root, instance)
        make_repo(root / "demo", {"mathutil.py": MATH, "shop.py": SHOP, **FILLER})
        env.write_sources({"name": "demo", "kind": "git", "url": str(root / "demo"), "branch": "main"})
        env.index("demo")
        yield env


@pytest.fixture(scope="module")
def stdio(world):
    params = StdioServerParameters(command=SERVER[0], args=SERVER[1:], env=dict(os.environ))
    with open(world.root / "stdio-server.log", "w") as log, start_blocking_portal() as portal, \
            portal.wrap_async_context_manager(_session(stdio_client(params, errlog=log))) as session:
        yield Client(portal, session)


class FakeLLM(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint that says whether the fibonacci span reached it."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        seen = "mathutil.py:11-16" in body["messages"][-1]["content"]
        reply = json.dumps({"choices": [{"message": {"content": f"fake answer; context had span: {seen}"}}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(reply.encode())

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def http_url(world):
    llm = ThreadingHTTPServer(("127.0.0.1", 0), FakeLLM)
    threading.Thread(target=llm.serve_forever, daemon=True).start()
    port = _free_port()
    env = {**os.environ, "RAG_LLM_BASE_URL": f"http://127.0.0.1:{llm.server_port}/v1", "RAG_LLM_MODEL": "fake-1"}
    with open(world.root / "http-server.log", "w") as log:
        server = subprocess.Popen([*SERVER, "--http", "--port", str(port), "--token", TOKEN], env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, server, world.root / "http-server.log")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.terminate()
        server.wait(10)
        llm.shutdown()


# ------------------------------------------------------------------ stdio
def test_tools_are_listed_with_their_schemas(stdio):
    tools = stdio.tools()
    assert set(tools) == {"search_code", "ask", "list_sources", "reindex",
                          "remember", "recall", "forget", "note", "list_notes"}  # memory: test_memory.py
    props = tools["search_code"].input_schema["properties"]
    assert set(props) == {"query", "source", "k", "mode", "language", "path_glob", "kind", "rerank", "include_notes"}
    assert props["mode"]["enum"] == ["dense", "sparse", "hybrid"] and props["k"]["maximum"] == 100
    assert tools["search_code"].input_schema["required"] == ["query", "source"]
    assert tools["ask"].output_schema["properties"]["tokens_used"]["type"] == "integer"


def test_search_code_cites_fibonacci(stdio):
    hits = stdio.ok("search_code", query="fibonacci number", source="demo", k=3)["result"]
    top = hits[0]
    assert (top["path"], top["start_line"], top["end_line"], top["symbol"]) == ("mathutil.py", 11, 16, "fibonacci")
    assert top["citation"] == f"mathutil.py:11-16 @ {top['commit'][:12]}" and "x, y = y, x + y" in top["text"]
    assert len(hits) == 3
    only_shop = stdio.ok("search_code", query="fibonacci", source="demo", path_glob="shop*", mode="dense")["result"]
    assert only_shop and {h["path"] for h in only_shop} == {"shop.py"}
    methods = stdio.ok("search_code", query="cart", source="demo", kind="method")["result"]
    assert {h["kind"] for h in methods} == {"method"}


def test_search_code_reranks_and_says_what_answered(stdio, world):
    """rerank takes the CLI's --rerank values; every hit names the collection, model and commit that answered."""
    plain = stdio.ok("search_code", query="fibonacci number", source="demo", k=3)["result"]
    reranked = stdio.ok("search_code", query="fibonacci number", source="demo", k=3,
                        rerank="collection:minilm-l6")["result"]
    assert reranked[0]["symbol"] == "fibonacci" and len(reranked) == 3
    assert [h["score"] for h in reranked] != [h["score"] for h in plain]  # fused scores, not the first stage's
    for h in plain + reranked:
        assert (h["source"], h["collection"], h["model"]) == ("demo", "demo__minilm-l6", "minilm-l6")
        assert len(h["commit"]) == 40
    assert stdio.error("search_code", query="x", source="demo", rerank="collection:mpnet-base").endswith(
        "rerank: rerank needs source 'demo' indexed with 'mpnet-base' (run: rag-assets index demo --model mpnet-base)")
    assert "rerank: unknown embedding model 'nope'" in stdio.error("search_code", query="x", source="demo",
                                                                  rerank="nope")


def test_ask_returns_cited_context_smaller_than_the_source(stdio):
    res = stdio.call("ask", question="How is the fibonacci number computed?", source="demo", budget=400)
    assert not res.is_error, res.content[0].text
    out = res.structured_content
    assert "### mathutil.py:11-16" in out["context"]
    assert any(c.startswith("mathutil.py:11-16") for c in out["citations"])
    assert 0 < out["tokens_used"] <= 400 and out["tokens_used"] < out["source_tokens"]
    assert out["model"] is None and out["answer"] is None
    text = res.content[0].text  # what the agent reads
    assert "no model is configured" in text and f"whole source: {out['source_tokens']} tokens" in text


def test_list_sources_shows_live_model_and_freshness(stdio, world):
    [row] = stdio.ok("list_sources")["result"]
    assert row["source"] == "demo" and row["live_model"] == "minilm-l6" and row["state"] == "fresh"
    assert row["points"] == row["chunks"] > 0 and row["indexed_commit"] == row["head_commit"]


@pytest.mark.parametrize("tool, args, expected", [
    ("search_code", {"query": "x", "source": "nope"}, "unknown source 'nope' (known sources: demo)"),
    ("search_code", {"query": "x", "source": "demo", "k": 0}, "k must be between 1 and 100"),
    ("search_code", {"query": "x", "source": "demo", "k": 101}, "k must be between 1 and 100"),
    ("search_code", {"query": "  ", "source": "demo"}, "empty query"),
    ("search_code", {"query": "x", "source": "demo", "mode": "fuzzy"}, "mode must be one of dense, sparse, hybrid"),
    ("ask", {"question": "x", "source": "demo", "budget": 5}, "budget must be between 200 and 100000"),
    ("ask", {"question": "x", "source": "nope"}, "unknown source 'nope' (known sources: demo)"),
    ("reindex", {"source": "nope"}, "no source named 'nope' (known: demo)"),
])
def test_bad_arguments_are_one_line_tool_errors(stdio, tool, args, expected):
    assert expected in stdio.error(tool, **args)


def test_search_never_waits_for_an_index_run_and_sees_each_publish(stdio, world):
    before = stdio.ok("search_code", query="fibonacci", source="demo", k=3)["result"]
    with world.store() as s:  # the server keeps its reader open: others still open and write the store
        assert s.count("demo") > 0
    with index_run_writing(world.data_dir, "demo__minilm-l6"):  # its unpublished copy has 0 points
        assert stdio.ok("search_code", query="fibonacci", source="demo", k=3)["result"] == before
    with world.store() as s:  # a run publishes: the long-lived server moves to it on its next call
        gone = [(pid, payload, vec) for pid, payload, vec in s.scroll("demo", with_vectors=True)
                if payload["symbol"] == "fibonacci"]
        s.delete("demo__minilm-l6", [pid for pid, _, _ in gone])
    after = stdio.ok("search_code", query="fibonacci", source="demo", k=3)["result"]
    assert "fibonacci" in {h["symbol"] for h in before} and "fibonacci" not in {h["symbol"] for h in after}
    with world.store() as s:  # put it back for the other tests of this module
        from rag_assets.contract import embedding_text
        from rag_assets.store.sparse import encode_documents
        texts = [embedding_text(p["path"], p["symbol"], p["text"], p.get("signature") or "") for _, p, _ in gone]
        s.upsert("demo__minilm-l6", [g[0] for g in gone], np.stack([g[2] for g in gone]), [g[1] for g in gone],
                 sparse=encode_documents(texts))
    assert stdio.ok("search_code", query="fibonacci", source="demo", k=3)["result"] == before


def test_reindex_queues_a_run_for_the_daemon(stdio, world):
    out = stdio.ok("reindex", source="demo")
    assert (out["job"], out["partition"], out["status"]) == ("snapshot_and_chunk", "demo", "QUEUED")
    run = world.instance.get_run_by_id(out["run_id"])
    assert run.job_name == "snapshot_and_chunk" and run.tags["dagster/partition"] == "demo"
    assert run.status == DagsterRunStatus.QUEUED  # queued, not executed by the server
    assert run.remote_job_origin.location_name == "rag_assets"


def test_reindex_through_the_webserver_when_configured(world, monkeypatch):
    port, log = _free_port(), world.root / "webserver.log"
    workspace = Path(__file__).resolve().parents[1] / "workspace.yaml"
    with open(log, "w") as out:
        web = subprocess.Popen([str(Path(sys.executable).with_name("dagster-webserver")), "-w", str(workspace),
                                "-h", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, web, log)
        monkeypatch.setenv("RAG_DAGSTER_URL", f"http://127.0.0.1:{port}/")
        out = request_index_run("demo")
        assert out["status"] == "QUEUED" and out["submitted_to"] == f"Dagster webserver http://127.0.0.1:{port}"
        run = world.instance.get_run_by_id(out["run_id"])
        assert run.job_name == "snapshot_and_chunk" and run.tags["dagster/partition"] == "demo"
    finally:
        web.terminate()
        web.wait(20)


# ------------------------------------------------------------------ HTTP
def test_http_requires_the_bearer_token(http_url):
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    headers = {"Accept": "application/json, text/event-stream"}
    assert httpx.post(http_url, json=init, headers=headers).status_code == 401
    wrong = httpx.post(http_url, json=init, headers={**headers, "Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Bearer")
    assert httpx.post(http_url, json=init, headers={**headers, "Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_http_client_with_token_searches_and_asks_the_configured_model(http_url):
    client = create_mcp_http_client(headers={"Authorization": f"Bearer {TOKEN}"})
    with start_blocking_portal() as portal, \
            portal.wrap_async_context_manager(_session(streamable_http_client(http_url, http_client=client))) as s:
        c = Client(portal, s)
        assert c.ok("search_code", query="fibonacci number", source="demo", k=1)["result"][0]["start_line"] == 11
        out = c.ok("ask", question="How is the fibonacci number computed?", source="demo")
        assert out["model"] == "fake-1" and out["answer"] == "fake answer; context had span: True"
        portal.call(client.aclose)


def test_non_loopback_bind_without_token_is_refused(capsys):
    assert main(["--http", "--host", "0.0.0.0", "--port", str(_free_port())]) == 2
    err = capsys.readouterr().err
    assert "refusing to serve on 0.0.0.0 without a bearer token" in err and len(err.strip().splitlines()) == 1
