"""The code location: wiring only."""

from dagster import Definitions, EnvVar

from .defs import assets, checks, schedules, sensors
from .defs.jobs import embed_job, promote_job, snapshot_job
from .defs.resources import DocsFetcherResource, ParquetIOManager, RagSettings, VectorStoreResource
from .remote_embedding import EmbeddingRunner

settings = RagSettings()

defs = Definitions(
    assets=[assets.repo_snapshot, assets.doc_pages, assets.chunks, assets.embeddings, assets.qdrant_collection, assets.collection_alias],
    asset_checks=[
        checks.chunks_are_sane, checks.vectors_are_sane, checks.points_match_chunks, checks.golden_recall,
        checks.approximate_search_recall,
    ],
    jobs=[snapshot_job, embed_job, promote_job],
    sensors=[sensors.git_heads_sensor, sensors.sources_sensor, sensors.first_index_sensor],
    schedules=[schedules.nightly_docs_refresh, schedules.weekly_reembed],
    resources={
        "settings": settings,
        "parquet_io": ParquetIOManager(settings=settings),
        "store": VectorStoreResource(),
        "docs_fetcher": DocsFetcherResource(),
        "embedder": EmbeddingRunner(mode=EnvVar("RAG_EMBED_MODE").get_value("in_process")),
    },
)
