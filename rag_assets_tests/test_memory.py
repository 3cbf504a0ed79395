"""Agent memory and notes: the durable log, recall straight from the log, forget, expiry, the Dagster asset
(merging near-duplicates), the sensor, the MCP tools over stdio (and --read-only) and the CLI commands.

The first tests need no model; the rest (marked slow) share one indexed source and one MCP server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from contextlib import asynccontextmanager

import numpy as np
import pytest
from dagster import SkipReason, build_sensor_context, instance_for_test, materialize

from rag_assets.cli import main
from rag_assets.memory import api
from rag_assets.memory.index import cluster, memory_collection_name, snapshot_meta
from rag_assets.memory.log import Event, append, log_path, read_events
from rag_assets.memory.records import Memory, MemoryInputError, replay
from rag_assets_tests.conftest import Env, index_run_writing
from rag_assets_tests.gitrepo import make_repo
from rag_assets_tests.test_pipeline import MATH, SHOP

NEAR_A = "The user prefers tabs over spaces in Go files"
NEAR_B = "User prefers tabs instead of spaces in Go files"  # cosine 0.99 with NEAR_A (MiniLM)


# ------------------------------------------------------------------ the log (no model)
WRITER = textwrap.dedent("""
    import os, sys, time
    from rag_assets.memory.log import Event, append
    data_dir, name, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    while not os.path.exists(go):
        time.sleep(0.001)
    for i in range(n):
        append(data_dir, "demo", Event("remember", f"{name}-{i}", time.time(),
                                       {"text": f"{name} says {i} " + "x" * (i % 200), "seq": i}))
