"""Defects of issue 12, part 6, each reproduced: failing `index`/`alias` flooding stderr with Dagster's logs
(and a busy store said as the engine's raw lock error), a source with no indexable files, `eval` scoring 0
on query paths the source lacks, dropping a source removed from sources.yaml, unvalidated MCP arguments,
out-of-range ports, a killed run holding the store's pool slot forever, and unknown sources and models."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
from anyio.from_thread import start_blocking_portal
from mcp import StdioServerParameters, stdio_client

from rag_assets.cli import main
from rag_assets_tests.conftest import index_run_writing
from rag_assets_tests.gitrepo import commit, make_repo
from rag_assets_tests.test_mcp import Client, _session
from rag_assets_tests.test_pipeline import MATH, SHOP

RAG_ASSETS = str(Path(sys.executable).with_name("rag-assets"))
ROOT = Path(__file__).resolve().parents[1]


def _err_lines(capfd) -> list[str]:
    return [ln for ln in capfd.readouterr().err.splitlines() if ln.strip()]


def _use_instance(env, monkeypatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", env.instance.root_directory)  # the CLI's DagsterInstance.get()


# ------------------------------------------------------------------ 1, 2: a failing run is one line
@pytest.mark.slow  # runs Dagster jobs
def test_failing_index_and_alias_print_one_line_naming_source_cause_and_run(env, tmp_path, monkeypatch, capfd):
    """Before: 91 lines on stderr (Dagster's ERROR records with tracebacks, per step and for the run);
    a source with no indexable files: 26 lines ending in `step chunks_chunks_are_sane: chunks: chunks_are_sane`."""
    make_repo(tmp_path / "repo", {"a.py": "x = 1\n", "logo.png": b"\x89PNG\r\n\x1a\n\x00binary"})
    env.write_sources(
        {"name": "demo", "kind": "git", "url": str(tmp_path / "repo"), "branch": "nope"},
        {"name": "globs", "kind": "git", "url": str(tmp_path / "repo"), "include": ["**/*.rs"]},
        {"name": "skipped", "kind": "git", "url": str(tmp_path / "repo"), "include": ["*.png"]},
    )
    _use_instance(env, monkeypatch)

    assert main(["index", "demo"]) == 1
    [err] = _err_lines(capfd)
    assert err.startswith("rag-assets index: error: run ") and "step repo_snapshot: source 'demo': branch 'nope' " \
        "not found" in err and "available branches: main" in err
    run = env.instance.get_runs(limit=1)[0]
    assert f"full log: run {run.run_id} in the Dagster UI" in err and "SnapshotError" not in err

    # 2. include globs that match nothing, and files that are all skipped: said in terms of the source
    assert main(["index", "globs"]) == 1
    [err] = _err_lines(capfd)
    assert "source 'globs' has no indexable files (2 files, all skipped: not_included 2)" in err, err
    assert "include/exclude globs" in err
    assert main(["index", "skipped"]) == 1
    [err] = _err_lines(capfd)
    assert "source 'skipped' has no indexable files (2 files, all skipped: binary 1, not_included 1)" in err, err

    # alias: the one line too (the collection was never built)
    assert main(["alias", "globs", "minilm-l6"]) == 1
    [err] = _err_lines(capfd)
    assert err.startswith("rag-assets alias: error: run ") and "source 'globs' is not indexed with model " \
        "'minilm-l6'" in err and "full log: run " in err

    # progress lines still show (on stdout), and `sources` records the same one-line cause
    capfd.readouterr()
    assert main(["index", "globs"]) == 1
    out, err = capfd.readouterr()
    assert "globs: " in out and "0 files to index" in out and len(err.strip().splitlines()) == 1
    assert main(["sources", "--offline", "--json"]) == 0
    rows = {r["source"]: r for r in json.loads(capfd.readouterr().out)}
    assert "source 'globs' has no indexable files" in rows["globs"]["failure"]


def test_failure_causes_prefer_the_users_words_and_say_a_busy_store_plainly():
    """The cause is the user's exception that Dagster wrapped, not what it was raised from (a busy store's
    raw lock error from the engine); a busy store is said in plain words however it surfaced."""
    from dagster._utils.error import SerializableErrorInfo

    from rag_assets.service.failures import error_cause

    def err(cls, msg, cause=None):
        return SerializableErrorInfo(message=f"{cls}: {msg}\n", stack=[], cls_name=cls.rsplit(".", 1)[-1], cause=cause)

    raw = err("Exception", "Service internal error: WouldBlock: Resource temporarily unavailable (os error 11)")
    busy = err("rag_assets.store.base.StoreBusyError", "The vector store folder /d/qdrant_edge/demo__m/g1 is locked by "
               "another process (e.g. a running Dagster index run holds it open). Retry when that run finishes.", raw)
    wrapped = err("dagster._core.errors.DagsterExecutionStepExecutionError", 'Error occurred while executing op "x":', busy)
    for error in (wrapped, raw):  # wrapped as StoreBusyError, or the engine's error as is
        cause = error_cause(error)
        assert cause.startswith("store busy: another process is writing the vector store") and "WouldBlock" not in cause
        assert "wait for it to finish, then retry" in cause
    assert "(folder /d/qdrant_edge/demo__m/g1)" in error_cause(wrapped)

    user = err("rag_assets.sources.git.SnapshotError", "source 'demo': cannot reach repository 'x'",
               err("git.exc.GitCommandError", "Cmd('git') failed due to: exit code(128)"))
    assert error_cause(err("dagster.DagsterExecutionStepExecutionError", "op failed", user)) == \
        "source 'demo': cannot reach repository 'x'"


@pytest.mark.slow  # loads the model and runs the index jobs
def test_index_while_another_process_writes_the_store_says_store_busy(env, tmp_path, monkeypatch, capfd):
    """Before: the innermost cause of the step's error: the engine's raw lock error (`... WouldBlock ...`) when
    the store raised StoreBusyError from it, else `rag_assets.store.base.StoreBusyError: collection ...`."""
    repo = make_repo(tmp_path / "demo", {"mathutil.py": MATH, "shop.py": SHOP})
    env.write_sources({"name": "demo", "kind": "git", "url": str(tmp_path / "demo")})
    _use_instance(env, monkeypatch)
    env.index("demo")
    commit(repo, {"extra.py": "def extra():\n    return 1\n"}, "more")
    capfd.readouterr()
    with index_run_writing(env.data_dir, "demo__minilm-l6"):
        assert main(["index", "demo"]) == 1
    [err] = _err_lines(capfd)
    assert "step qdrant_collection: source 'demo': store busy: another process is writing the vector store" in err
    assert "wait for it to finish, then retry" in err and "full log: run " in err


# ------------------------------------------------------------------ 3: eval on paths the source lacks
@pytest.mark.slow  # loads the model and runs the index jobs
def test_eval_warns_on_query_paths_missing_from_the_source_and_fails_when_none_exist(env, tmp_path, monkeypatch, capfd):
    """Before: exit 0, recall 0.000 everywhere and nothing on stderr, for a file written for another repo."""
    make_repo(tmp_path / "demo", {"mathutil.py": MATH, "shop.py": SHOP})
    env.write_sources({"name": "demo", "kind": "git", "url": str(tmp_path / "demo")})
    env.index("demo")

    def queries(name, *paths):
        path = tmp_path / name
        path.write_text("".join(json.dumps({"id": f"q{i}", "query": "fibonacci number", "path": p, "start_line": 1,
                                            "end_line": 20, "kind": "function"}) + "\n" for i, p in enumerate(paths)))
        return str(path)

    capfd.readouterr()
    other = queries("other.jsonl", "src/mathutil.py", "lib/shop.py", "src/cart.py", "src/tax.py")
    assert main(["eval", "--source", "demo", "--queries", other, "--json"]) == 2
    out, err = capfd.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1
    assert "none of the 4 query paths is in source 'demo' (e.g. src/mathutil.py, lib/shop.py, src/cart.py, ...)" in err
    assert "the source has e.g. mathutil.py, shop.py" in err

    some = queries("some.jsonl", "mathutil.py", "src/mathutil.py", "nowhere.py")
    assert main(["eval", "--source", "demo", "--queries", some, "--json"]) == 0
    out, err = capfd.readouterr()
    assert json.loads(out)["overall"]["n"] == 3
    assert err.strip() == (f"rag-assets eval: warning: 2 of 3 queries in {some} name a path that is not in source "
                           "'demo' (e.g. src/mathutil.py, nowhere.py); they count as misses")


# ------------------------------------------------------------------ 4: dropping a removed source
@pytest.mark.slow  # loads the model and runs the index jobs
def test_a_source_removed_from_sources_yaml_is_dropped_as_the_readme_says(env, tmp_path, monkeypatch, capfd):
    """Before: `rag-assets collections --drop gone__minilm-l6` refused (the collection is live: "move the alias
    first: rag-assets alias SOURCE MODEL", which refuses a source not in sources.yaml) and `--drop gone` said
    "no collection named 'gone'": nothing could drop it."""
    from rag_assets.store import open_store
    from rag_assets.tables import Tables

    for name in ("keep", "gone"):
        make_repo(tmp_path / name, {f"{name}.py": MATH})
    entries = {n: {"name": n, "kind": "git", "url": str(tmp_path / n)} for n in ("keep", "gone")}
    env.write_sources(*entries.values())
    _use_instance(env, monkeypatch)
    env.index("keep")
    env.index("gone")
    (env.data_dir / "memory").mkdir(exist_ok=True)
    (env.data_dir / "memory" / "gone.jsonl").write_text("")
    capfd.readouterr()

    assert main(["collections", "--drop", "gone"]) == 2  # still configured: refused, nothing touched
    [err] = _err_lines(capfd)
    assert "'gone' is a source in " in err and "remove it there first, then run: rag-assets collections --drop gone" in err

    env.write_sources(entries["keep"])  # removed from sources.yaml: retired, still searchable
    assert main(["search", "fibonacci", "--source", "gone", "--k", "1"]) == 0
    assert main(["collections", "--drop", "gone__minilm-l6"]) == 2
    assert "drop the whole source with: rag-assets collections --drop gone" in capfd.readouterr().err

    assert main(["collections", "--drop", "gone"]) == 0
    out = capfd.readouterr().out.strip()
    assert out.startswith("dropped source 'gone' (no longer in sources.yaml): 1 collection (gone__minilm-l6: ")
    assert "alias" in out and "git mirror" in out and "partition" in out and "kept its memory log" in out

    with open_store(env.data_dir) as s:
        assert set(s.list_collections()) == {"keep__minilm-l6"} and s.aliases() == {"keep": "keep__minilm-l6"}
    assert not [p for p in (env.data_dir / "tables").rglob("*.parquet") if "gone" in p.name]
    assert Tables(env.data_dir).chunks("keep") is not None
    assert not (env.data_dir / "mirrors" / "gone.git").exists()
    assert env.instance.get_dynamic_partitions("source") == ["keep"]
    assert main(["search", "fibonacci", "--source", "gone"]) == 2
    assert "unknown source 'gone' (known sources: keep)" in capfd.readouterr().err
    assert main(["collections", "--drop", "gone"]) == 2
    assert "no collection or retired source named 'gone'" in capfd.readouterr().err
    assert main(["collections", "--drop", "keep__minilm-l6"]) == 2  # the live one of a configured source
    assert "is live (alias keep); move the alias first" in capfd.readouterr().err


# ------------------------------------------------------------------ 5: MCP argument validation
@pytest.fixture
def mcp_client(env, tmp_path):
    make_repo(tmp_path / "demo", {"a.py": "x = 1\n"})
    env.write_sources({"name": "demo", "kind": "git", "url": str(tmp_path / "demo")})
    params = StdioServerParameters(command=sys.executable, args=["-m", "rag_assets.mcp_server"], env=dict(os.environ))
    with open(tmp_path / "server.log", "w") as log, start_blocking_portal() as portal, \
            portal.wrap_async_context_manager(_session(stdio_client(params, errlog=log))) as session:
        yield Client(portal, session)


def test_mcp_rejects_wrong_types_and_unknown_arguments_in_one_line(mcp_client):
    """Before: `k: true` searched with k=1, `k: "5"` with k=5, and `limt: 3` or `sorce: "x"` were ignored."""
    c = mcp_client
    assert c.error("search_code", query="x", source="demo", k=True) == \
        "search_code: argument 'k': input should be a valid integer (got true)"
    assert "argument 'k': input should be a valid integer (got \"5\")" in c.error("search_code", query="x",
                                                                                  source="demo", k="5")
    assert "argument 'k'" in c.error("search_code", query="x", source="demo", k=2.5)
    assert c.error("search_code", query="x", source="demo", limt=3, sorce="y").startswith(
        "search_code: unknown arguments 'limt', 'sorce' (it takes: query, source, k, mode,")
    assert c.error("list_sources", verbose=True).startswith("list_sources: unknown argument 'verbose'")
    assert "k must be between 1 and 100 (got 0)" in c.error("search_code", query="x", source="demo", k=0)
    assert "budget must be between 200 and 100000" in c.error("ask", question="x", source="demo", budget=5)
    assert "search_code: missing argument 'query'" in c.error("search_code", source="demo")
    assert "argument 'include_notes'" in c.error("search_code", query="x", source="demo", include_notes="yes")
    assert "no source named 'nope'" in c.error("reindex", source="nope")  # valid arguments still reach the tool


# ------------------------------------------------------------------ 6: ports
@pytest.mark.parametrize("port", ["70000", "0", "-1", "65536"])
def test_mcp_port_outside_1_to_65535_is_one_line(port, capsys):
    """Before: `--port 70000` served on port 4464 (70000 - 65536)."""
    assert main(["mcp", "--http", "--port", port]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"rag-assets mcp: error: --port must be between 1 and 65535 (got {port})"


# ------------------------------------------------------------------ 7: killed runs and the pool slot
@pytest.fixture
def pooled(tmp_path, monkeypatch):
    """A DAGSTER_HOME as the CLI makes one (its dagster.yaml limits the store pool to one slot) and two sources."""
    from rag_assets import settings

    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAG_SOURCES", str(tmp_path / "sources.yaml"))
    for var in ("QDRANT_URL", "RAG_MODEL", "RAG_STORE_ENGINE"):
        monkeypatch.delenv(var, raising=False)
    settings.ensure_dagster_home()
    assert "default_limit: 1" in (home / "dagster.yaml").read_text()
    for name in ("a", "b"):
        make_repo(tmp_path / name, {f"{name}.py": MATH})
    (tmp_path / "sources.yaml").write_text(json.dumps({"sources": [
        {"name": n, "kind": "git", "url": str(tmp_path / n)} for n in ("a", "b")]}))
    instance = dg.DagsterInstance.get()
    instance.add_dynamic_partitions("source", ["a", "b"])
    try:
        yield instance
    finally:
        instance.dispose()


_KILLABLE = """
import pathlib, sys, time
import rag_assets.defs.assets as assets

def hold_the_store_step(*args, **kwargs):  # the store step, stopped where a kill -9 hurts most
    pathlib.Path(sys.argv[1]).write_text("in the store step")
    time.sleep(600)

assets.sync_collection = hold_the_store_step
from rag_assets.cli import main
sys.exit(main(["index", "a"]))
"""


def _slots(instance, pool="qdrant_store"):
    info = instance.event_log_storage.get_concurrency_info(pool)
    return [c.run_id for c in info.claimed_slots], [p.run_id for p in info.pending_steps]


@pytest.mark.slow  # two real `rag-assets index` processes, each loading the model
def test_index_killed_in_the_store_step_does_not_block_later_runs(pooled, tmp_path):
    """Before: the killed run stayed STARTED, its qdrant_store slot stayed claimed, and `rag-assets index b`
    waited for it forever (ignoring Ctrl-C)."""
    marker = tmp_path / "in-store-step"
    with open(tmp_path / "killed.log", "w") as log:
        victim = subprocess.Popen([sys.executable, "-c", _KILLABLE, str(marker)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert victim.poll() is None and time.monotonic() < deadline, (tmp_path / "killed.log").read_text()
            time.sleep(0.2)
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    [dead] = [r for r in pooled.get_runs() if r.job_name == "embed_and_upsert"]
    assert dead.status == dg.DagsterRunStatus.STARTED and _slots(pooled)[0] == [dead.run_id]
    assert dead.tags["rag/pid"] == str(victim.pid) and dead.tags["rag/host"] == socket.gethostname()

    done = subprocess.run([RAG_ASSETS, "index", "b"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "indexed 'b' at" in done.stdout and "b: " in done.stdout  # progress lines and the summary
    assert done.stderr.strip() == (
        f"rag-assets: run {dead.run_id[:8]} (embed_and_upsert, source 'a'; pid {victim.pid} on "
        f"{socket.gethostname()}, STARTED) was left running by process {victim.pid}, which is gone: marked it failed "
        "and freed its qdrant_store pool slot")
    assert pooled.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
    assert _slots(pooled) == ([], [])


def _hold_slot(instance, pid: int) -> str:
    """A run of a live process (`pid`) holding the store's pool slot, as a long index run does."""
    run_id = str(uuid.uuid4())
    instance.add_run(dg.DagsterRun(job_name="embed_and_upsert", run_id=run_id, status=dg.DagsterRunStatus.STARTED,
                                   tags={"dagster/partition": "minilm-l6|b", "rag/pid": str(pid),
                                         "rag/host": socket.gethostname()}))
    storage = instance.event_log_storage
    storage.initialize_concurrency_limit_to_default("qdrant_store")
    assert storage.claim_concurrency_slot("qdrant_store", run_id, "qdrant_collection").is_claimed
    return run_id


@pytest.mark.slow  # runs Dagster jobs
def test_a_wait_for_the_pool_times_out_naming_the_holder_and_stops_on_ctrl_c(pooled, tmp_path):
    from rag_assets.service.errors import PoolWaitTimeout
    from rag_assets.service.runs import promote

    holder = _hold_slot(pooled, os.getpid())
    t0 = time.monotonic()
    with pytest.raises(PoolWaitTimeout) as e:
        promote("a", "minilm-l6", instance=pooled, pool_timeout_s=2)
    assert time.monotonic() - t0 < 30
    msg = str(e.value)
    assert "waited 2s for the qdrant_store pool, held by run " + holder[:8] in msg
    assert f"(embed_and_upsert, source 'b'; pid {os.getpid()} on {socket.gethostname()}, STARTED)" in msg
    assert "\n" not in msg
    waiter = next(r for r in pooled.get_runs() if r.job_name == "promote_alias")
    assert waiter.status == dg.DagsterRunStatus.FAILURE and _slots(pooled) == ([holder], [holder])  # nothing of it left

    # Ctrl-C during the wait: a real `rag-assets alias` stops at once and says what held it
    proc = subprocess.Popen([RAG_ASSETS, "alias", "a", "minilm-l6"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        first = proc.stderr.readline()
        assert f"waits for the qdrant_store pool, held by run {holder[:8]}" in first, first
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 130
    finally:
        proc.kill()
    last = proc.stderr.read().strip()
    assert last.startswith("rag-assets alias: interrupted while run ") and f"held by run {holder[:8]}" in last
    assert len(last.splitlines()) == 1
    waiter = next(r for r in pooled.get_runs(limit=1))
    assert waiter.job_name == "promote_alias" and waiter.status == dg.DagsterRunStatus.FAILURE  # Dagster's verdict
    assert _slots(pooled) == ([holder], [holder])  # the holder (alive) keeps its slot; the waiter left nothing


def test_run_monitoring_is_on_in_the_instance_config():
    import yaml

    cfg = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    monitoring = cfg["run_monitoring"]
    assert monitoring["enabled"] is True and monitoring["free_slots_after_run_end_seconds"] > 0
    assert cfg["concurrency"]["pools"]["default_limit"] == 1


# ------------------------------------------------------------------ 8: unknown sources and models
def test_unknown_sources_and_models_list_the_known_ones_and_never_suggest_index(env, tmp_path, capsys):
    for name in ("a", "b"):
        make_repo(tmp_path / name, {f"{name}.py": "x = 1\n"})
    env.write_sources(*({"name": n, "kind": "git", "url": str(tmp_path / n)} for n in ("a", "b")))
    queries = tmp_path / "q.jsonl"
    queries.write_text(json.dumps({"id": "q", "query": "x", "path": "a.py", "start_line": 1, "end_line": 1,
                                   "kind": "text"}) + "\n")
    cases = [
        (["index", "nope"], "no source named 'nope' (known: a, b)"),
        (["index", "nope", "--dry-run"], "no source named 'nope' (known: a, b)"),
        (["alias", "nope", "minilm-l6"], "no source named 'nope' (known: a, b)"),
        (["search", "x", "--source", "nope"], "unknown source 'nope' (known sources: a, b)"),
        (["eval", "--source", "nope", "--queries", str(queries)], "unknown source 'nope' (known sources: a, b)"),
        (["ask", "x", "--source", "nope"], "unknown source 'nope' (known sources: a, b)"),
        (["index", "a", "--model", "nope"], "unknown embedding model 'nope' (known: minilm-l6, mpnet-base"),
        (["alias", "a", "nope"], "unknown embedding model 'nope' (known: minilm-l6, mpnet-base"),
        (["search", "x", "--source", "a", "--model", "nope"], "unknown embedding model 'nope' (known: minilm-l6"),
    ]
    for argv, needle in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        message = err.split(": error: ", 1)[1]
        assert needle in message and "\n" not in err and "rag-assets index" not in message, (argv, err)
        assert '"' not in err, err  # a KeyError's message, not its repr
