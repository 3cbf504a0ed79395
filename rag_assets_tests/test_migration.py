"""Changing the embedding model: build beside the old collection, gate the alias on checks, roll back."""

from __future__ import annotations

import json

import pytest
from dagster import AssetCheckKey, AssetKey

from rag_assets.service.runs import RunFailed, promote
from rag_assets_tests.gitrepo import make_repo
from rag_assets_tests.test_pipeline import MATH, SHOP

pytestmark = pytest.mark.slow  # loads the model and/or runs Dagster


@pytest.fixture
def demo(env, tmp_path):
    make_repo(tmp_path / "demo", {"mathutil.py": MATH, "shop.py": SHOP})
    queries = tmp_path / "golden.jsonl"
    queries.write_text("".join(json.dumps(q) + "\n" for q in [
        {"id": "fib", "query": "fibonacci number computed in a loop", "path": "mathutil.py", "start_line": 11,
         "end_line": 16, "kind": "function"},
        {"id": "cart", "query": "add up what everything in the cart costs", "path": "shop.py", "start_line": 10,
         "end_line": 12, "kind": "method"},
        {"id": "tri", "query": "length of the long side of a right triangle", "path": "mathutil.py", "start_line": 6,
         "end_line": 8, "kind": "function"},
    ]))
    env.write_sources({"name": "demo", "kind": "git", "url": str(tmp_path / "demo"), "queries": str(queries)})
    return env


def _alias(env) -> str:
    with env.store() as s:
        return s.resolve_alias("demo")


def _last_check(env, check: str, model: str):
    key = AssetCheckKey(AssetKey("qdrant_collection"), check)
    rec = env.instance.event_log_storage.get_asset_check_execution_history(key, limit=1)[0]
    return rec.event.dagster_event.event_specific_data


def test_migration_moves_alias_only_when_checks_pass_and_rolls_back(demo, monkeypatch):
    env = demo
    env.index("demo", "minilm-l6")
    assert _alias(env) == "demo__minilm-l6"

    # Build the 768-d model's collection beside the 384-d one; checks pass, so the alias moves.
    env.index("demo", "mpnet-base")
    assert _alias(env) == "demo__mpnet-base"
    with env.store() as s:
        assert s.list_collections() == {"demo__minilm-l6": 6, "demo__mpnet-base": 6}  # the old one is kept
    ev = _last_check(env, "golden_recall", "mpnet-base")
    assert ev.passed and ev.metadata["recall@10"].value == 1.0

    # Rollback is one materialization of the old model's alias partition.
    promote("demo", "minilm-l6", instance=env.instance)
    assert _alias(env) == "demo__minilm-l6"

    # A model whose collection fails the recall bar never becomes live; the numbers are on the check.
    monkeypatch.setenv("RAG_RECALL_THRESHOLD", "1.01")
    with pytest.raises(RunFailed, match="golden_recall"):
        env.index("demo", "mpnet-base")
    assert _alias(env) == "demo__minilm-l6"
    ev = _last_check(env, "golden_recall", "mpnet-base")
    assert not ev.passed and ev.metadata["threshold"].value == 1.01 and ev.metadata["n"].value == 3
    # ...and promoting it by hand re-verifies and refuses.
    with pytest.raises(RunFailed, match="fails its checks"):
        promote("demo", "mpnet-base", instance=env.instance)
    assert _alias(env) == "demo__minilm-l6"
