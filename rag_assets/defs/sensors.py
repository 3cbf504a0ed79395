"""Sensors: git heads moved, sources.yaml changed, and the first build of a new source's live model."""

from __future__ import annotations

import hashlib
import json
import time

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
from rag_assets.defs.retries import ATTEMPT_TAG, COMMIT_TAG, backoff_s, head_run_state, retry_tags
from rag_assets.tables import TableError

SENSOR_INTERVAL_S = 60


def _indexed_commit(settings: RagSettings, source: str) -> str | None:
    table = settings.tables.chunks(source)
    return table.meta.get("commit") if table is not None else None


def _load_cursor(raw: str | None) -> tuple[dict, dict]:
    """(last head requested per source, re-request state per source); reads the older flat {source: head} too."""
    data = json.loads(raw) if raw else {}
    if isinstance(data.get("heads"), dict):
        return data["heads"], data.get("retries", {})
    return {k: v for k, v in data.items() if isinstance(v, str)}, {}


def _head_request(name: str, head: str, attempt: int = 0) -> RunRequest:
    key = f"{name}:{head}" if attempt == 0 else f"{name}:{head}:retry{attempt}"  # a new key per attempt
    return RunRequest(partition_key=name, run_key=key,
                      tags={COMMIT_TAG: head, ATTEMPT_TAG: str(attempt), **retry_tags()})


def _retry_failed_head(context, name: str, head: str, state: dict | None) -> tuple[RunRequest | None, dict | None]:
    """The head was requested and is still not indexed: when the runs of its latest attempt failed for good
    (after Dagster's own retries), request it again with backoff. Returns (a request or None, the source's
    retry state to keep, None when there is nothing to remember)."""
    state = state if state and state.get("commit") == head else {"commit": head, "attempt": 0}
    outcome, ended = head_run_state(context.instance, snapshot_job.name, name, head, state["attempt"])
    if outcome in ("succeeded", "canceled"):
        return None, None
    if outcome != "failed":  # no run yet, or one in flight (Dagster may be retrying it): wait
        return None, state if state["attempt"] else None
    if state.get("failed_at") != ended:  # a new failure: wait before asking again
        state = {**state, "failed_at": ended, "not_before": ended + backoff_s(state["attempt"])}
        context.log.warning(f"source '{name}': the run for {head[:12]} failed (attempt {state['attempt']}); "
                            f"re-requesting in {max(0, state['not_before'] - time.time()):.0f}s")
    if time.time() < state["not_before"]:
        return None, state
    attempt = state["attempt"] + 1
    return _head_request(name, head, attempt), {"commit": head, "attempt": attempt}


@sensor(job=snapshot_job, minimum_interval_seconds=SENSOR_INTERVAL_S)
def git_heads_sensor(context: SensorEvaluationContext, settings: RagSettings):
    """Request a snapshot+chunk run for each registered source whose head (a git branch) moved.

    The cursor remembers the last head requested per source (it survives restarts); the run key
    carries the commit, so one commit is never indexed twice. A head whose run failed even after Dagster's
    retries is requested again with backoff (5 min, doubling, at most 6 h), under a new run key per attempt.
    An unreachable remote is logged and skipped; it never stops the other sources.
    """
    try:
        sources = load_sources(settings.sources_file)
    except SourcesError as e:
        return SkipReason(f"sources file unusable: {e}")
    heads, retries = _load_cursor(context.cursor)
    registered = set(context.instance.get_dynamic_partitions(source_partitions.name))
    requests, unreachable, damaged = [], [], []
    for name, src in sources.items():
        if name not in registered:
            continue
        try:
            head = reader_for(src).head(src)
            if head is None:  # a kind without a head (docs): schedules refresh it
                continue
            indexed = _indexed_commit(settings, name)
        except (SnapshotError, TableError) as e:  # a damaged chunks table: named in the log, others go on
            context.log.warning(str(e))
            (unreachable if isinstance(e, SnapshotError) else damaged).append(name)
            continue
        if head != heads.get(name) and head != indexed:
            requests.append(_head_request(name, head))
            retries.pop(name, None)
        elif head != indexed:
            request, state = _retry_failed_head(context, name, head, retries.get(name))
            requests += [request] if request else []
            if state:
                retries[name] = state
            else:
                retries.pop(name, None)
        else:
            retries.pop(name, None)
        heads[name] = head
    context.update_cursor(json.dumps({"heads": heads, "retries": retries}, sort_keys=True))
    if not requests:
        note = (f"; unreachable: {', '.join(unreachable)}" if unreachable else "") + \
            (f"; damaged table: {', '.join(damaged)}" if damaged else "")
        waiting = sorted(n for n, r in retries.items() if "not_before" in r)
        waiting = f"; failed, waiting to retry: {', '.join(waiting)}" if waiting else ""
        return SkipReason(f"no git head moved ({len(registered)} registered sources checked){note}{waiting}")
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
        run_requests=[RunRequest(partition_key=n, run_key=f"first:{n}:{digest[:12]}", tags=retry_tags())
                      for n in new],
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
    return RunRequest(partition_key=key, run_key=f"first-embed:{key}", tags=retry_tags())
