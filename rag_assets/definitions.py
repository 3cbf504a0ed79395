"""The code location: wiring only. Resources read their settings at run time, never here."""

import dagster as dg

from rag_assets.defs import assets, backups, checks, failures, retries, schedules, sensors
from rag_assets.defs import memory
from rag_assets.defs.io_manager import ParquetIOManager
from rag_assets.defs.jobs import embed_job, promote_job, snapshot_job
from rag_assets.defs.resources import DocsFetcherResource, RagSettings, VectorStoreResource
from rag_assets.embedding.runners import EmbeddingRunner

settings = RagSettings()

defs = dg.Definitions(
    assets=[assets.repo_snapshot, assets.doc_pages, assets.chunks, assets.embeddings, assets.qdrant_collection,
            assets.collection_alias, assets.golden_queries, memory.memory_collection],
    asset_checks=[
        checks.chunks_are_sane, checks.vectors_are_sane, checks.points_match_chunks, checks.golden_recall,
        checks.approximate_search_recall,
    ],
    jobs=[snapshot_job, embed_job, promote_job, backups.store_backup_job, memory.memory_job],
    sensors=[sensors.git_heads_sensor, sensors.sources_sensor, sensors.first_index_sensor,
             failures.run_failures_sensor, failures.run_successes_sensor, retries.automation_sensor,
             memory.memory_sensor],
    schedules=[schedules.nightly_docs_refresh, schedules.weekly_reembed, backups.nightly_store_backup],
    resources={
        "settings": settings,
        "parquet_io": ParquetIOManager(settings=settings),
        "store": VectorStoreResource(),
        "docs_fetcher": DocsFetcherResource(),
        "embedder": EmbeddingRunner(),
    },
)
