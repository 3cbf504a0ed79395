"""Run the index jobs for one source through the Dagster instance, so runs show in the UI."""

from __future__ import annotations

from dagster import DagsterEventType, DagsterInstance, ExecuteInProcessResult

from .defs.partitions import source_model_key
from .registry import register_sources


class RunFailed(RuntimeError):
    pass


def _first_failure(result: ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.event_type == DagsterEventType.STEP_FAILURE:
            err = event.event_specific_data.error
            # The user's exception is the innermost cause; Dagster wraps it.
            while err.cause is not None:
                err = err.cause
            return f"step {event.step_key}: {err.message.strip().splitlines()[-1] if err.message.strip() else err.cls_name}"
    return "run failed"


def _execute(job_name: str, partition_key, instance: DagsterInstance, progress_bar: bool) -> ExecuteInProcessResult:
    from .definitions import defs

    run_config: dict = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}  # progress lines, not DEBUG noise
    if job_name == "embed_and_upsert":
        run_config["resources"] = {"embedder": {"config": {"progress_bar": progress_bar}}}
    job = defs.resolve_job_def(job_name)
    result = job.execute_in_process(partition_key=partition_key, instance=instance, run_config=run_config,
                                    raise_on_error=False)
    if not result.success:
        raise RunFailed(f"run {result.run_id[:8]} ({job_name}) failed: {_first_failure(result)}")
    return result


def _metadata(result: ExecuteInProcessResult, asset: str) -> dict:
    for m in result.asset_materializations_for_node(asset):
        return {k: v.value for k, v in m.metadata.items()}
    return {}


def index_source(source: str, model: str, instance: DagsterInstance | None = None, progress_bar: bool = False) -> str:
    """Snapshot + chunk (per source), then embed + upsert (per source × model). Returns a summary."""
    instance = instance or DagsterInstance.get()
    register_sources(instance, [source])
    r1 = _execute("snapshot_and_chunk", source, instance, progress_bar)
    r2 = _execute("embed_and_upsert", source_model_key(source, model), instance, progress_bar)
    c, e, q = _metadata(r1, "chunks"), _metadata(r2, "embeddings"), _metadata(r2, "qdrant_collection")
    return (
        f"indexed '{source}' at {str(c.get('commit', ''))[:12]} with {model}: {c.get('files_indexed')} files "
        f"({c.get('files_rechunked')} re-chunked), {c.get('chunks')} chunks; embedded {e.get('embedded')}, "
        f"reused {e.get('reused')}; collection {q.get('collection')}: {q.get('points')} points "
        f"(+{q.get('upserted')} -{q.get('deleted')}); runs {r1.run_id[:8]}, {r2.run_id[:8]}"
    )


def promote(source: str, model: str, instance: DagsterInstance | None = None) -> str:
    """Move the source's alias to this model's collection (a switch or a rollback), checks first."""
    instance = instance or DagsterInstance.get()
    result = _execute("promote_alias", source_model_key(source, model), instance, False)
    m = _metadata(result, "collection_alias")
    return f"alias '{source}': {m.get('previous')} -> {m.get('collection')} ({m.get('points')} points); run {result.run_id[:8]}"
