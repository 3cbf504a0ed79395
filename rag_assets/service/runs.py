"""The one place that launches Dagster runs, for the CLI and the MCP server.

- In process (`index_source`, `promote`): the CLI waits for the result and shows progress; the runs
  are recorded in the instance, so they show in the UI.
- Queued (`request_index_run`): the daemon runs it later; the caller gets the run id at once. Through
  the webserver's GraphQL API when RAG_DAGSTER_URL is set, else through the instance with Dagster's
  public `dagster job launch` (the instance's run coordinator queues it).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import dagster as dg

from rag_assets import settings
from rag_assets.defs.jobs import EMBED_JOB, PROMOTE_JOB, SNAPSHOT_JOB
from rag_assets.defs.partitions import source_model_key, source_partitions
from rag_assets.service.errors import RunFailed, RunRequestError, one_line
from rag_assets.service.failures import record_result
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
def _first_failure(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            err = event.event_specific_data.error
            # The user's exception is the innermost cause; Dagster wraps it.
            while err.cause is not None:
                err = err.cause
            return f"step {event.step_key}: {err.message.strip().splitlines()[-1] if err.message.strip() else err.cls_name}"
    return "run failed"


def _execute(job_name: str, partition_key, instance: dg.DagsterInstance, progress_bar: bool,
             ops: dict | None = None) -> dg.ExecuteInProcessResult:
    from rag_assets.definitions import defs

    run_config: dict = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}  # progress lines, not DEBUG noise
    if ops:
        run_config["ops"] = ops
    if job_name == EMBED_JOB:
        run_config["resources"] = {"embedder": {"config": {"progress_bar": progress_bar}}}
    job = defs.resolve_job_def(job_name)
    result = job.execute_in_process(partition_key=partition_key, instance=instance, run_config=run_config,
                                    raise_on_error=False)
    record_result(settings.current().data_dir, job_name, str(partition_key), result)  # `sources` shows failures
    if not result.success:
        raise RunFailed(f"run {result.run_id[:8]} ({job_name}) failed: {_first_failure(result)}")
    return result


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    for m in result.asset_materializations_for_node(asset):
        return {k: v.value for k, v in m.metadata.items()}
    return {}


def index_source(source: str, model: str, instance: dg.DagsterInstance | None = None, progress_bar: bool = False) -> str:
    """Snapshot + chunk (per source), then embed + upsert (per source × model). Returns a summary."""
    instance = instance or dg.DagsterInstance.get()
    register_sources(instance, [source])
    r1 = _execute(SNAPSHOT_JOB, source, instance, progress_bar)
    r2 = _execute(EMBED_JOB, source_model_key(source, model), instance, progress_bar)
    c, e, q = _metadata(r1, "chunks"), _metadata(r2, "embeddings"), _metadata(r2, "qdrant_collection")
    return (
        f"indexed '{source}' at {str(c.get('commit', ''))[:12]} with {model}: {c.get('files_indexed')} files "
        f"({c.get('files_rechunked')} re-chunked), {c.get('chunks')} chunks; embedded {e.get('embedded')}, "
        f"reused {e.get('reused')}; collection {q.get('collection')}: {q.get('points')} points "
        f"(+{q.get('upserted')} -{q.get('deleted')}); runs {r1.run_id[:8]}, {r2.run_id[:8]}"
    )


def promote(source: str, model: str, instance: dg.DagsterInstance | None = None, force: bool = False) -> str:
    """Move the source's alias to this model's collection (a switch or a rollback), checks first: the
    collection must measure at least as well as the live one (recall gate) unless `force` (recorded)."""
    instance = instance or dg.DagsterInstance.get()
    result = _execute(PROMOTE_JOB, source_model_key(source, model), instance, False,
                      ops={"collection_alias": {"config": {"force": force}}})
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
