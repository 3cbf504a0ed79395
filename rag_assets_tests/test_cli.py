"""The `rag-assets` CLI contract: JSON shapes, one-line errors, busy store, dry run, sources status."""

from __future__ import annotations

import json

import pytest
from dagster import instance_for_test

from rag_assets.cli import main
from rag_assets_tests.conftest import Env, index_run_writing
from rag_assets_tests.gitrepo import commit, make_repo
from rag_assets_tests.test_pipeline import MATH, SHOP

pytestmark = pytest.mark.slow  # loads the model and/or runs Dagster


@pytest.fixture(scope="module")
def indexed_world(tmp_path_factory):
    """Indexed once for the module (the model load and two Dagster runs dominate these tests)."""
    tmp_path = tmp_path_factory.mktemp("cli")
    (tmp_path / "dagster_home").mkdir()
    with pytest.MonkeyPatch.context() as mp, instance_for_test(temp_dir=str(tmp_path / "dagster_home")) as instance:
        env = Env(tmp_path, instance)
        for var, value in _env_vars(env).items():
            mp.setenv(var, value)
        mp.delenv("QDRANT_URL", raising=False)
        mp.delenv("RAG_MODEL", raising=False)
        yield env, *_index_demo(env, tmp_path)


def _env_vars(env: Env) -> dict[str, str]:
    return {"RAG_DATA_DIR": str(env.data_dir), "RAG_SOURCES": str(env.sources_file),
            "DAGSTER_HOME": env.instance.root_directory}


@pytest.fixture
def indexed(indexed_world, monkeypatch):
    env, repo, queries = indexed_world
    for var, value in _env_vars(env).items():
        monkeypatch.setenv(var, value)
    return repo, queries


def _index_demo(env: Env, tmp_path):
    repo = make_repo(tmp_path / "demo", {"mathutil.py": MATH, "shop.py": SHOP})
    queries = tmp_path / "q.jsonl"
    queries.write_text(
        json.dumps({"id": "q1", "query": "fibonacci number", "path": "mathutil.py", "start_line": 11, "end_line": 16,
                    "kind": "function"}) + "\n"
        + json.dumps({"id": "q2", "query": "sum of prices in the cart", "path": "shop.py", "start_line": 10,
                      "end_line": 12, "kind": "method"}) + "\n"
        + json.dumps({"id": "q3", "query": "hypotenuse of a triangle", "path": "nowhere.py", "start_line": 1,
                      "end_line": 2, "kind": "method"}) + "\n")  # deliberately wrong path: a miss
    env.write_sources({"name": "demo", "kind": "git", "url": str(tmp_path / "demo"), "queries": str(queries)})
    env.index("demo")
    return repo, queries


def test_search_json_contract(indexed, capsys):
    repo, _ = indexed
    assert main(["search", "fibonacci number", "--source", "demo", "--k", "2", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 2
    assert {"path", "start_line", "end_line", "symbol", "score", "source", "commit", "text"} <= set(hits[0])
    assert (hits[0]["path"], hits[0]["start_line"], hits[0]["end_line"]) == ("mathutil.py", 11, 16)
    assert hits[0]["commit"] == repo.head.commit.hexsha and hits[0]["source"] == "demo"


def test_search_filters_by_language_and_kind(indexed, capsys):
    assert main(["search", "fibonacci", "--source", "demo", "--kind", "method", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits and all(h["symbol"].startswith("ShoppingCart.") for h in hits)


def test_eval_json_contract(indexed, capsys):
    _, queries = indexed
    assert main(["eval", "--source", "demo", "--queries", str(queries), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["overall"] == {"recall@1": 0.6667, "recall@5": 0.6667, "recall@10": 0.6667, "mrr@10": 0.6667, "n": 3}
    assert report["by_kind"]["function"]["recall@1"] == 1.0
    assert report["by_kind"]["method"]["n"] == 2


def test_bad_input_is_one_line_nonzero(indexed, capsys, tmp_path):
    cases = [
        (["search", "x", "--source", "nope"], "unknown source 'nope' (known sources: demo)"),
        (["search", "x", "--source", "demo", "--model", "nope"], "unknown embedding model 'nope' (known: minilm-l6"),
        (["search", "x", "--source", "demo", "--model", "mpnet-base"],
         "source 'demo' is not indexed with model 'mpnet-base' (run: rag-assets index demo --model mpnet-base)"),
        (["search", "   ", "--source", "demo"], "empty query"),
        (["search", "x", "--source", "demo", "--k", "0"], "k must be between 1 and 100"),
        (["index", "unknown"], "no source named 'unknown'"),
        (["eval", "--source", "demo", "--queries", str(tmp_path / "missing.jsonl")], "missing.jsonl: query file not found"),
    ]
    for argv, needle in cases:
        assert main(argv) != 0
        err = capsys.readouterr().err.strip()
        assert needle in err and "\n" not in err, err


def test_search_during_an_index_run_answers_from_the_published_state(indexed, indexed_world, capsys):
    assert main(["search", "fibonacci", "--source", "demo", "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    with index_run_writing(indexed_world[0].data_dir, "demo__minilm-l6"):  # its copy has 0 points
        assert main(["search", "fibonacci", "--source", "demo", "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == before
        assert main(["collections"]) == 0 and "demo__minilm-l6" in capsys.readouterr().out
    assert main(["search", "fibonacci", "--source", "demo", "--k", "1"]) == 0  # and after it (killed unpublished)


def test_dry_run_and_sources_status(indexed, capsys):
    repo, _ = indexed
    assert main(["index", "demo", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "files: 2 to index" in out and "chunks: 6" in out and "to embed with minilm-l6: 0 chunks" in out
    commit(repo, {"extra.py": "def extra():\n    return 1\n"}, "more")
    assert main(["sources", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["state"] == "stale (new commits)" and row["points"] == row["chunks"] == 6
    assert main(["index", "demo", "--dry-run"]) == 0
    assert "to embed with minilm-l6: 1 chunks (6 already embedded)" in capsys.readouterr().out


def test_store_migrate_local_to_edge_without_reembedding(env, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RAG_STORE_ENGINE", "local")
    monkeypatch.setenv("DAGSTER_HOME", env.instance.root_directory)
    make_repo(tmp_path / "demo", {"mathutil.py": MATH, "shop.py": SHOP})
    env.write_sources({"name": "demo", "kind": "git", "url": str(tmp_path / "demo")})
    env.index("demo")
    assert main(["store", "migrate", "--from", "local", "--to", "edge"]) == 0
    assert "demo__minilm-l6: 6 points copied local -> edge" in capsys.readouterr().out
    monkeypatch.setenv("RAG_STORE_ENGINE", "edge")
    assert main(["search", "fibonacci number", "--source", "demo", "--k", "1", "--json"]) == 0
    [hit] = json.loads(capsys.readouterr().out)
    assert (hit["path"], hit["start_line"], hit["end_line"]) == ("mathutil.py", 11, 16)
