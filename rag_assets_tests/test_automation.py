"""Sensors, schedules and declarative automation, evaluated with Dagster's test helpers on temp git repos."""

from __future__ import annotations

import pytest
import datetime as dt

from dagster import (
    AssetKey,
    RunRequest,
    SensorResult,
    SkipReason,
    build_run_status_sensor_context,
    build_schedule_context,
    build_sensor_context,
    evaluate_automation_conditions,
)

from rag_assets.defs import schedules, sensors
from rag_assets.defs.partitions import source_model_key
from rag_assets.defs.resources import RagSettings, VectorStoreResource
from rag_assets.definitions import defs
from rag_assets.service.runs import register_sources
from rag_assets.retrieval.search import Searcher
from rag_assets_tests.gitrepo import commit, make_repo
from rag_assets_tests.test_pipeline import MATH

pytestmark = pytest.mark.slow  # loads the model and/or runs Dagster

RES = {"settings": RagSettings(), "store": VectorStoreResource()}


def _git_sensor(instance, cursor=None):
    ctx = build_sensor_context(instance=instance, cursor=cursor, resources=RES)
    return sensors.git_heads_sensor(ctx), ctx.cursor


def test_git_sensor_requests_only_moved_heads(env, tmp_path):
    a = make_repo(tmp_path / "a", {"a.py": "def a():\n    return 1\n"})
    make_repo(tmp_path / "b", {"b.py": "def b():\n    return 2\n"})
    env.write_sources(
        {"name": "a", "kind": "git", "url": str(tmp_path / "a")},
        {"name": "b", "kind": "git", "url": str(tmp_path / "b")},
        {"name": "gone", "kind": "git", "url": "http://127.0.0.1:9/gone.git"},
    )
    register_sources(env.instance)
    result, cursor = _git_sensor(env.instance)
    assert sorted(r.partition_key for r in result) == ["a", "b"]  # "gone" unreachable: logged, skipped
    assert {r.run_key for r in result} >= {f"a:{a.head.commit.hexsha}"}

    result, cursor = _git_sensor(env.instance, cursor)
    assert isinstance(result, SkipReason) and "no git head moved" in result.skip_message
    assert "unreachable: gone" in result.skip_message

    sha = commit(a, {"a.py": "def a():\n    return 3\n"}, "move a")
    result, cursor = _git_sensor(env.instance, cursor)
    assert [(r.partition_key, r.run_key) for r in result] == [("a", f"a:{sha}")]


def test_sources_sensor_registers_new_and_keeps_retired(env, tmp_path):
    make_repo(tmp_path / "a", {"a.py": "x = 1\n"})
    env.write_sources({"name": "a", "kind": "git", "url": str(tmp_path / "a")})
    ctx = build_sensor_context(instance=env.instance, resources=RES)
    result = sensors.sources_sensor(ctx)
    assert isinstance(result, SensorResult)
    assert [r.partition_key for r in result.run_requests] == ["a"]
    assert result.dynamic_partitions_requests[0].partition_keys == ["a"]
    env.instance.add_dynamic_partitions("source", ["a"])  # what the daemon does with the request

    again = sensors.sources_sensor(build_sensor_context(instance=env.instance, cursor=result.cursor, resources=RES))
    assert isinstance(again, SkipReason) and "unchanged" in again.skip_message

    env.write_sources({"name": "b", "kind": "git", "url": str(tmp_path / "a")})  # a removed, b added
    result = sensors.sources_sensor(build_sensor_context(instance=env.instance, cursor=result.cursor, resources=RES))
    assert [r.partition_key for r in result.run_requests] == ["b"]
    assert "a" in env.instance.get_dynamic_partitions("source")  # retired, not deleted

    env.sources_file.write_text("sources: [")
    bad = sensors.sources_sensor(build_sensor_context(instance=env.instance, cursor=result.cursor, resources=RES))
    assert isinstance(bad, SkipReason) and "not valid YAML" in bad.skip_message


def test_schedules(env, tmp_path):
    make_repo(tmp_path / "a", {"a.py": "x = 1\n"})
    env.write_sources({"name": "a", "kind": "git", "url": str(tmp_path / "a")},
                      {"name": "d", "kind": "docs", "url": str(tmp_path / "docs")})
    register_sources(env.instance)
    when = dt.datetime(2026, 11, 22, 4, tzinfo=dt.timezone.utc)
    ctx = build_schedule_context(instance=env.instance, scheduled_execution_time=when, resources=RES)
    reqs = schedules.weekly_reembed(ctx)
    assert [(r.partition_key, r.run_config) for r in reqs] == [
        (source_model_key("a", "minilm-l6"), {"ops": {"embeddings": {"config": {"force": True}}}}),
        (source_model_key("d", "minilm-l6"), {"ops": {"embeddings": {"config": {"force": True}}}}),
    ]
    docs = schedules.nightly_docs_refresh(build_schedule_context(instance=env.instance, scheduled_execution_time=when,
                                                                 resources=RES))
    assert [(r.partition_key, r.run_key) for r in docs] == [("d", "docs:d:2026-11-22")]