""")


def test_log_two_writer_processes_lose_nothing(tmp_path):
    n, go = 400, tmp_path / "go"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), name, str(n), str(go)])
               for name in ("a", "b")]
    time.sleep(0.5)
    go.touch()  # both start appending at once
    assert [w.wait(120) for w in writers] == [0, 0]
    read = read_events(tmp_path, "demo")
    assert read.skipped == 0 and len(read.events) == 2 * n
    assert read.end == log_path(tmp_path, "demo").stat().st_size
    for name in ("a", "b"):  # every event whole, each writer's in its own order
        seqs = [e.data["seq"] for e in read.events if e.id.startswith(name)]
        assert seqs == list(range(n))
    ids = [e.id[0] for e in read.events]
    assert 0 < sum(a != b for a, b in zip(ids, ids[1:]))  # they really interleaved


def test_log_skips_a_torn_line_and_the_next_write_stays_whole(tmp_path):
    append(tmp_path, "demo", Event("remember", "m-000000000001", 1.0, {"text": "one"}))
    with open(log_path(tmp_path, "demo"), "ab") as f:
        f.write(b'{"v":1,"op":"remember","id":"m-0000')  # a crash mid-write
    assert [e.id for e in read_events(tmp_path, "demo").events] == ["m-000000000001"]
    append(tmp_path, "demo", Event("remember", "m-000000000002", 2.0, {"text": "two"}))
    read = read_events(tmp_path, "demo")
    assert [e.id for e in read.events] == ["m-000000000001", "m-000000000002"] and read.skipped == 1
    tail = read_events(tmp_path, "demo", start=read.events[1].offset)  # reading from an offset
    assert [e.id for e in tail.events] == ["m-000000000002"] and tail.end == read.end


def _ev(op, i, ts, **data):
    return Event(op, i, ts, data)


def test_replay_forgets_supersedes_and_expires():
    events = [
        _ev("remember", "m-1", 1, text="a", category="project"),
        _ev("remember", "m-2", 2, text="b", category="session", expires_at=10.0),
        _ev("note", "n-1", 3, title="Style", body="tabs"),
        _ev("note", "n-2", 4, title="style ", body="spaces"),  # same title: replaces n-1
        _ev("remember", "m-3", 5, text="c", category="preference"),
        _ev("forget", "m-3", 6, ids=["m-3"]),
    ]
    early, late = replay(events, now=9.0), replay(events, now=10.0)
    assert list(early.memories) == ["m-1", "m-2"] and late.expired == 1 and list(late.memories) == ["m-1"]
    assert list(early.notes) == ["n-2"] and early.notes["n-2"].supersedes == ["n-1"]
    assert early.forgotten == {"m-3"} and early.known_ids == {"m-1", "m-2", "m-3", "n-1", "n-2"}


def test_cluster_merges_repeats_and_near_duplicates_but_not_numbers_or_negations():
    texts = ["Run the tests with make test", "run the tests with `make test`.",  # a repeat
             "The server listens on port 8080", "The server listens on port 8081",  # numbers differ
             "Use black for formatting", "Do not use black for formatting",  # a negation
             "Prefer small commits", "Prefer small commits"]
    cats = ["project"] * 6 + ["project", "preference"]  # one category only
    mems = [Memory(f"m-{i}", t, c, [], 0.5, float(i), None) for i, (t, c) in enumerate(zip(texts, cats))]
    # 0 and 1 far apart (the repeat merges by text); each other pair identical (only the rules split them).
    vecs = np.eye(8, dtype=np.float32)[[0, 1, 2, 2, 3, 3, 4, 4]]
    assert cluster(mems, vecs) == [[0, 1], [2], [3], [4], [5], [6], [7]]
    mems[3].text = "The server listens on port 8080!"
    mems[5].text = "Use black for formatting, always"
    assert cluster(mems, vecs) == [[0, 1], [2, 3], [4, 5], [6], [7]]  # agreeing near-duplicates merge


def test_bad_input_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAG_SOURCES", str(tmp_path / "sources.yaml"))
    (tmp_path / "sources.yaml").write_text("sources:\n  - {name: demo, kind: git, url: .}\n")
    for call, expected in [
        (lambda: api.remember("x", "demo", category="forever"), "category must be one of preference, project, session"),
        (lambda: api.remember("  ", "demo"), "empty text"),
        (lambda: api.remember("x", "demo", importance=2), "importance must be between 0 and 1"),
        (lambda: api.remember("x", "demo", tags=["Bad Tag!"]), "tag 'bad tag!'"),
        (lambda: api.remember("x", "Demo!"), "source must match"),
        (lambda: api.forget("m-123"), "not a memory or note id"),
        (lambda: api.forget("m-0123456789ab", "demo"), "no memory or note m-0123456789ab in source 'demo'"),
        (lambda: api.note("t", "", "demo"), "empty body"),
    ]:
        with pytest.raises(MemoryInputError, match=expected.replace("(", r"\(")) as e:
            call()
        assert "\n" not in str(e.value)
    with pytest.raises(Exception, match="no source named 'nope' \\(known: demo\\)"):
        api.remember("x", "nope")
    assert main(["memory", "add", "x", "--source", "demo", "--importance", "7"]) == 2
    assert capsys.readouterr().err.strip() == "rag-assets memory: error: importance must be between 0 and 1 (got 7.0)"


def test_cli_memory_and_notes_without_the_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAG_SOURCES", str(tmp_path / "sources.yaml"))
    (tmp_path / "sources.yaml").write_text("sources:\n  - {name: demo, kind: git, url: .}\n")
    assert main(["memory", "add", "Deploys go through staging", "--source", "demo", "--tags", "deploy,ops",
                 "--json"]) == 0
    added = json.loads(capsys.readouterr().out)
    assert added["id"].startswith("m-") and added["tags"] == ["deploy", "ops"] and added["expires"] is None
    assert main(["memory", "add", "Debugging the sensor today", "--source", "demo", "--category", "session"]) == 0
    assert "(session, expires " in capsys.readouterr().out
    assert main(["memory", "list", "--source", "demo", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [m["category"] for m in listed] == ["session", "project"] and listed[1]["id"] == added["id"]
    assert main(["memory", "forget", added["id"]]) == 0  # no --source: found by id
    assert capsys.readouterr().out.strip() == f"forgot {added['id']} in demo"
    assert main(["memory", "forget", added["id"]]) == 2
    assert f"{added['id']} is already forgotten" in capsys.readouterr().err
    assert main(["notes", "add", "Errors are one line", "--source", "demo", "--body", "Use `one_line(e)`."]) == 0
    first = capsys.readouterr().out.split()[1]
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("Use `one_line(e)`; RAG_DEBUG=1 for tracebacks.\n"))
    assert main(["notes", "add", "Errors are one line", "--source", "demo", "--body", "-", "--tags", "errors"]) == 0
    assert f"(replaces {first})" in capsys.readouterr().out
    assert main(["notes", "list", "--source", "demo"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("# Notes: demo") and md.count("## Errors are one line") == 1 and "RAG_DEBUG=1" in md
    assert main(["memory", "list", "--source", "demo", "--category", "project"]) == 0
    assert capsys.readouterr().out.strip() == "no memories"


# ------------------------------------------------------------------ with the model, the store and Dagster
@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("memory")
    (root / "dagster_home").mkdir()
    with pytest.MonkeyPatch.context() as mp, instance_for_test(temp_dir=str(root / "dagster_home")) as instance:
        mp.setenv("RAG_DATA_DIR", str(root / "data"))
        mp.setenv("RAG_SOURCES", str(root / "sources.yaml"))
        mp.setenv("DAGSTER_HOME", instance.root_directory)
        for var in ("QDRANT_URL", "RAG_MODEL", "RAG_LLM_BASE_URL", "RAG_DAGSTER_URL", "RAG_MCP_TOKEN",
                    "RAG_MEMORY_SESSION_TTL"):
            mp.delenv(var, raising=False)
        env = Env(root, instance)
        make_repo(root / "demo", {"mathutil.py": MATH, "shop.py": SHOP})
        # demo is indexed (search_code and ask with notes); the others hold memories only.
        env.write_sources(*({"name": n, "kind": "git", "url": str(root / "demo"), "branch": "main"}
                            for n in ("demo", "mem-a", "mem-b", "mem-c", "mem-d", "mem-e")))
        env.index("demo")
        yield env


def _materialize(world, source: str):
    from rag_assets.defs.memory import memory_collection
    from rag_assets.defs.resources import RagSettings, VectorStoreResource

    if source not in world.instance.get_dynamic_partitions("source"):
        world.instance.add_dynamic_partitions("source", [source])
    result = materialize([memory_collection], partition_key=source, instance=world.instance,
                         resources={"store": VectorStoreResource(), "settings": RagSettings()})
    assert result.success
    [mat] = result.asset_materializations_for_node("memory_collection")
    return {k: v.value for k, v in mat.metadata.items()}


def _sensor(world, source: str):
    """The sensor's run requests for `source` (one tick)."""
    from rag_assets.defs.memory import memory_sensor
    from rag_assets.defs.resources import RagSettings

    out = memory_sensor(build_sensor_context(instance=world.instance, resources={"settings": RagSettings()}))
    return [] if isinstance(out, SkipReason) else [r for r in out if r.partition_key == source]


