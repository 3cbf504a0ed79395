"""Failed runs are retried: Dagster re-executes a failed run from its failed step (run_retries in the instance
config, dagster.yaml), up to `dagster/max_retries` times; sensors, schedules and automation tag their runs.

When a git head's run still fails after those retries, git_heads_sensor asks again later with a new run
key, backing off (`backoff_s`): see `head_run_state` and sensors.git_heads_sensor.
"""

from __future__ import annotations

from dagster import AssetSelection, AutomationConditionSensorDefinition, DagsterInstance, DagsterRunStatus, RunsFilter

from rag_assets import settings

MAX_RETRIES_TAG = "dagster/max_retries"
RETRY_STRATEGY_TAG = "dagster/retry_strategy"
WILL_RETRY_TAG = "dagster/will_retry"
COMMIT_TAG = "rag/commit"
ATTEMPT_TAG = "rag/attempt"

RETRY_BASE_S = 300  # the first re-request of a failed head waits 5 min after its last failure ...
RETRY_MAX_S = 6 * 3600  # ... doubling each attempt, at most 6 h

_UNFINISHED = {DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
               DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING, DagsterRunStatus.MANAGED}


def retry_tags() -> dict[str, str]:
    """Tags for every run a sensor or schedule requests (RAG_RUN_MAX_RETRIES, read at tick time)."""
    return {MAX_RETRIES_TAG: str(settings.current().run_max_retries), RETRY_STRATEGY_TAG: "FROM_FAILURE"}


def backoff_s(attempt: int) -> float:
    """Wait before re-request number attempt + 1 of a head whose runs failed (attempt 0: the first request)."""
    return min(RETRY_BASE_S * 2 ** attempt, RETRY_MAX_S)


def head_run_state(instance: DagsterInstance, job: str, source: str, commit: str,
                   attempt: int = 0) -> tuple[str | None, float | None]:
    """What became of the runs of one attempt at (source, commit), Dagster's retries included (they inherit
    the tags): ("running" | "succeeded" | "canceled" | "failed" | None when there is none yet, when the
    last one ended). Attempt 0 also counts runs without the attempt tag (requested before it existed)."""
    tags = {"dagster/partition": source, COMMIT_TAG: commit, **({ATTEMPT_TAG: str(attempt)} if attempt else {})}
    records = instance.get_run_records(RunsFilter(job_name=job, tags=tags), limit=50)
    if not records:
        return None, None
    runs = [r.dagster_run for r in records]
    if any(r.status in _UNFINISHED for r in runs):
        return "running", None
    if any(r.status == DagsterRunStatus.SUCCESS for r in runs):
        return "succeeded", None
    latest = records[0]  # newest first
    ended = latest.end_time or latest.update_timestamp.timestamp()
    if latest.dagster_run.status == DagsterRunStatus.CANCELED:
        return "canceled", ended  # someone stopped it: not ours to start again
    if latest.dagster_run.tags.get(WILL_RETRY_TAG) == "true":
        return "running", None  # the daemon will re-execute it
    return "failed", ended


# Declarative automation's runs carry the same tags. The sensor's tags are fixed when the code location
# loads, so they use the default (RAG_RUN_MAX_RETRIES is read by the sensors and schedules at tick time).
automation_sensor = AutomationConditionSensorDefinition(
    "default_automation_condition_sensor",  # the name Dagster gives its implicit one: UI state carries over
    target=AssetSelection.all(),
    run_tags={MAX_RETRIES_TAG: str(settings.Settings.run_max_retries), RETRY_STRATEGY_TAG: "FROM_FAILURE"},
)