def _run(instance, job: str, key) -> None:
    res = defs.resolve_job_def(job).execute_in_process(partition_key=key, instance=instance)
    assert res.success


def test_commit_flows_through_sensor_and_automation_to_search(env, tmp_path):
    repo = make_repo(tmp_path / "demo", {"mathutil.py": MATH})
    env.write_sources({"name": "demo", "kind": "git", "url": str(tmp_path / "demo")})
    register_sources(env.instance)

    # First index: the sensor asks for snapshot+chunk; the first-index sensor then asks for the live model.
    result, cursor = _git_sensor(env.instance)
    [req] = result
    _run(env.instance, "snapshot_and_chunk", req.partition_key)
    run = env.instance.get_runs()[0]
    first = sensors.first_index_sensor(build_run_status_sensor_context(
        sensor_name="first_index_sensor", dagster_instance=env.instance, dagster_run=run,
        dagster_event=next(e for e in env.instance.all_logs(run.run_id) if e.dagster_event and
                           e.dagster_event.event_type_value == "PIPELINE_SUCCESS").dagster_event))
    assert isinstance(first, RunRequest) and first.partition_key == str(source_model_key("demo", "minilm-l6"))
    _run(env.instance, "embed_and_upsert", source_model_key("demo", "minilm-l6"))

    # Nothing changed upstream: automation requests nothing.
    auto = evaluate_automation_conditions(defs=defs, instance=env.instance)
    assert auto.total_requested == 0

    # A commit: the sensor requests one run, then automation carries it down to the collection.
    commit(repo, {"geometry.py": "def circle_area(radius):\n    \"\"\"Area of a circle.\"\"\"\n    return 3.14159 * radius ** 2\n"},
           "add circle area")
    result, cursor = _git_sensor(env.instance, cursor)
    [req] = result
    _run(env.instance, "snapshot_and_chunk", req.partition_key)
    auto = evaluate_automation_conditions(defs=defs, instance=env.instance, cursor=auto.cursor)
    key = str(source_model_key("demo", "minilm-l6"))
    requested = {(a, str(p)) for a in ("chunks", "embeddings", "qdrant_collection", "collection_alias")
                 for p in auto.get_requested_partitions(AssetKey(a))}
    assert requested == {("embeddings", key), ("qdrant_collection", key)}  # chunks were just materialized
    _run(env.instance, "embed_and_upsert", source_model_key("demo", "minilm-l6"))

    with env.store() as s:
        hit = Searcher(s, "demo").search("area of a circle from its radius", k=1)[0]
    assert (hit.path, hit.start_line, hit.end_line, hit.symbol) == ("geometry.py", 1, 3, "circle_area")
    assert hit.commit == repo.head.commit.hexsha


def test_backfill_batch_embeds_many_partitions_in_one_run(env, tmp_path):
    """BackfillPolicy.multi_run: a ranged run embeds several sources with one model load."""
    from dagster import AssetSelection, materialize

    from rag_assets.defs import assets
    from rag_assets.tables import read_table, table_path

    for name in ("a", "b"):
        make_repo(tmp_path / name, {f"{name}.py": f"def {name}_function():\n    return '{name}'\n"})
    env.write_sources(*({"name": n, "kind": "git", "url": str(tmp_path / n)} for n in ("a", "b")))
    register_sources(env.instance)
    for n in ("a", "b"):
        _run(env.instance, "snapshot_and_chunk", n)
    res = materialize(
        [assets.embeddings, assets.chunks.to_source_asset()], instance=env.instance, resources=defs.resources,
        selection=AssetSelection.assets("embeddings"),
        tags={"dagster/asset_partition_range_start": "minilm-l6|a", "dagster/asset_partition_range_end": "minilm-l6|b"},
    )
    assert res.success
    [mat] = [m for m in res.asset_materializations_for_node("embeddings")][:1]
    assert mat.metadata["partitions"].value == 2 and mat.metadata["embedded"].value == 2
    for n in ("a", "b"):
        table = read_table(table_path(env.data_dir, "embeddings", f"minilm-l6|{n}"))
        assert len(table.df) == 1 and table.vectors.shape == (1, 384)