@pytest.mark.slow
def test_remember_then_recall_at_once(world):
    from rag_assets.memory.recall import recall

    m = api.remember("Run the whole suite with make test; pytest -m 'not slow' for the quick loop", "mem-a",
                     tags=["testing"], importance=0.9)
    api.remember("The user prefers short commit messages", "mem-a", category="preference")
    hits = recall("how do I run the tests?", "mem-a", k=2)
    top = hits[0]
    assert top.id == m["id"] and not top.indexed and top.count == 1 and top.tags == ["testing"]
    assert 0.2 < top.similarity < 1 and top.score == pytest.approx(top.similarity * 1.08, abs=1e-3)
    d = top.to_dict()
    assert d["age"].endswith("s") and 0 <= d["age_s"] < 60 and d["citation"].startswith(f"memory {m['id']} (project, ")
    assert hits[1].score < top.score
    assert [h.id for h in recall("tests", "mem-a", category="preference")] == [hits[1].id]
    assert [h.id for h in recall("tests", "mem-a", tags=["testing", "other"])] == [m["id"]]


@pytest.mark.slow
def test_forget_removes_from_recall(world):
    from rag_assets.memory.recall import recall

    keep = api.remember("CI runs on GitHub Actions", "mem-b")
    gone = api.remember("CI runs on Jenkins", "mem-b")
    again = api.remember("CI runs on  jenkins.", "mem-b")  # a repeat: recall shows them as one, count 2
    hits = {h.id: h for h in recall("which CI", "mem-b")}
    assert set(hits) == {keep["id"], gone["id"]} and hits[gone["id"]].count == 2
    assert api.forget(gone["id"], "mem-b")["forgotten"] == [gone["id"], again["id"]]
    assert [h.id for h in recall("which CI", "mem-b")] == [keep["id"]]


