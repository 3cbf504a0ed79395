"""The one place that launches Dagster runs, for the CLI and the MCP server.

- In process (`index_source`, `promote`): the CLI waits for the result and shows progress (Dagster's
  console log, on stdout for the CLI); the runs are recorded in the instance, so they show in the UI. A failed run is
  one line (RunFailed: run, step, source, cause, where the full log is). Runs whose process is gone
  and waits for a pool slot: dead_runs.py.
- Queued (`request_index_run`): the daemon runs it later; the caller gets the run id at once. Through
  the webserver's GraphQL API when RAG_DAGSTER_URL is set, else through the instance with Dagster's
  public `dagster job launch` (the instance's run coordinator queues it).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import dagster as dg

from rag_assets import settings
from rag_assets.defs.jobs import EMBED_JOB, PROMOTE_JOB, SNAPSHOT_JOB
from rag_assets.defs.partitions import source_model_key, source_partitions
from rag_assets.service.dead_runs import (HOST_TAG, PID_TAG, PROCESS_STARTED_TAG, UNFINISHED, PoolWatch,
                                          process_started, reap_dead_runs)
from rag_assets.service.errors import DEFAULT_POOL_TIMEOUT_S, RunFailed, RunRequestError, one_line
from rag_assets.service.failures import partition_source, record_result, run_failure
from rag_assets.service.run_console import quiet_console_logger
from rag_assets.sources.config import get_source, load_sources

CODE_LOCATION = "rag_assets"  # workspace.yaml and pyproject [tool.dagster]
DEFINITIONS_MODULE = "rag_assets.definitions"
REPOSITORY = "__repository__"  # Dagster's name for the repository of a Definitions object


# ------------------------------------------------------------------ partitions
def register_sources(instance: dg.DagsterInstance | None = None, names: list[str] | None = None,
                     sources_file: str | None = None) -> tuple[list[str], list[str]]:
    """Add partitions for sources not yet registered. Returns (added, all names in the file)."""
    instance = instance or dg.DagsterInstance.get()
    known = list(load_sources(sources_file))
    wanted = list(names or known)
    existing = set(instance.get_dynamic_partitions(source_partitions.name))
    added = [n for n in wanted if n not in existing]
    if added:
        instance.add_dynamic_partitions(source_partitions.name, added)
    return added, known


# ------------------------------------------------------------------ in process
def _failure_message(result_or_events, run_id: str, job_name: str, partition_key, instance) -> str:
    source = partition_source(str(partition_key))
    step, cause = run_failure(result_or_events, source)
    if source and f"'{source}'" not in cause:
        cause = f"source '{source}': {cause}"
    where = f"step {step}: " if step else ""
    return (f"run {run_id[:8]} ({job_name}) failed: {where}{cause} "
            f"(full log: run {run_id} in the Dagster UI of {instance.root_directory})")


def _finish_unfinished(instance: dg.DagsterInstance, run_id: str, why: str, canceled: bool) -> None:
    """After an interrupted or aborted in-process run: never leave it STARTED, nor its slots held."""
    try:
        run = instance.get_run_by_id(run_id)
        if run is not None and run.status.value in UNFINISHED:
            (instance.report_run_canceled if canceled else instance.report_run_failed)(run, message=why)
        if instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.free_concurrency_slots_for_run(run_id)
    except Exception:  # noqa: BLE001 - the error being reported matters more; the next run reaps this one
        logging.getLogger(__name__).debug("could not finish run %s", run_id, exc_info=True)


def _execute(job_name: str, partition_key, instance: dg.DagsterInstance, progress_bar: bool,
             ops: dict | None = None, pool_timeout_s: float = DEFAULT_POOL_TIMEOUT_S,
             log_stream=None) -> dg.ExecuteInProcessResult:
    """Run a job in process. Progress lines (Dagster's console log, without its failure tracebacks) go to
    `log_stream` (default stderr); a failure raises RunFailed with one line."""
    from rag_assets.definitions import defs

    reap_dead_runs(instance)  # a killed earlier run must not hold the store's pool slot forever
    run_config: dict = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}  # progress lines, not DEBUG noise
    if ops:
        run_config["ops"] = ops
    if job_name == EMBED_JOB:
        run_config["resources"] = {"embedder": {"config": {"progress_bar": progress_bar}}}
    job = defs.resolve_job_def(job_name).with_logger_defs({"console": quiet_console_logger(log_stream or sys.stderr)})
    run_id = str(uuid.uuid4())
    started = process_started(os.getpid())
    tags = {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname(),
            **({PROCESS_STARTED_TAG: f"{started:.3f}"} if started else {})}
    watch = PoolWatch(instance, run_id, job_name, pool_timeout_s)
    try:
        with watch:
            result = job.execute_in_process(partition_key=partition_key, instance=instance, run_config=run_config,
                                            raise_on_error=False, run_id=run_id, tags=tags)
    except BaseException as e:
        stopped = watch.abort if watch.raised else e
        _finish_unfinished(instance, run_id, one_line(stopped), canceled=isinstance(stopped, KeyboardInterrupt))
        if stopped is not e:
            raise stopped from None
        raise
    if watch.raised:  # Dagster caught what the watch raised and ended the run
        _finish_unfinished(instance, run_id, one_line(watch.abort), canceled=isinstance(watch.abort, KeyboardInterrupt))
        raise watch.abort
    record_result(settings.current().data_dir, job_name, str(partition_key), result)  # `sources` shows failures
    if not result.success:
        raise RunFailed(_failure_message(result.all_events, result.run_id, job_name, partition_key, instance))
    return result


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    for m in result.asset_materializations_for_node(asset):
        return {k: v.value for k, v in m.metadata.items()}
    return {}


def index_source(source: str, model: str, instance: dg.DagsterInstance | None = None, progress_bar: bool = False,
                 pool_timeout_s: float = DEFAULT_POOL_TIMEOUT_S, log_stream=None) -> str:
    """Snapshot + chunk (per source), then embed + upsert (per source × model). Returns a summary."""
    instance = instance or dg.DagsterInstance.get()
    register_sources(instance, [source])
    r1 = _execute(SNAPSHOT_JOB, source, instance, progress_bar, pool_timeout_s=pool_timeout_s, log_stream=log_stream)
    r2 = _execute(EMBED_JOB, source_model_key(source, model), instance, progress_bar, pool_timeout_s=pool_timeout_s,
                  log_stream=log_stream)
    c, e, q = _metadata(r1, "chunks"), _metadata(r2, "embeddings"), _metadata(r2, "qdrant_collection")
    return (
        f"indexed '{source}' at {str(c.get('commit', ''))[:12]} with {model}: {c.get('files_indexed')} files "
        f"({c.get('files_rechunked')} re-chunked), {c.get('chunks')} chunks; embedded {e.get('embedded')}, "
        f"reused {e.get('reused')}; collection {q.get('collection')}: {q.get('points')} points "
        f"(+{q.get('upserted')} -{q.get('deleted')}); runs {r1.run_id[:8]}, {r2.run_id[:8]}"
    )


def promote(source: str, model: str, instance: dg.DagsterInstance | None = None, force: bool = False,
            pool_timeout_s: float = DEFAULT_POOL_TIMEOUT_S, log_stream=None) -> str:
    """Move the source's alias to this model's collection (a switch or a rollback), checks first: the
    collection must measure at least as well as the live one (recall gate) unless `force` (recorded)."""
    instance = instance or dg.DagsterInstance.get()
    result = _execute(PROMOTE_JOB, source_model_key(source, model), instance, False,
                      ops={"collection_alias": {"config": {"force": force}}}, pool_timeout_s=pool_timeout_s,
                      log_stream=log_stream)
    m = _metadata(result, "collection_alias")
    forced = f"; forced past: {m.get('gate')}" if m.get("gate_overridden") else ""
    return (f"alias '{source}': {m.get('previous')} -> {m.get('collection')} ({m.get('points')} points){forced}; "
            f"run {result.run_id[:8]}")


# ------------------------------------------------------------------ queued
def request_index_run(source: str, requested_by: str = "mcp") -> dict:
    """Queue the snapshot job for `source` (automation then refreshes its collections), never executing
    it here: that would block the caller and hold the store."""
    get_source(source)  # an unknown name fails here, listing the known ones
    tags = {"dagster/partition": source, "rag/requested_by": requested_by}
    url = settings.current().dagster_url
    run = _submit_graphql(url.rstrip("/"), source, tags) if url else _submit_to_instance(source, tags)
    return {"job": SNAPSHOT_JOB, "partition": source, **run}


def _submit_to_instance(source: str, tags: dict) -> dict:
    home = settings.ensure_dagster_home()
    with dg.DagsterInstance.get() as instance:
        if not instance.run_coordinator or type(instance.run_coordinator).__name__ != "QueuedRunCoordinator":
            raise RunRequestError("the Dagster instance has no queued run coordinator; "
                                  "set RAG_DAGSTER_URL to the webserver to request runs through it")
        register_sources(instance, [source])
        run_id = str(uuid.uuid4())
        with tempfile.TemporaryDirectory() as tmp:
            # The code location as workspace.yaml names it, so the daemon finds it by name.
            workspace = Path(tmp) / "workspace.yaml"
            workspace.write_text(json.dumps({"load_from": [{"python_module": {
                "module_name": DEFINITIONS_MODULE, "location_name": CODE_LOCATION}}]}))
            proc = subprocess.run(
                [str(Path(sys.executable).with_name("dagster")), "job", "launch", "-w", str(workspace),
                 "-j", SNAPSHOT_JOB, "--tags", json.dumps(tags), "--run-id", run_id],
                capture_output=True, text=True, timeout=300,
            )
        if proc.returncode != 0:
            lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
            raise RunRequestError(f"dagster job launch failed: {lines[-1] if lines else proc.returncode}")
        run = instance.get_run_by_id(run_id)
        return {"run_id": run_id, "status": run.status.value if run else "UNKNOWN",
                "submitted_to": f"Dagster instance at {home}"}


_ADD_PARTITION = """mutation($repo: RepositorySelector!, $name: String!, $key: String!) {
  addDynamicPartition(repositorySelector: $repo, partitionsDefName: $name, partitionKey: $key) {
    __typename ... on Error { message } } }"""
_LAUNCH_RUN = """mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename ... on LaunchRunSuccess { run { runId status } } ... on Error { message } } }"""


def _submit_graphql(url: str, source: str, tags: dict) -> dict:
    import httpx

    def call(query: str, variables: dict, field: str) -> dict:
        try:
            resp = httpx.post(f"{url}/graphql", json={"query": query, "variables": variables}, timeout=30)
        except httpx.HTTPError as e:
            raise RunRequestError(f"Dagster webserver {url} unreachable: {one_line(e)}") from None
        body = resp.json() if resp.headers.get("content-type", "").startswith("application/json") else {}
        if resp.status_code != 200 or body.get("errors") or field not in (body.get("data") or {}):
            detail = (body.get("errors") or [{}])[0].get("message") or resp.text[:200]
            raise RunRequestError(f"Dagster webserver {url} answered HTTP {resp.status_code}: {detail}")
        return body["data"][field]

    repo = {"repositoryLocationName": CODE_LOCATION, "repositoryName": REPOSITORY}
    added = call(_ADD_PARTITION, {"repo": repo, "name": source_partitions.name, "key": source}, "addDynamicPartition")
    if added["__typename"] not in ("AddDynamicPartitionSuccess", "DuplicateDynamicPartitionError"):
        raise RunRequestError(f"could not register partition '{source}': {added.get('message', added['__typename'])}")
    params = {"selector": {**repo, "jobName": SNAPSHOT_JOB},
              "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]}}
    launched = call(_LAUNCH_RUN, {"params": params}, "launchRun")
    if launched["__typename"] != "LaunchRunSuccess":
        raise RunRequestError(f"run not launched ({launched['__typename']}): {launched.get('message', '')}")
    run = launched["run"]
    return {"run_id": run["runId"], "status": run["status"], "submitted_to": f"Dagster webserver {url}"}
