"""Asset checks: the blocking ones guard collection_alias (the alias moves only when they pass).

None passes on an empty partition; a check that cannot apply says so as a warning, never a pass.

Cost at scale: every check streams its table (a row group at a time) or reads counts from the Parquet
footer, so none holds a whole table. Exact checks stay exact: chunks_are_sane and vectors_are_sane look at
every row (line counts of documents are cached by content key, which is exact: a blob's line count never
changes); points_match_chunks compares counts. Two checks measure estimates, and those sample:
approximate_search_recall (50 of the collection's own vectors, picked from the chunks table), and
golden_recall, whose measurement is reused while nothing its queries depend on changed
(retrieval/quality.py).
"""

import json

import dagster as dg
import numpy as np
import pandas as pd

from rag_assets.chunking import CHUNKER_VERSION
from rag_assets.chunking.quality import COLUMNS as CHUNK_CHECK_COLUMNS
from rag_assets.chunking.quality import chunk_quality_batches
from rag_assets.contract import collection_name, point_id
from rag_assets.defs.assets import chunks, embeddings, golden_gate, qdrant_collection
from rag_assets.defs.partitions import source_model_partitions, source_partitions
from rag_assets.defs.resources import RagSettings, VectorStoreResource
from rag_assets.embedding.models import get_model
from rag_assets.embedding.quality import vector_quality_batches
from rag_assets.retrieval.quality import REUSE_MAX_CHANGED, read_cache, write_cache
from rag_assets.store.quality import approximate_recall, collection_quality, exact_neighbours
from rag_assets.store.sync import CHANGED_KEY
from rag_assets.tables import Table, Tables, write_table

N_SAMPLE_QUERIES = 50


def _result(passed: bool | None, meta: dict) -> dg.AssetCheckResult:
    if passed is None:  # cannot be measured here: a visible warning, not a silent pass
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN, metadata=meta,
                                description=meta.get("reason", "not applicable"))
    return dg.AssetCheckResult(passed=bool(passed), metadata=meta)


def line_counts(settings: RagSettings, source: str, docs, keys) -> dict[str, int]:
    """Line count per content key (a git blob sha, a page's content hash), read only for keys not seen before.

    Keys name content, so a cached count is exact; the cache is rebuilt when the chunker version (its
    notion of a line) changes, and keeps only the keys in use."""
    keys = set(keys)
    cached = settings.previous(Tables.LINE_COUNTS, source)
    counts: dict[str, int] = {}
    if cached is not None and cached.meta.get("chunker") == CHUNKER_VERSION and len(cached):
        counts = {k: int(n) for k, n in zip(cached.column("key").to_pylist(), cached.column("lines").to_pylist())
                  if k in keys}
    missing = keys - set(counts)
    if missing:
        counts.update(docs.line_counts(sorted(missing)))
    if missing or cached is None or len(counts) != len(cached):
        write_table(settings.tables.path(Tables.LINE_COUNTS, source),
                    pd.DataFrame({"key": list(counts), "lines": list(counts.values())}), {"chunker": CHUNKER_VERSION})
    return counts


@dg.asset_check(asset=chunks, partitions_def=source_partitions, blocking=True)
def chunks_are_sane(context: dg.AssetCheckExecutionContext, settings: RagSettings) -> dg.AssetCheckResult:
    """Chunks exist; none is empty; all fit the token budget; spans are 1-based and inside the file.
    Every row, streamed a row group at a time."""
    table = settings.tables.require(Tables.CHUNKS, context.partition_key)
    _, reader = settings.reader(context.partition_key)
    docs = reader.documents(settings.tables.require(reader.table, context.partition_key))
    counts = line_counts(settings, context.partition_key, docs, table.column("blob_sha").unique().to_pylist())
    batches = (df for _, df, _ in table.batches(CHUNK_CHECK_COLUMNS))
    return _result(*chunk_quality_batches(batches, settings.max_tokens, counts))


def _vector_batches(table: Table):
    for group in range(len(table.row_groups())):
        yield table.row_group_vectors(group)