@pytest.mark.slow
def test_session_memories_expire(world, monkeypatch):
    from rag_assets.memory.recall import recall

    monkeypatch.setenv("RAG_MEMORY_SESSION_TTL", "1.5")
    s = api.remember("Currently bisecting the flaky sensor test", "mem-c", category="session")
    p = api.remember("The sensor test is flaky under load", "mem-c", category="project")
    assert s["expires"] is not None and p["expires"] is None
    assert {h.id for h in recall("flaky sensor test", "mem-c")} == {s["id"], p["id"]}
    time.sleep(2)
    assert [h.id for h in recall("flaky sensor test", "mem-c")] == [p["id"]]
    assert [m.id for m in api.list_memories("mem-c")] == [p["id"]]
    meta = _materialize(world, "mem-c")  # the asset drops it too
    assert meta["expired"] == 1 and meta["memory_points"] == 1


@pytest.mark.slow
def test_asset_merges_near_duplicates_and_recall_merges_index_and_log(world):
    from rag_assets.memory.recall import recall

    a = api.remember(NEAR_A, "mem-d", category="preference", tags=["go"])
    b = api.remember(NEAR_B, "mem-d", category="preference", tags=["style"], importance=0.8)
    other = api.remember("Release notes live in CHANGES.md", "mem-d")
    n = api.note("Errors are one line", "Every error is one line on stderr; RAG_DEBUG=1 shows tracebacks.",
                 "mem-d", tags=["errors"])
    world.instance.add_dynamic_partitions("source", ["mem-d"])
    assert [r.partition_key for r in _sensor(world, "mem-d")] == ["mem-d"]  # never built: requested
    meta = _materialize(world, "mem-d")
    assert (meta["live_memories"], meta["memory_points"], meta["merged"], meta["notes"]) == (3, 2, 1, 1)
    assert meta["collection"] == memory_collection_name("mem-d", "minilm-l6") and meta["embedded"] == 4
    with world.store() as s:
        points = {p["id"]: p for _, p, _ in s.scroll(meta["collection"])}
    merged = points[a["id"]]
    assert merged["count"] == 2 and merged["ids"] == [a["id"], b["id"]] and merged["text"] == NEAR_B
    assert merged["tags"] == ["go", "style"] and merged["importance"] == 0.8 and set(points) == {
        a["id"], other["id"], n["id"]}
    assert _sensor(world, "mem-d") == []  # current: nothing to request

    hits = recall("tabs or spaces in Go?", "mem-d", k=3)
    assert hits[0].id == a["id"] and hits[0].count == 2 and hits[0].indexed and hits[0].kind == "memory"
    assert n["id"] not in {h.id for h in hits}  # notes are not memories

    c = api.remember("Use gofmt before every commit of Go code", "mem-d", category="preference")
    [req] = _sensor(world, "mem-d")  # the log grew: the sensor asks for a run
    assert req.partition_key == "mem-d" and req.run_key.startswith("memory:mem-d:")
    hits = recall("Go formatting and indentation", "mem-d", k=3)
    assert {h.id: h.indexed for h in hits}[c["id"]] is False and a["id"] in {h.id for h in hits}

    assert api.forget(b["id"])["forgotten"] == [b["id"], a["id"]]  # merged: forgotten together, at once
    assert a["id"] not in {h.id for h in recall("tabs or spaces in Go?", "mem-d", k=5)}
    meta = _materialize(world, "mem-d")
    assert (meta["memory_points"], meta["deleted"], meta["embedded"], meta["reused"]) == (2, 1, 1, 2)
    assert snapshot_meta(world.data_dir, "mem-d")["log_offset"] == log_path(world.data_dir, "mem-d").stat().st_size
    assert [h.id for h in recall("tabs or spaces in Go?", "mem-d", k=5)][0] == c["id"]

    # An index run writing the memory collection: recall answers from the published state, same answer.
    with index_run_writing(world.data_dir, meta["collection"]):
        busy = recall("gofmt", "mem-d", k=1)
    assert busy[0].id == c["id"] and busy[0].indexed


