"""Asset checks: the blocking ones guard collection_alias (the alias moves only when they pass).

None passes on an empty partition; a check that cannot apply says so as a warning, never a pass.
"""

from pathlib import Path

import numpy as np
from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, asset_check

from ..indexing import collection_name
from ..models import get_model
from ..quality import (
    approximate_recall,
    blob_line_counts,
    chunk_quality,
    collection_quality,
    page_line_counts,
    recall_quality,
    vector_quality,
)
from .assets import chunks, embeddings, qdrant_collection
from .partitions import source_model_partitions, source_partitions
from .resources import RagSettings, VectorStoreResource

N_SAMPLE_QUERIES = 50


def _table(settings: RagSettings, asset: str, partition: str):
    table = settings.previous(asset, partition)
    if table is None:
        raise FileNotFoundError(f"{asset} for partition '{partition}' is not materialized")
    return table


def _result(passed: bool | None, meta: dict) -> AssetCheckResult:
    if passed is None:  # cannot be measured here: a visible warning, not a silent pass
        return AssetCheckResult(passed=False, severity=AssetCheckSeverity.WARN, metadata=meta,
                                description=meta.get("reason", "not applicable"))
    return AssetCheckResult(passed=bool(passed), metadata=meta)


@asset_check(asset=chunks, partitions_def=source_partitions, blocking=True)
def chunks_are_sane(context: AssetCheckExecutionContext, settings: RagSettings) -> AssetCheckResult:
    """Chunks exist; none is empty; all fit the token budget; spans are 1-based and inside the file."""
    table = _table(settings, "chunks", context.partition_key)
    if settings.source(context.partition_key).kind == "docs":
        counts = page_line_counts(_table(settings, "doc_pages", context.partition_key).df)
    else:
        snap = _table(settings, "repo_snapshot", context.partition_key)
        counts = blob_line_counts(Path(snap.meta["mirror"]), table.df["blob_sha"].unique())
    return _result(*chunk_quality(table.df, settings.max_tokens, counts))


@asset_check(asset=embeddings, partitions_def=source_model_partitions, blocking=True)
def vectors_are_sane(context: AssetCheckExecutionContext, settings: RagSettings) -> AssetCheckResult:
    """Right dimension, no NaN or zero vectors, unit norms when the model normalises."""
    results = []  # a batched backfill run checks every partition it embedded; all must pass
    for key in context.partition_keys:
        spec = get_model(source_model_partitions.get_partition_key_from_str(key).keys_by_dimension["model"])
        results.append(vector_quality(_table(settings, "embeddings", key).vectors, spec.dim, spec.normalize))
    if len(results) == 1:
        return _result(*results[0])
    failed = [k for k, (ok, _) in zip(context.partition_keys, results) if not ok]
    return _result(not failed, {"partitions": len(results), "failed": ", ".join(failed) or "none"})


@asset_check(asset=qdrant_collection, partitions_def=source_model_partitions, blocking=True)
def points_match_chunks(
    context: AssetCheckExecutionContext, settings: RagSettings, store: VectorStoreResource,
) -> AssetCheckResult:
    """One point per chunk, payload indexes present, indexed at the snapshot's commit (freshness)."""
    keys = context.partition_key.keys_by_dimension
    table = _table(settings, "chunks", keys["source"])
    with store.open() as s:
        return _result(*collection_quality(s, collection_name(keys["source"], keys["model"]), table.df,
                                           table.meta.get("commit", "")))


@asset_check(asset=qdrant_collection, partitions_def=source_model_partitions, blocking=True)
def golden_recall(
    context: AssetCheckExecutionContext, settings: RagSettings, store: VectorStoreResource,
) -> AssetCheckResult:
    """recall@10 and MRR@10 on the source's golden queries, against settings.min_recall."""
    keys = context.partition_key.keys_by_dimension
    with store.open() as s:
        return _result(*recall_quality(s, keys["source"], keys["model"], settings.source(keys["source"]).queries,
                                       settings.min_recall))


@asset_check(asset=qdrant_collection, partitions_def=source_model_partitions, blocking=True)
def approximate_search_recall(
    context: AssetCheckExecutionContext, settings: RagSettings, store: VectorStoreResource,
) -> AssetCheckResult:
    """Default search (HNSW, quantized + rescored when enabled) finds >= 95 % of exact search's top 10.

    Query vectors are a fixed sample of the collection's own points: no model to load, so the check
    costs milliseconds on every incremental run.
    """
    keys = context.partition_key.keys_by_dimension
    with store.open() as s:
        name = collection_name(keys["source"], keys["model"])
        if s.engine == "local" or not s.collection_exists(name):
            return _result(*approximate_recall(s, name, np.zeros((0, 1)), settings.quantize))
        ids = sorted(s.ids(name))
        sample = [ids[i] for i in np.random.default_rng(0).choice(len(ids), min(N_SAMPLE_QUERIES, len(ids)), replace=False)]
        vectors = s.get_vectors(name, sample)
        return _result(*approximate_recall(s, name, np.stack([vectors[i] for i in sample]) if sample else
                                           np.zeros((0, 1)), settings.quantize))