@dg.asset_check(asset=embeddings, partitions_def=source_model_partitions, blocking=True)
def vectors_are_sane(context: dg.AssetCheckExecutionContext, settings: RagSettings) -> dg.AssetCheckResult:
    """Right dimension, no NaN or zero vectors, unit norms when the model normalises. Every vector, streamed."""
    results = []  # a batched backfill run checks every partition it embedded; all must pass
    for key in context.partition_keys:
        spec = get_model(source_model_partitions.get_partition_key_from_str(key).keys_by_dimension["model"])
        table = settings.tables.require(Tables.EMBEDDINGS, key)
        results.append(vector_quality_batches(_vector_batches(table) if table.has_vectors else [], spec.dim,
                                              spec.normalize))
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
    table = settings.tables.require(Tables.CHUNKS, keys["source"])  # its footer: the row count, exact
    with store.read() as s:
        return _result(*collection_quality(s, collection_name(keys["source"], keys["model"]), len(table),
                                           table.meta.get("commit", "")))


@dg.asset_check(asset=qdrant_collection, partitions_def=source_model_partitions, blocking=True)
def golden_recall(
    context: dg.AssetCheckExecutionContext, settings: RagSettings, store: VectorStoreResource,
) -> dg.AssetCheckResult:
    """The recall gate: recall@10 and MRR@10 on the source's golden queries (the hand-written file, else the
    mined golden_queries) >= the live collection's minus RAG_GATE_TOLERANCE, measured now on the same queries,
    and recall@10 >= RAG_RECALL_THRESHOLD. Fails on an empty collection."""
    keys = context.partition_key.keys_by_dimension
    with store.read() as s:
        passed, reason, meta = golden_gate(s, settings, keys["source"], keys["model"])
    if passed is None:
        return _result(None, meta)
    return dg.AssetCheckResult(passed=bool(passed), metadata=meta, description=reason)


@dg.asset_check(asset=qdrant_collection, partitions_def=source_model_partitions, blocking=True)
def approximate_search_recall(
    context: dg.AssetCheckExecutionContext, settings: RagSettings, store: VectorStoreResource,
) -> dg.AssetCheckResult:
    """Default search (HNSW, quantized + rescored when enabled) finds >= 95 % of exact search's top 10.

    Query vectors are a fixed sample of the collection's own points: no model to load. A sample is sound
    here: the figure is an estimate of recall over all queries. The sample and its exact top 10 come from the
    embeddings table, read a row group at a time (points == chunks is checked exactly beside it): the check
    neither lists the collection's points nor runs exact store searches, which would map every vector into
    memory (535k points: 2.1 GB peak RSS). The measurement is reused while the same vectors, quantization and index settings hold and
    at most 1 % of the points changed since (a handful of points cannot move a 50-query estimate).
    """
    keys = context.partition_key.keys_by_dimension
    with store.read() as s:
        name = collection_name(keys["source"], keys["model"])
        if s.engine == "local" or not s.collection_exists(name):
            return _result(*approximate_recall(s, name, np.zeros((0, 1)), settings.quantize))
        cache = settings.root / "work" / "approximate_recall" / f"{name}.json"
        state = s.get_metadata(name)
        points = s.count(name)
        key = [state.get("vectors_run"), settings.quantize, s.collection_config(name)]
        kept = read_cache(cache)
        if kept and kept.get("key") == json.loads(json.dumps(key, default=str)):
            changed = int(state.get(CHANGED_KEY, 0)) - int(kept.get("points_changed", 0))
            if 0 <= changed <= REUSE_MAX_CHANGED * max(points, 1):
                ok, meta = kept["result"]
                return _result(ok, {**meta, "measured": f"reused the measurement at {kept.get('commit', '')[:12]}: "
                                                        f"{changed} of {points} points changed since"})
        # Queries and their exact neighbours from the embeddings table (streamed), not from the store: an
        # exact store search would map every vector of the collection into this process.
        emb = settings.tables.embeddings(keys["source"], keys["model"])
        n = len(emb) if emb is not None else 0
        rows = np.sort(np.random.default_rng(0).choice(n, min(N_SAMPLE_QUERIES, n), replace=False)) if n else []
        queries = emb.take(rows, ["chunk_id"], vectors=True)[1] if n else np.zeros((0, 1))
        truth = exact_neighbours(emb, queries, distance=get_model(keys["model"]).distance) if n else None
        if truth is not None:
            truth = [{point_id(c) for c in t} for t in truth]
        ok, meta = approximate_recall(s, name, queries, settings.quantize, exact=truth)
        if ok is not None and n:
            write_cache(cache, {"key": key, "points_changed": int(state.get(CHANGED_KEY, 0)),
                                "commit": state.get("indexed_commit", ""), "result": [ok, meta]})
        return _result(ok, {**meta, "measured": "now"})