# ------------------------------------------------------------------ MCP over stdio, CLI search
@asynccontextmanager
async def _session(transport):
    from mcp import ClientSession

    async with transport as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@pytest.fixture(scope="module")
def mcp_clients(world):
    from anyio.from_thread import start_blocking_portal
    from mcp import StdioServerParameters, stdio_client

    from rag_assets_tests.test_mcp import Client

    server = [sys.executable, "-m", "rag_assets.mcp_server"]
    rw = StdioServerParameters(command=server[0], args=server[1:], env=dict(os.environ))
    ro = StdioServerParameters(command=server[0], args=[*server[1:], "--read-only"], env=dict(os.environ))
    with open(world.root / "mcp.log", "w") as log, start_blocking_portal() as portal, \
            portal.wrap_async_context_manager(_session(stdio_client(rw, errlog=log))) as s1, \
            portal.wrap_async_context_manager(_session(stdio_client(ro, errlog=log))) as s2:
        yield Client(portal, s1), Client(portal, s2)


@pytest.mark.slow
def test_mcp_memory_tools_over_stdio(mcp_clients, world):
    rw, _ = mcp_clients
    tools = rw.tools()
    assert {"remember", "recall", "forget", "note", "list_notes"} <= set(tools)
    assert tools["remember"].input_schema["properties"]["category"]["enum"] == ["preference", "project", "session"]
    m = rw.ok("remember", text="Money amounts are Decimal, never float", source="demo", tags=["money"],
              importance=1)
    assert m["id"].startswith("m-") and m["category"] == "project"
    [hit] = rw.ok("recall", query="how are prices represented?", source="demo", k=1)["result"]
    assert hit["id"] == m["id"] and hit["indexed"] is False and hit["age"].endswith("s") and hit["score"] > 0.2
    n = rw.ok("note", title="Cart totals", body="`ShoppingCart.total` sums item prices; keep it exact.",
              source="demo", tags=["money"])
    res = rw.call("list_notes", source="demo")
    assert not res.is_error and "## Cart totals" in res.content[0].text
    assert [x["id"] for x in res.structured_content["notes"]] == [n["id"]]

    hits = rw.ok("search_code", query="total price of the cart", source="demo", k=3, include_notes=True)["result"]
    notes = [h for h in hits if h["kind"] == "note"]
    assert len(hits) == 4 and notes and notes[0]["path"] == f"notes/{n['id']}.md"
    assert notes[0]["symbol"] == "Cart totals" and notes[0]["citation"].startswith(f"notes/{n['id']}.md:1-3 @ 20")
    plain = rw.ok("search_code", query="total price of the cart", source="demo", k=3)["result"]
    assert len(plain) == 3 and all(h["kind"] != "note" for h in plain)
    out = rw.ok("ask", question="How is the cart total computed?", source="demo", budget=600, include_notes=True)
    assert out["citations"][0].startswith(f"notes/{n['id']}.md:1-") and "keep it exact" in out["context"]

    assert rw.ok("forget", id=m["id"])["forgotten"] == [m["id"]]
    assert rw.ok("recall", query="how are prices represented?", source="demo")["result"] == []
    assert "is already forgotten" in rw.error("forget", id=m["id"])
    assert "category must be one of" in rw.error("remember", text="x", source="demo", category="forever")
    assert "no source named 'nope'" in rw.error("recall", query="x", source="nope")


