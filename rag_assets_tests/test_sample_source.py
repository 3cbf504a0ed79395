"""The sample source (this repository, with its golden queries) indexed for real, every check executed.

This is how the asset checks run in CI: a failing check fails this test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dagster import DagsterEventType

from rag_assets.cli import main

pytestmark = pytest.mark.slow  # loads the model and/or runs Dagster

ROOT = Path(__file__).resolve().parents[1]
CHECKS = {"chunks_are_sane", "vectors_are_sane", "points_match_chunks", "golden_recall", "approximate_search_recall"}


def test_golden_spans_are_current():
    """evals/rag-assets.jsonl cites line spans; code moves. `rag-assets queries refresh` fixes them."""
    assert main(["queries", "refresh", str(ROOT / "evals" / "rag-assets.jsonl"), "--root", str(ROOT), "--check"]) == 0


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from dagster import instance_for_test

    from rag_assets.service.runs import index_source

    tmp = tmp_path_factory.mktemp("sample")
    mp = pytest.MonkeyPatch()
    mp.setenv("RAG_DATA_DIR", str(tmp / "data"))
    mp.setenv("RAG_SOURCES", str(ROOT / "sources.yaml"))
    mp.delenv("QDRANT_URL", raising=False)
    (tmp / "dh").mkdir()
    with instance_for_test(temp_dir=str(tmp / "dh")) as instance:
        mp.setenv("DAGSTER_HOME", str(tmp / "dh"))
        index_source("rag-assets", "minilm-l6", instance=instance)
        yield instance
    mp.undo()


def test_sample_source_passes_every_check(sample):
    evals = [e.dagster_event.event_specific_data for run in sample.get_runs()
             for e in sample.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)]
    assert {c.check_name for c in evals} == CHECKS
    failed = {c.check_name: {k: v.value for k, v in c.metadata.items()} for c in evals if not c.passed}
    assert not failed, failed
    recall = next(c for c in evals if c.check_name == "golden_recall").metadata
    assert recall["n"].value == 47 and recall["recall@10"].value >= 0.5


def test_ask_fits_the_budget_with_citations(sample, capsys):
    assert main(["ask", "how are point ids made deterministic", "--source", "rag-assets", "--budget", "1500",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert 0 < out["tokens"] <= 1500 and out["source_tokens"] > 10 * out["tokens"]  # > 90 % fewer than the source
    assert any(c.startswith("rag_assets/contract.py:") for c in out["citations"])
    assert out["answer"] is None  # no model configured here
