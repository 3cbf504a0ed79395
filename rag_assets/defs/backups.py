"""Backups: a nightly snapshot of the embedded store (rag_assets/store/backup.py), keeping the newest N
(RAG_BACKUP_KEEP, default 7) in RAG_BACKUP_DIR (default <data_dir>/backups).

The op runs in the store's pool, so it never overlaps an index step of another run; a store held by
another process fails the run, which Dagster retries from failure.
"""


import dagster as dg

from rag_assets import settings as env
from rag_assets.defs.assets import STORE_POOL
from rag_assets.defs.resources import RagSettings
from rag_assets.defs.retries import retry_tags
from rag_assets.store.backup import prune_snapshots, snapshot_store

BACKUP_JOB = "store_backup"


@dg.op(pool=STORE_POOL)
def store_snapshot(context: dg.OpExecutionContext, settings: RagSettings) -> dg.Output[str]:
    """Snapshot the whole embedded store, then delete all but the newest RAG_BACKUP_KEEP snapshots."""
    cfg = env.current()
    if cfg.qdrant_url:
        context.log.info("QDRANT_URL is set: a Qdrant server takes its own snapshots; nothing to do")
        return dg.Output("", metadata={"skipped": "Qdrant server"})
    out_dir = cfg.backup_dir or settings.root / "backups"
    path, manifest = snapshot_store(settings.root, out_dir)
    pruned = prune_snapshots(out_dir, cfg.backup_keep)
    points = sum(c["points"] for c in manifest["collections"].values())
    context.log.info(f"snapshot {path} ({len(manifest['collections'])} collections, {points} points); "
                     f"deleted {len(pruned)} older")
    return dg.Output(str(path), metadata={
        "path": str(path), "bytes": path.stat().st_size, "collections": len(manifest["collections"]),
        "points": points, "aliases": dg.MetadataValue.json(manifest["aliases"]), "kept": cfg.backup_keep,
        "deleted": dg.MetadataValue.json([p.name for p in pruned])})


@dg.job(name=BACKUP_JOB, description="Snapshot the embedded store (collections, aliases, metadata) and keep the "
        "newest RAG_BACKUP_KEEP snapshots.")
def store_backup_job():
    store_snapshot()


@dg.schedule(job=store_backup_job, cron_schedule="30 2 * * *", execution_timezone="UTC")
def nightly_store_backup(context: dg.ScheduleEvaluationContext):
    """02:30 UTC, before the docs refresh (03:00) and the weekly re-embed (Sunday 04:00)."""
    return dg.RunRequest(run_key=f"backup:{context.scheduled_execution_time:%Y-%m-%d}", tags=retry_tags())
