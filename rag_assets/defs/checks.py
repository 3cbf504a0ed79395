"""Asset checks that guard what search relies on. None of them passes on an empty partition."""


from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, asset_check

from ..indexing import collection_name
from ..models import get_model
from ..tables import read_table_if_exists, table_path
from .assets import chunks, qdrant_collection
from .partitions import source_model_partitions, source_partitions
from .resources import RagSettings, VectorStoreResource


def _chunks_table(settings: RagSettings, source: str):
    table = read_table_if_exists(table_path(settings.root, "chunks", source))
    if table is None:
        raise FileNotFoundError(f"chunks for source '{source}' are not materialized")
    return table


@asset_check(asset=chunks, partitions_def=source_partitions, blocking=True)
def chunks_are_sane(context: AssetCheckExecutionContext, settings: RagSettings) -> AssetCheckResult:
    """Chunks exist, none is empty, every one fits the token budget and has a valid 1-based span."""
    df = _chunks_table(settings, context.partition_key).df
    empty = int((df["text"].str.strip() == "").sum())
    over = int((df["n_tokens"] > settings.max_tokens).sum())
    bad_span = int(((df["start_line"] < 1) | (df["end_line"] < df["start_line"])).sum())
    return AssetCheckResult(
        passed=len(df) > 0 and empty == 0 and over == 0 and bad_span == 0,
        metadata={"chunks": len(df), "empty": empty, "over_budget": over, "bad_spans": bad_span},
    )


@asset_check(asset=qdrant_collection, partitions_def=source_model_partitions, blocking=True)
def points_match_chunks(
    context: AssetCheckExecutionContext, settings: RagSettings, store: VectorStoreResource,
) -> AssetCheckResult:
    """The collection holds exactly one point per chunk, indexed at the snapshot's commit."""
    keys = context.partition_key.keys_by_dimension
    table = _chunks_table(settings, keys["source"])
    name = collection_name(keys["source"], get_model(keys["model"]).key)
    with store.open() as s:
        points = s.count(name) if s.collection_exists(name) else 0
        indexed = s.get_metadata(name).get("indexed_commit") if points else None
    commit = table.meta.get("commit")
    return AssetCheckResult(
        passed=points > 0 and points == len(table.df) and indexed == commit,
        severity=AssetCheckSeverity.ERROR,
        metadata={"points": points, "chunks": len(table.df), "indexed_commit": str(indexed), "snapshot_commit": str(commit)},
    )
