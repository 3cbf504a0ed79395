"""Sensors: git heads moved, sources.yaml changed, and the first build of a new source's live model."""

from __future__ import annotations

import hashlib
import json

from dagster import (
    DagsterRunStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    run_status_sensor,
    sensor,
)

from rag_assets.sources.git import SnapshotError
from rag_assets.sources.readers import reader_for
from rag_assets.embedding.models import live_model_key
from rag_assets.sources.config import SourcesError, load_sources, sources_path
from rag_assets.defs.jobs import embed_job, snapshot_job
from rag_assets.defs.partitions import source_model_key, source_partitions
from rag_assets.defs.resources import RagSettings

SENSOR_INTERVAL_S = 60


def _indexed_commit(settings: RagSettings, source: str) -> str | None:
    table = settings.tables.chunks(source)
    return table.meta.get("commit") if table is not None else None


@sensor(job=snapshot_job, minimum_interval_seconds=SENSOR_INTERVAL_S)
def git_heads_sensor(context: SensorEvaluationContext, settings: RagSettings):
    """Request a snapshot+chunk run for each registered source whose head (a git branch) moved.

    The cursor remembers the last head requested per source (it survives restarts); the run key
    carries the commit, so one commit is never indexed twice. An unreachable remote is logged and
    skipped; it never stops the other sources.
    """
    try:
        sources = load_sources(settings.sources_file)
    except SourcesError as e:
        return SkipReason(f"sources file unusable: {e}")
    cursor = json.loads(context.cursor) if context.cursor else {}
    registered = set(context.instance.get_dynamic_partitions(source_partitions.name))
    requests, unreachable = [], []
    for name, src in sources.items():
        if name not in registered:
            continue
        try:
            head = reader_for(src).head(src)
        except SnapshotError as e:
            context.log.warning(str(e))
            unreachable.append(name)
            continue
        if head is None:  # a kind without a head (docs): schedules refresh it
            continue
        if head != cursor.get(name) and head != _indexed_commit(settings, name):
            requests.append(RunRequest(partition_key=name, run_key=f"{name}:{head}", tags={"rag/commit": head}))
        cursor[name] = head
    context.update_cursor(json.dumps(cursor, sort_keys=True))
    if not requests:
        note = f"; unreachable: {', '.join(unreachable)}" if unreachable else ""
        return SkipReason(f"no git head moved ({len(registered)} registered sources checked){note}")
    return requests


@sensor(job=snapshot_job, minimum_interval_seconds=SENSOR_INTERVAL_S)
def sources_sensor(context: SensorEvaluationContext, settings: RagSettings):
    """When sources.yaml changes: register new sources as partitions and request their first index.

    Sources removed from the file are retired: nothing runs for them any more, but their partitions,
    tables and collections are kept (search keeps working) until dropped by hand
    (`rag-assets collections --drop`).
    """
    path = settings.sources_file or str(sources_path())
    try:
        text = open(path, encoding="utf-8").read()
        sources = load_sources(path)
    except (OSError, SourcesError) as e:
        return SkipReason(f"sources file unusable, nothing changed: {e}")
    digest = hashlib.sha256(text.encode()).hexdigest()
    if context.cursor == digest:
        return SkipReason("sources file unchanged")
    registered = set(context.instance.get_dynamic_partitions(source_partitions.name))
    new = [n for n in sources if n not in registered]
    retired = sorted(registered - set(sources))
    if retired:
        context.log.info(f"retired (kept, no longer refreshed): {', '.join(retired)}")
    return SensorResult(
        run_requests=[RunRequest(partition_key=n, run_key=f"first:{n}:{digest[:12]}") for n in new],
        dynamic_partitions_requests=[source_partitions.build_add_request(new)] if new else [],
        cursor=digest,
    )


@run_status_sensor(
    run_status=DagsterRunStatus.SUCCESS, monitored_jobs=[snapshot_job], request_job=embed_job,
    minimum_interval_seconds=SENSOR_INTERVAL_S,
)
def first_index_sensor(context):
    """After a source's first snapshot+chunk, build its live model's collection (automation refreshes it later)."""
    source = context.dagster_run.tags.get("dagster/partition")
    if not source:
        return SkipReason("run had no partition")
    key = source_model_key(source, live_model_key())
    from dagster import AssetKey

    done = context.instance.get_materialized_partitions(AssetKey("embeddings"))
    if str(key) in done:
        return SkipReason(f"{key} already built; automation keeps it fresh")
    return RunRequest(partition_key=key, run_key=f"first-embed:{key}")
