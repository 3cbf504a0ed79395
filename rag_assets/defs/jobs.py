"""Jobs: the per-source steps and the per-(source, model) steps (partitions differ, so two jobs)."""

import dagster as dg

# Names the run launcher (service/runs.py), schedules and sensors refer to.
SNAPSHOT_JOB, EMBED_JOB, PROMOTE_JOB = "snapshot_and_chunk", "embed_and_upsert", "promote_alias"

snapshot_job = dg.define_asset_job(
    SNAPSHOT_JOB,
    selection=dg.AssetSelection.assets("repo_snapshot", "doc_pages", "chunks", "golden_queries"),
    description="Fetch a source (git mirror or docs pages), chunk it and mine its golden queries (per source).",
)
embed_job = dg.define_asset_job(
    EMBED_JOB,
    selection=dg.AssetSelection.assets("embeddings", "qdrant_collection", "collection_alias"),
    description="Embed a source's chunks with one model, sync its Qdrant collection, and move the source's "
    "alias to it when the blocking checks pass (per source × model).",
)
promote_job = dg.define_asset_job(
    PROMOTE_JOB,
    selection=dg.AssetSelection.assets("collection_alias"),
    description="Point a source's alias at one model's collection after re-verifying it (switch or roll back).",
)