@pytest.mark.slow
def test_mcp_read_only_serves_no_write_tools(mcp_clients):
    _, ro = mcp_clients
    assert set(ro.tools()) == {"search_code", "ask", "list_sources", "recall", "list_notes"}
    assert ro.call("remember", text="x", source="demo").is_error  # not there at all
    assert isinstance(ro.ok("recall", query="anything", source="demo")["result"], list)


@pytest.mark.slow
def test_cli_memory_search(world, capsys):
    assert main(["memory", "add", "Benchmarks print figures; tests never time anything", "--source", "mem-e"]) == 0
    mid = capsys.readouterr().out.split()[1]
    assert main(["memory", "search", "are tests timed?", "--source", "mem-e", "--json"]) == 0
    [hit] = json.loads(capsys.readouterr().out)
    assert hit["id"] == mid and {"age", "score", "similarity", "citation", "count"} <= set(hit)
    assert main(["memory", "search", "are tests timed?", "--source", "mem-e"]) == 0
    out = capsys.readouterr().out
    assert f"1. {mid}  project" in out and "(new)" in out and "score=" in out
    assert main(["memory", "search", "x", "--source", "mem-e", "--k", "0"]) == 2
    assert "k must be between 1 and 50" in capsys.readouterr().err


# ------------------------------------------------------------------ the answer cache
@pytest.mark.slow
def test_answer_cache_reuses_an_answer_only_for_the_same_question_and_context(world, monkeypatch):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from rag_assets.service.ask import ask

    calls = []

    class FakeLLM(BaseHTTPRequestHandler):
        def do_POST(self):
            calls.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            body = json.dumps({"choices": [{"message": {"content": f"answer {len(calls)}"}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    llm = ThreadingHTTPServer(("127.0.0.1", 0), FakeLLM)
    threading.Thread(target=llm.serve_forever, daemon=True).start()
    monkeypatch.setenv("RAG_LLM_BASE_URL", f"http://127.0.0.1:{llm.server_port}/v1")
    try:
        q = "How is the fibonacci number computed?"
        first = ask(q, "demo", 400)
        again = ask(f"  {q} ", "demo", 400)  # spacing aside the same question, the same context
        assert (first.answer, first.cached, again.answer, again.cached) == ("answer 1", False, "answer 1", True)
        assert again.to_dict()["cached"] is True and len(calls) == 1
        other = ask(q, "demo", 200)  # another budget cuts another context: a new answer
        assert other.context.text != first.context.text and (other.answer, other.cached) == ("answer 2", False)
        api.note("Fibonacci", "`fibonacci(n)` iterates; never make it recursive.", "demo")
        noted = ask(q, "demo", 400, include_notes=True)  # a note joins the context: a new answer
        assert noted.context.blocks[0].path.startswith("notes/") and noted.answer == "answer 3"
        monkeypatch.setenv("RAG_ANSWER_CACHE", "0")
        assert ask(q, "demo", 400).answer == "answer 4" and len(calls) == 4
    finally:
        llm.shutdown()
