"""Asset checks: the blocking ones guard collection_alias (the alias moves only when they pass).

None passes on an empty partition; a check that cannot apply says so as a warning, never a pass.
"""

import dagster as dg
import numpy as np

from rag_assets.chunking.quality import chunk_quality
from rag_assets.contract import collection_name
from rag_assets.defs.assets import chunks, embeddings, golden_gate, qdrant_collection
from rag_assets.defs.partitions import source_model_partitions, source_partitions
from rag_assets.defs.resources import RagSettings, VectorStoreResource
from rag_assets.embedding.models import get_model
from rag_assets.embedding.quality import vector_quality
from rag_assets.store.quality import approximate_recall, collection_quality
from rag_assets.tables import Tables

N_SAMPLE_QUERIES = 50


def _result(passed: bool | None, meta: dict) -> dg.AssetCheckResult:
    if passed is None:  # cannot be measured here: a visible warning, not a silent pass
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN, metadata=meta,
                                description=meta.get("reason", "not applicable"))
    return dg.AssetCheckResult(passed=bool(passed), metadata=meta)


@dg.asset_check(asset=chunks, partitions_def=source_partitions, blocking=True)
def chunks_are_sane(context: dg.AssetCheckExecutionContext, settings: RagSettings) -> dg.AssetCheckResult:
    """Chunks exist; none is empty; all fit the token budget; spans are 1-based and inside the file."""
    table = settings.tables.require(Tables.CHUNKS, context.partition_key)
    _, reader = settings.reader(context.partition_key)
    docs = reader.documents(settings.tables.require(reader.table, context.partition_key))
    return _result(*chunk_quality(table.df, settings.max_tokens, docs.line_counts(table.df["blob_sha"].unique())))


@dg.asset_check(asset=embeddings, partitions_def=source_model_partitions, blocking=True)
def vectors_are_sane(context: dg.AssetCheckExecutionContext, settings: RagSettings) -> dg.AssetCheckResult:
    """Right dimension, no NaN or zero vectors, unit norms when the model normalises."""
    results = []  # a batched backfill run checks every partition it embedded; all must pass
    for key in context.partition_keys:
        spec = get_model(source_model_partitions.get_partition_key_from_str(key).keys_by_dimension["model"])
        results.append(vector_quality(settings.tables.require(Tables.EMBEDDINGS, key).vectors, spec.dim, spec.normalize))
    if len(results) == 1:
        return _result(*results[0])
    failed = [k for k, (ok, _) in zip(context.partition_keys, results) if not ok]
    return _result(not failed, {"partitions": len(results), "failed": ", ".join(failed) or "none"})


@dg.asset_check(asset=qdrant_collection, partitions_def=source_model_partitions, blocking=True)
def points_match_chunks(
    context: dg.AssetCheckExecutionContext, settings: RagSettings, store: VectorStoreResource,
) -> dg.AssetCheckResult:
    """One point per chunk, payload indexes present, indexed at the snapshot's commit (freshness)."""
    keys = context.partition_key.keys_by_dimension
    table = settings.tables.require(Tables.CHUNKS, keys["source"])
    with store.open() as s:
        return _result(*collection_quality(s, collection_name(keys["source"], keys["model"]), table.df,
                                           table.meta.get("commit", "")))


@dg.asset_check(asset=qdrant_collection, partitions_def=source_model_partitions, blocking=True)
def golden_recall(
    context: dg.AssetCheckExecutionContext, settings: RagSettings, store: VectorStoreResource,
) -> dg.AssetCheckResult:
    """The recall gate: recall@10 and MRR@10 on the source's golden queries (the hand-written file, else the
    mined golden_queries) >= the live collection's minus RAG_GATE_TOLERANCE, measured now on the same queries,
    and recall@10 >= RAG_RECALL_THRESHOLD. Fails on an empty collection."""
    keys = context.partition_key.keys_by_dimension
    with store.open() as s:
        passed, reason, meta = golden_gate(s, settings, keys["source"], keys["model"])
    if passed is None:
        return _result(None, meta)
    return dg.AssetCheckResult(passed=bool(passed), metadata=meta, description=reason)


@dg.asset_check(asset=qdrant_collection, partitions_def=source_model_partitions, blocking=True)
def approximate_search_recall(
    context: dg.AssetCheckExecutionContext, settings: RagSettings, store: VectorStoreResource,
) -> dg.AssetCheckResult:
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
