"""Schedules: nightly docs refresh; weekly re-embed of every source with its live model."""

from __future__ import annotations

from dagster import RunRequest, ScheduleEvaluationContext, SkipReason, schedule

from rag_assets.embedding.models import live_model_key
from rag_assets.sources.config import SourcesError
from rag_assets.store import StoreError
from rag_assets.defs.jobs import embed_job, snapshot_job
from rag_assets.defs.partitions import source_model_key, source_partitions
from rag_assets.defs.resources import RagSettings, VectorStoreResource
from rag_assets.defs.retries import retry_tags


def _registered(context, settings: RagSettings, kind: str | None = None) -> list[str]:
    registered = set(context.instance.get_dynamic_partitions(source_partitions.name))
    return [n for n, s in settings.sources().items() if n in registered and (kind is None or s.kind == kind)]


@schedule(job=snapshot_job, cron_schedule="0 3 * * *", execution_timezone="UTC")
def nightly_docs_refresh(context: ScheduleEvaluationContext, settings: RagSettings):
    """Re-download every docs source (conditional GETs make unchanged pages cheap)."""
    try:
        names = _registered(context, settings, kind="docs")
    except SourcesError as e:
        return SkipReason(str(e))
    if not names:
        return SkipReason("no registered docs sources")
    return [RunRequest(partition_key=n, run_key=f"docs:{n}:{context.scheduled_execution_time:%Y-%m-%d}",
                       tags=retry_tags()) for n in names]


def live_models(store: VectorStoreResource, names: list[str]) -> dict[str, str]:
    """Each source's live model, read from its alias; the default model where the store can't say."""
    out = {n: live_model_key() for n in names}
    try:
        with store.open() as s:
            for n in names:
                target = s.resolve_alias(n)
                if target:
                    out[n] = s.get_metadata(target).get("model", out[n])
    except StoreError:
        pass  # busy or unreachable: the registry default is the best guess; checks still gate the result
    return out


@schedule(job=embed_job, cron_schedule="0 4 * * 0", execution_timezone="UTC")
def weekly_reembed(context: ScheduleEvaluationContext, settings: RagSettings, store: VectorStoreResource):
    """Re-embed every source from scratch with its live model; the same checks gate the alias."""
    try:
        names = _registered(context, settings)
    except SourcesError as e:
        return SkipReason(str(e))
    if not names:
        return SkipReason("no registered sources")
    week = context.scheduled_execution_time.strftime("%G-W%V")
    return [
        RunRequest(partition_key=source_model_key(n, m), run_key=f"reembed:{n}:{m}:{week}",
                   run_config={"ops": {"embeddings": {"config": {"force": True}}}}, tags=retry_tags())
        for n, m in live_models(store, names).items()
    ]
