"""/healthz, /readyz and /metrics on the MCP HTTP server, started as a real subprocess with a bearer token."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest
from anyio.from_thread import start_blocking_portal
from dagster import instance_for_test
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from prometheus_client.parser import text_string_to_metric_families

from rag_assets_tests.conftest import Env, index_run_writing
from rag_assets_tests.gitrepo import commit, make_repo
from rag_assets_tests.test_mcp import Client, _free_port, _session, _wait_for_port
from rag_assets_tests.test_pipeline import MATH, SHOP

pytestmark = pytest.mark.slow  # loads the model, runs Dagster

TOKEN = "metrics-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """demo indexed, then a commit that is snapshotted and chunked but not yet embedded: the live index lags
    its head by one commit, and the mirror knows both."""
    from rag_assets.defs.jobs import SNAPSHOT_JOB
    from rag_assets.service.runs import _execute

    root = tmp_path_factory.mktemp("health")
    (root / "dagster_home").mkdir()
    with pytest.MonkeyPatch.context() as mp, instance_for_test(temp_dir=str(root / "dagster_home")) as instance:
        mp.setenv("RAG_DATA_DIR", str(root / "data"))
        mp.setenv("RAG_SOURCES", str(root / "sources.yaml"))
        mp.setenv("DAGSTER_HOME", instance.root_directory)
        for var in ("QDRANT_URL", "RAG_MODEL", "RAG_LLM_BASE_URL", "RAG_DAGSTER_URL", "RAG_MCP_TOKEN"):
            mp.delenv(var, raising=False)
        env = Env(root, instance)
        repo = make_repo(root / "demo", {"mathutil.py": MATH, "shop.py": SHOP})
        env.write_sources({"name": "demo", "kind": "git", "url": str(root / "demo")})
        env.index("demo")
        env.indexed = repo.head.commit.hexsha
        env.head = commit(repo, {"extra.py": "def extra():\n    return 1\n"}, "more")
        _execute(SNAPSHOT_JOB, "demo", instance, False)
        yield env


@pytest.fixture(scope="module")
def base(world):
    port = _free_port()
    log = world.root / "server.log"
    with open(log, "w") as out:
        server = subprocess.Popen([sys.executable, "-m", "rag_assets.mcp_server", "--http", "--port", str(port),
                                   "--token", TOKEN], env=dict(os.environ), stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, server, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


def _metrics(base) -> dict[tuple[str, tuple], float]:
    resp = httpx.get(f"{base}/metrics", headers=AUTH, timeout=30)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(resp.text) for s in family.samples}


def test_healthz_needs_no_token(base):
    resp = httpx.get(f"{base}/healthz")
    assert resp.status_code == 200 and resp.json() == {"status": "ok"}
    assert httpx.post(f"{base}/healthz").status_code == 405
    assert httpx.get(f"{base}/mcp").status_code == 401  # the MCP endpoint itself still needs the token


def test_readyz_reports_store_aliases_and_lag(base, world):
    resp = httpx.get(f"{base}/readyz", timeout=30)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "ready" and body["problems"] == [] and body["store"]["ok"]
    assert body["aliases"] == {"demo": {"collection": "demo__minilm-l6", "ok": True, "points": 6}}
    lag = body["sources"]["demo"]
    assert lag["state"] == "stale (new commits)" and lag["stale"] is True and lag["commits_behind"] == 1
    assert (lag["indexed_commit"], lag["head_commit"]) == (world.indexed, world.head)


def test_metrics_need_the_token_and_count_tool_calls(base):
    assert httpx.get(f"{base}/metrics").status_code == 401
    assert httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    before = _metrics(base)
    assert before[("rag_store_up", ())] == 1.0
    assert before[("rag_collection_points", (("collection", "demo__minilm-l6"),))] == 6.0
    assert before[("rag_index_stale", (("source", "demo"),))] == 1.0
    assert before[("rag_index_commits_behind", (("source", "demo"),))] == 1.0
    assert before[("rag_source_failed_runs", (("source", "demo"),))] == 0.0

    client = create_mcp_http_client(headers=AUTH)
    with start_blocking_portal() as portal, \
            portal.wrap_async_context_manager(_session(streamable_http_client(f"{base}/mcp", http_client=client))) as s:
        c = Client(portal, s)
        for _ in range(2):
            assert c.ok("search_code", query="fibonacci number", source="demo", k=1)["result"][0]["start_line"] == 11
        assert "unknown source 'nope'" in c.error("search_code", query="x", source="nope")
        c.ok("ask", question="How is the fibonacci number computed?", source="demo", budget=400)
        portal.call(client.aclose)

    m = _metrics(base)
    search = (("source", "demo"), ("tool", "search_code"))
    assert m[("rag_tool_calls_total", (("outcome", "ok"), *search))] == 2.0
    assert m[("rag_tool_calls_total", (("outcome", "error"), ("source", "other"), ("tool", "search_code")))] == 1.0
    assert m[("rag_tool_errors_total", (("kind", "bad_request"), ("tool", "search_code")))] == 1.0
    assert m[("rag_tool_latency_seconds_count", search)] == 2.0
    assert 0 < m[("rag_tool_latency_seconds_sum", search)] < 60
    assert m[("rag_tool_latency_seconds_bucket", (("le", "+Inf"), *search))] == 2.0
    assert m[("rag_tool_calls_total", (("outcome", "ok"), ("source", "demo"), ("tool", "ask")))] == 1.0


def test_readyz_stays_ready_during_an_index_run_and_is_503_when_an_alias_is_broken(base, world):
    with index_run_writing(world.data_dir, "demo__minilm-l6"):  # searches never wait for it
        resp = httpx.get(f"{base}/readyz", timeout=30)
        assert resp.status_code == 200, resp.text
        assert resp.json()["aliases"]["demo"]["points"] == 6  # the published state, not the run's copy
        assert _metrics(base)[("rag_store_up", ())] == 1.0

    aliases = world.data_dir / "qdrant_edge" / "aliases.json"
    saved = aliases.read_text()
    aliases.write_text(json.dumps({"demo": "demo__minilm-l6", "gone": "gone__minilm-l6"}))
    try:
        resp = httpx.get(f"{base}/readyz", timeout=30)
        assert resp.status_code == 503 and resp.json()["problems"] == ["alias gone -> gone__minilm-l6: collection missing"]
        aliases.write_text("{damaged")
        problems = httpx.get(f"{base}/readyz", timeout=30).json()["problems"]
        assert len(problems) == 1 and str(aliases) in problems[0] and "not valid JSON" in problems[0]
    finally:
        aliases.write_text(saved)
    assert httpx.get(f"{base}/readyz", timeout=30).status_code == 200
