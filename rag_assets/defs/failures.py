"""Failures are seen: every failed run is recorded (source, step, one-line cause) where `rag-assets sources`
and the MCP `list_sources` show it, and a final failure (no retry coming) is POSTed to RAG_ALERT_WEBHOOK.

Both sensors are on by default: they only write a small file under the data dir (service/failures.py).
"""

from __future__ import annotations

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunStatusSensorContext,
    SkipReason,
    run_failure_sensor,
    run_status_sensor,
)

from rag_assets import settings as env
from rag_assets.defs.jobs import SNAPSHOT_JOB
from rag_assets.defs.resources import RagSettings
from rag_assets.service import failures

WILL_RETRY_TAG = "dagster/will_retry"
RETRY_NUMBER_TAG = "dagster/retry_number"
COMMIT_TAG = "rag/commit"  # set by git_heads_sensor on the runs it requests


def run_source(tags: dict) -> str | None:
    """The source a run worked on, from its partition tags (None: no single source, e.g. a ranged backfill)."""
    return tags.get("dagster/partition/source") or failures.partition_source(tags.get("dagster/partition"))


def _commit(settings: RagSettings, run, source: str | None) -> str | None:
    if run.tags.get(COMMIT_TAG):
        return run.tags[COMMIT_TAG]
    if source and run.job_name != SNAPSHOT_JOB:  # later steps work on the chunked commit
        try:
            table = settings.tables.chunks(source)
        except Exception:  # noqa: BLE001 - a damaged table must not stop the record
            return None
        return table.meta.get("commit") if table is not None else None
    return None


def record_run_failure(context: RunFailureSensorContext, settings: RagSettings) -> dict:
    run = context.dagster_run
    source = run_source(run.tags)
    step_failures = context.get_step_failure_events()
    if step_failures:
        first = step_failures[0]
        step, cause = first.step_key, failures.error_cause(first.event_specific_data.error)
    else:  # the run failed outside any step (launch, resources, a killed process)
        data = context.failure_event.event_specific_data
        step = None
        cause = failures.error_cause(data.error) if getattr(data, "error", None) else context.failure_event.message
    event = failures.record_failure(
        settings.root, source=source, job=run.job_name, run_id=run.run_id, step=step, cause=cause,
        commit=_commit(settings, run, source), partition=run.tags.get("dagster/partition"),
        retry_number=int(run.tags.get(RETRY_NUMBER_TAG, 0) or 0),
        will_retry=run.tags.get(WILL_RETRY_TAG) == "true")
    context.log.warning(f"run {run.run_id[:8]} ({run.job_name}) failed: {event['cause']}")
    url = env.current().alert_webhook
    if url and not event["will_retry"]:  # one alert per final failure, not one per retry
        count = failures.summary(settings.root).get(source, {}).get("count", 1) if source else 1
        failures.post_alert(url, failures.alert_payload(event, count))
    return event


@run_failure_sensor(name="run_failures_sensor", minimum_interval_seconds=30,
                    default_status=DefaultSensorStatus.RUNNING)
def run_failures_sensor(context: RunFailureSensorContext, settings: RagSettings):
    """Record each failed run (source, step, one-line cause) and alert RAG_ALERT_WEBHOOK on final failures."""
    record_run_failure(context, settings)


@run_status_sensor(name="run_successes_sensor", run_status=DagsterRunStatus.SUCCESS, minimum_interval_seconds=30,
                   default_status=DefaultSensorStatus.RUNNING)
def run_successes_sensor(context: RunStatusSensorContext, settings: RagSettings):
    """A successful run of a source ends its failure streak in `rag-assets sources`."""
    source = run_source(context.dagster_run.tags)
    if not source:
        return SkipReason("run had no single source")
    failures.record_success(settings.root, source=source, job=context.dagster_run.job_name,
                            run_id=context.dagster_run.run_id)
