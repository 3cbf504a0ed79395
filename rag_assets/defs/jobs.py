"""Jobs: the per-source steps and the per-(source, model) steps (partitions differ, so two jobs)."""

from dagster import AssetSelection, define_asset_job

from .partitions import source_model_partitions, source_partitions

snapshot_job = define_asset_job(
    "snapshot_and_chunk",
    selection=AssetSelection.assets("repo_snapshot", "doc_pages", "chunks"),
    partitions_def=source_partitions,
    description="Fetch a source (git mirror or docs pages) and chunk it (per source).",
)
embed_job = define_asset_job(
    "embed_and_upsert",
    selection=AssetSelection.assets("embeddings", "qdrant_collection", "collection_alias"),
    partitions_def=source_model_partitions,
    description="Embed a source's chunks with one model, sync its Qdrant collection, and move the source's "
    "alias to it when the blocking checks pass (per source × model).",
)
promote_job = define_asset_job(
    "promote_alias",
    selection=AssetSelection.assets("collection_alias"),
    partitions_def=source_model_partitions,
    description="Point a source's alias at one model's collection after re-verifying it (switch or roll back).",
)
