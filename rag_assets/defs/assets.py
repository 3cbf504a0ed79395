"""The indexing assets, one group per stage:

sources (repo_snapshot | doc_pages) -> chunking (chunks) -> embedding (embeddings) -> store (qdrant_collection,
collection_alias); retrieval (golden_queries, mined from chunks for the recall gate). Thin wrappers: the work
is in the stage packages; here we add partitions, lineage and metadata.
"""

import re
import time
from collections import Counter
from dataclasses import dataclass, field, replace

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from rag_assets.chunking import CHUNKER_VERSION
from rag_assets.chunking.documents import ChunkStats, build_chunks
from rag_assets.contract import CHUNK_COLUMNS, collection_name
from rag_assets.defs.automation import refresh_existing
from rag_assets.defs.partitions import source_model_partitions, source_partitions
from rag_assets.defs.progress import Progress
from rag_assets.defs.resources import DocsFetcherResource, RagSettings, VectorStoreResource
from rag_assets.embedding.incremental import embed_table, embedding_schema
from rag_assets.embedding.models import MODELS, get_model
from rag_assets.embedding.runners import EmbeddingRunner
from rag_assets.retrieval.mining import (
    DEFAULT_CAP, DEFAULT_SEED, MINING_VERSION, RECIPE, load_cache, mine_table, save_cache,
)
from rag_assets.retrieval.quality import query_sets, recall_gate
from rag_assets.sources.readers import FetchContext
from rag_assets.store.quality import collection_quality
from rag_assets.store.sync import sync_collection
from rag_assets.tables import Table, Tables, TableWriter

STORE_POOL = "qdrant_store"  # dagster.yaml limits every pool to 1: one writer to the embedded store


def _preview(df: pd.DataFrame, cols: list[str], n: int = 8) -> dg.MetadataValue:
    rows = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    rows += ["| " + " | ".join(str(v).replace("|", "\\|") for v in r) + " |" for r in df[cols].head(n).itertuples(index=False)]
    return dg.MetadataValue.md("\n".join(rows) if len(df) else "_empty_")


def _fetch(context: dg.AssetExecutionContext, settings: RagSettings, asset: str,
           docs_fetcher: DocsFetcherResource | None = None) -> dg.Output[Table]:
    """Fetch a source with its kind's reader, when that reader writes this asset's table.

    Each source feeds chunks from one fetch asset; the other records an explicit "not applicable"
    empty table, so lineage holds for every source."""
    source, reader = settings.reader(context.partition_key)
    if reader.table != asset:
        return dg.Output(Table(pd.DataFrame(), {"kind": source.kind, "not_applicable": True}),
                         data_version=dg.DataVersion(f"n/a:{source.kind}"),
                         metadata={"note": f"source '{source.name}' is a {source.kind} source: nothing for {asset}"})
    last = [0]

    def progress(done: int, total: int) -> None:
        if done * 10 // max(total, 1) > last[0] * 10 // max(total, 1) or done == total:
            context.log.info(f"{source.name}: {done}/{total} documents")
        last[0] = done

    t0 = time.perf_counter()
    fetched = reader.fetch(source, FetchContext(
        settings.root, previous=settings.previous(asset, context.partition_key),
        fetcher_factory=docs_fetcher.fetcher if docs_fetcher else None, progress=progress, log=context.log))
    context.log.info(fetched.summary)
    metadata = {"seconds": round(time.perf_counter() - t0, 2), **fetched.metadata}
    if "page_id" in fetched.table.df:
        metadata["preview"] = _preview(fetched.table.df, ["page_id", "title", "status", "error"])
    return dg.Output(fetched.table, data_version=dg.DataVersion(fetched.version), metadata=metadata)


@dg.asset(
    partitions_def=source_partitions, io_manager_key="parquet_io", group_name="sources", kinds={"git"},
    code_version="1",
)
def repo_snapshot(context: dg.AssetExecutionContext, settings: RagSettings) -> dg.Output[Table]:
    """A bare mirror of the source's branch, fetched; the table lists every tracked file and why any is skipped."""
    return _fetch(context, settings, Tables.SNAPSHOT)


@dg.asset(
    partitions_def=source_partitions, io_manager_key="parquet_io", group_name="sources", kinds={"html"},
    code_version="1",
)
def doc_pages(context: dg.AssetExecutionContext, settings: RagSettings,
              docs_fetcher: DocsFetcherResource) -> dg.Output[Table]:
    """A documentation library's pages as Markdown: conditional GETs, retries, robots.txt, deduplication.

    A failing page never fails the library; a page that fails now keeps its previous text (still searchable).
    """
    return _fetch(context, settings, Tables.PAGES, docs_fetcher)


@dg.asset(
    partitions_def=source_partitions, io_manager_key="parquet_io", group_name="chunking", kinds={"python"},
    code_version=CHUNKER_VERSION, automation_condition=refresh_existing,
)
def chunks(context: dg.AssetExecutionContext, settings: RagSettings, repo_snapshot: Table, doc_pages: Table) -> Table:
    """Syntax-aware chunks (definitions for code, headings for Markdown/RST, line windows otherwise),
    token-counted, with symbol, signature and imports."""
    source, reader = settings.reader(context.partition_key)
    docs = reader.documents({Tables.SNAPSHOT: repo_snapshot, Tables.PAGES: doc_pages}[reader.table])
    t0 = time.perf_counter()
    progress = Progress("chunking documents", len(docs.wanted), context.log)
    # Streamed: reused rows are copied from the previous table row group by row group, new documents are
    # chunked a slice at a time, and the two sorted streams are merged into the new file (bounded memory).
    meta = {"commit": docs.version, "chunker": CHUNKER_VERSION, "max_tokens": settings.max_tokens}
    with TableWriter(settings.tables.path(Tables.CHUNKS, context.partition_key), meta, CHUNKS_SCHEMA) as writer:
        stats, summary = stream_chunks(source.name, docs, settings.previous(Tables.CHUNKS, context.partition_key),
                                       settings.max_tokens, progress, writer)
        table = writer.finish()
    secs = time.perf_counter() - t0
    for err in stats.errors:
        context.log.warning(err)
    context.add_output_metadata({
        "commit": meta["commit"], "chunks": summary.chunks, "tokens": summary.tokens,
        "max_tokens": settings.max_tokens, "files_indexed": stats.files_indexed,
        "files_rechunked": stats.files_rechunked, "files_reused": stats.files_reused,
        **{f"skipped_{k}": v for k, v in sorted(stats.skipped.items())},
        "errors": dg.MetadataValue.md("\n".join(f"- {e}" for e in stats.errors) or "none"),
        "by_language": dg.MetadataValue.json(dict(summary.by_language.most_common())),
        "by_language_files": dg.MetadataValue.json(dict(sorted(summary.files_by_language.items()))),
        "parse_failures": dg.MetadataValue.json(dict(stats.parse_failures)),
        "secrets_redacted": dg.MetadataValue.json(dict(stats.secrets_redacted)),
        "seconds": round(secs, 2),
        "preview": _preview(summary.head, ["path", "start_line", "end_line", "kind", "symbol", "n_tokens"]),
    })
    return table  # staged beside its path: the IO manager moves it into place


# Column types of the chunks table (streamed batches must agree on them).
CHUNKS_SCHEMA = pa.schema([
    (c, pa.int64() if c in ("part", "start_line", "end_line", "n_tokens") else
     pa.list_(pa.string()) if c == "imports" else pa.large_string()) for c in CHUNK_COLUMNS])
CHUNK_SLICE_FILES = 500  # new documents chunked per slice of the stream
_SORT = ["path", "start_line", "end_line"]


@dataclass
class ChunkSummary:
    """What the chunks asset reports, accumulated while the table streams past."""

    chunks: int = 0
    tokens: int = 0
    by_language: Counter = field(default_factory=Counter)
    files_by_language: Counter = field(default_factory=Counter)
    head: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CHUNK_COLUMNS))

    def add(self, t: pa.Table, last_path: str | None) -> str | None:
        if not t.num_rows:
            return last_path
        df = t.select(["path", "language", "n_tokens"]).to_pandas()
        self.chunks += len(df)
        self.tokens += int(df["n_tokens"].sum())
        self.by_language.update(df["language"].value_counts().to_dict())
        files = df.drop_duplicates("path")  # rows are sorted by path: a file spans consecutive rows
        if last_path is not None and files["path"].iloc[0] == last_path:
            files = files.iloc[1:]
        self.files_by_language.update(files["language"].value_counts().to_dict())
        if len(self.head) < 8:
            more = t.slice(0, 8 - len(self.head)).to_pandas()
            self.head = pd.concat([self.head, more], ignore_index=True) if len(self.head) else more
        return df["path"].iloc[-1]


def stream_chunks(source: str, docs, previous: Table | None, max_tokens: int, progress, writer: TableWriter
                  ) -> tuple[ChunkStats, ChunkSummary]:
    """`build_chunks`, streamed into `writer` in bounded memory; the same rows in the same order.

    The rows of documents chunked last time with the same settings (same path and content key) are read
    from the previous table a row group at a time (as Arrow, never through pandas); the other documents are
    chunked CHUNK_SLICE_FILES at a time (by path). Both streams are sorted by (path, start_line, end_line)
    and hold disjoint paths, so merging them by path gives the table build_chunks sorts in memory."""
    stats = ChunkStats(skipped=Counter(docs.skipped))
    commit = docs.version
    reusable = (previous is not None and len(previous) > 0 and previous.meta.get("chunker") == CHUNKER_VERSION
                and previous.meta.get("max_tokens") == max_tokens
                and set(CHUNK_COLUMNS) <= set(previous.column_names))
    wanted = dict(docs.wanted)
    reuse: set[tuple[str, str]] = set()
    dropped = False  # whether some rows of the previous table are not reused
    if reusable:
        pairs = pa.table({"path": previous.column("path"), "blob_sha": previous.column("blob_sha")})
        pairs = pairs.group_by(["path", "blob_sha"]).aggregate([])  # one row per document
        for path, key in zip(pairs.column("path").to_pylist(), pairs.column("blob_sha").to_pylist()):
            if wanted.get(path) == key:
                reuse.add((path, key))
            else:
                dropped = True
    todo = sorted((p, k) for p, k in docs.wanted if (p, k) not in reuse)
    stats.files_reused = stats.files_indexed = len(reuse)
    if progress and reuse:
        progress(len(reuse))
    commit_col = CHUNK_COLUMNS.index("commit")

    def kept():  # the previous table's rows of reused documents, in its (sorted) order
        if not reuse:
            return
        keys = pa.array(sorted(f"{p}\0{k}" for p, k in reuse), pa.large_string())
        for group in range(len(previous.row_groups())):
            t = previous.row_group(group, CHUNK_COLUMNS).cast(CHUNKS_SCHEMA)
            if dropped:
                sep = pa.scalar("\0", pa.large_string())
                doc = pc.binary_join_element_wise(t.column("path"), t.column("blob_sha"), sep)
                t = t.filter(pc.is_in(doc, value_set=keys))
            if t.num_rows:
                yield t

    def fresh():  # new documents' rows, CHUNK_SLICE_FILES documents at a time, in path order
        for lo in range(0, len(todo), CHUNK_SLICE_FILES):
            part = replace(docs, wanted=todo[lo:lo + CHUNK_SLICE_FILES], skipped=Counter())
            df, st, _ = build_chunks(source, part, None, max_tokens, progress)
            stats.files_indexed += st.files_indexed
            stats.files_rechunked += st.files_rechunked
            stats.skipped.update(st.skipped)
            stats.errors.extend(st.errors)
            stats.parse_failures.update(st.parse_failures)
            stats.secrets_redacted.update(getattr(st, "secrets_redacted", Counter()))
            if len(df):
                yield pa.Table.from_pandas(df.reindex(columns=CHUNK_COLUMNS), schema=CHUNKS_SCHEMA,
                                           preserve_index=False).replace_schema_metadata(None)

    summary, last_path = ChunkSummary(), None
    for t in _merge_by_path(kept(), fresh()):
        # Reused chunks are identical at the new commit.
        t = t.set_column(commit_col, CHUNKS_SCHEMA.field("commit"), pa.array([commit] * t.num_rows, pa.large_string()))
        writer.write(t)
        last_path = summary.add(t, last_path)
    return stats, summary


def _merge_by_path(a, b):
    """Merge two streams of Arrow tables, each sorted by _SORT, whose paths are disjoint; every document's rows
    lie in consecutive batches of one stream (b: in one batch). Yields sorted tables."""
    a, b = iter(a), iter(b)
    buf_a, buf_b = next(a, None), next(b, None)
    while buf_a is not None and buf_b is not None:
        bound = min(buf_a.column("path")[-1].as_py(), buf_b.column("path")[-1].as_py())
        take_a, take_b = pc.less_equal(buf_a.column("path"), bound), pc.less_equal(buf_b.column("path"), bound)
        out = pa.concat_tables([buf_a.filter(take_a), buf_b.filter(take_b)])
        yield out.sort_by([(c, "ascending") for c in _SORT])  # a stable sort
        buf_a, buf_b = buf_a.filter(pc.invert(take_a)), buf_b.filter(pc.invert(take_b))
        if not buf_a.num_rows:
            buf_a = next(a, None)
        if not buf_b.num_rows:
            buf_b = next(b, None)
    for buf, rest in ((buf_a, a), (buf_b, b)):
        while buf is not None:
            yield buf
            buf = next(rest, None)


@dg.asset(
    partitions_def=source_partitions, io_manager_key="parquet_io", group_name="retrieval", kinds={"python"},
    code_version=MINING_VERSION, automation_condition=refresh_existing,
)
def golden_queries(context: dg.AssetExecutionContext, settings: RagSettings, chunks: Table) -> dg.Output[Table]:
    """Golden queries mined from the source's chunks: a definition's docstring (first sentence, >= 6 words,
    without the definition's own name) is the query, the definition's span the target. At most 50, seeded.

    They gate the alias (golden_recall) for a source without a hand-written `queries` file; with one, the
    file gates and these are reported beside it."""
    commit = str(chunks.meta.get("commit", ""))
    cache_path = settings.root / "work" / "mining" / f"{context.partition_key}.parquet"
    cache = load_cache(cache_path)
    df, stats, cache_out = mine_table(chunks, cap=DEFAULT_CAP, seed=DEFAULT_SEED, cache=cache)
    save_cache(cache_path, cache_out)
    hand_written = settings.source(context.partition_key).queries
    context.log.info(f"{context.partition_key}: mined {len(df)} golden queries from {stats.definitions} definitions "
                     f"at {commit[:12]}")
    meta = {"commit": commit, "recipe": RECIPE, "seed": DEFAULT_SEED, "cap": DEFAULT_CAP, "version": MINING_VERSION}
    return dg.Output(Table(df, meta), data_version=dg.DataVersion(f"{commit}:{RECIPE}:{MINING_VERSION}"), metadata={
        "commit": commit, "recipe": RECIPE, "queries": len(df),
        **{f"mining_{k}": v for k, v in stats.as_dict().items()},
        "mining_docstrings_parsed": stats.parsed,
        "gates": "no: the hand-written file gates (these are reported beside it)" if hand_written else
                 "yes: the source has no hand-written queries file",
        "hand_written": hand_written or "none",
        "preview": _preview(df, ["query", "path", "start_line", "end_line", "kind", "symbol"], n=12),
    })


def golden_gate(s, settings: RagSettings, source: str, model: str,
                report_all: bool = True) -> tuple[bool | None, str, dict]:
    """The recall gate of `model`'s collection of `source` against the live collection (retrieval/quality.py),
    on the hand-written queries when the source has a file, else on the mined ones; metadata ready for Dagster."""
    chunks = settings.tables.chunks(source)
    sets = query_sets(settings.source(source).queries, settings.tables.golden_queries(source), chunks)
    passed, reason, meta = recall_gate(s, source, model, sets, floor=settings.min_recall,
                                       tolerance=settings.tolerance, report_all=report_all, chunks=chunks,
                                       cache=settings.root / "work" / "gate" / f"{collection_name(source, model)}.json")
    return passed, reason, {k: dg.MetadataValue.md(v) if k.endswith("comparison") else v for k, v in meta.items()}


class EmbedConfig(dg.Config):
    force: bool = False  # re-encode every chunk, ignoring vectors from the last run (weekly re-embed)


@dg.asset(
    partitions_def=source_model_partitions, io_manager_key="parquet_io", group_name="embedding",
    kinds={"pytorch"}, code_version="|".join(f"{k}={m.version}" for k, m in MODELS.items()),
    automation_condition=refresh_existing,
    # A backfill embeds up to 25 partitions per run: the model loads once per run, not once per source.
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=25),
)
def embeddings(
    context: dg.AssetExecutionContext, config: EmbedConfig, chunks, embedder: EmbeddingRunner,
    settings: RagSettings,
) -> dg.Output:
    """One float32 vector per chunk; only chunks whose content is new are encoded (in process, in a
    Pipes subprocess, or on a remote GPU: the embedder resource's mode).

    `chunks` is a Table, or {source: Table} in a batched backfill run over several partitions."""
    keys = [source_model_partitions.get_partition_key_from_str(str(k)) for k in context.partition_keys]
    by_source = chunks if isinstance(chunks, dict) else {keys[0].keys_by_dimension["source"]: chunks}
    outputs = {str(k): _embed_partition(context, config, k, by_source[k.keys_by_dimension["source"]], embedder, settings)
               for k in keys}
    # An explicit Output: with a Pipes session open, Dagster collects results as events.
    if len(outputs) == 1:
        (table, metadata), = outputs.values()
        return dg.Output(table, metadata=metadata)
    context.log.info(f"embedded {len(outputs)} partitions in one run")
    return dg.Output({k: t for k, (t, _) in outputs.items()}, metadata={
        "partitions": len(outputs), "embedded": sum(m["embedded"] for _, m in outputs.values()),
        "reused": sum(m["reused"] for _, m in outputs.values()),
        "by_partition": dg.MetadataValue.json({k: {f: m[f] for f in ("chunks", "embedded", "reused", "deleted")}
                                            for k, (_, m) in outputs.items()}),
    })


def reused_all_vectors(previous: Table | None, spec) -> bool:
    """Whether this run kept the previous vectors (same model version): else every vector is new."""
    return previous is not None and previous.meta.get("model_version") == spec.version


def _embed_partition(context, config: EmbedConfig, key, chunks: Table, embedder: EmbeddingRunner,
                     settings: RagSettings) -> tuple[Table, dict]:
    spec = get_model(key.keys_by_dimension["model"])
    previous = None if config.force else settings.previous(Tables.EMBEDDINGS, str(key))
    run_stats: dict = {}
    progress: list[Progress] = []  # one bar for every slice of new texts

    def on_new(n: int) -> None:
        progress.append(Progress(f"embedding {key} with {spec.key}", n, context.log, bar=embedder.progress_bar))

    def encode(texts: list[str], hashes: list[str]):
        workdir = settings.root / "work" / "embed" / re.sub(r"[^\w.-]", "_", str(key))
        vectors, stats = embedder.embed(context, texts, hashes, spec.key, workdir, progress=progress[0])
        load = max(float(run_stats.get("load_seconds", 0.0)), float(stats.get("load_seconds", 0.0)))
        run_stats.update(stats, load_seconds=load)
        return vectors

    # Streamed (embedding/incremental.py): the vectors of unchanged content are copied from the previous
    # table row group by row group; only new content is read and encoded.
    meta = {"model": spec.key, "model_version": spec.version, "dim": spec.dim, "commit": chunks.meta.get("commit"),
            # A forced re-embed replaces every vector: the collection must rewrite its points, not only add new ones.
            "vectors_run": previous.meta.get("vectors_run", "") if reused_all_vectors(previous, spec) else context.run.run_id}
    with TableWriter(settings.tables.path(Tables.EMBEDDINGS, str(key)), meta, embedding_schema(spec.dim)) as writer:
        try:
            stats = embed_table(chunks, previous, spec, encode, writer, on_new=on_new)
        finally:
            for p in progress:
                p.close()
        table = writer.finish()
    metadata = {
        "model": spec.key, "model_version": spec.version, "dim": spec.dim,
        "query_prompt": spec.query_prompt or "none", "document_prompt": spec.document_prompt or "none",
        "commit": chunks.meta.get("commit", ""), "chunks": len(table), "embedded": stats.embedded,
        "reused": stats.reused, "deleted": stats.deleted, "forced": config.force,
        "mode": embedder.effective_mode, "device": run_stats.get("device", "-"),
        "texts_per_s": float(run_stats.get("texts_per_s", 0.0)),
        "embed_seconds": round(stats.seconds, 2), "model_load_seconds": float(run_stats.get("load_seconds", 0.0)),
    }
    return table, metadata


@dg.asset(
    partitions_def=source_model_partitions, group_name="store", kinds={"qdrant"}, pool=STORE_POOL,
    ins={"chunks": dg.AssetIn(), "embeddings": dg.AssetIn()}, code_version="1", automation_condition=refresh_existing,
)
def qdrant_collection(
    context: dg.AssetExecutionContext, chunks: Table, embeddings: Table, store: VectorStoreResource,
    settings: RagSettings,
) -> dg.MaterializeResult:
    """The searchable copy: one collection per source × model. Never touches the live alias."""
    keys = context.partition_key.keys_by_dimension
    source, spec = keys["source"], get_model(keys["model"])
    name = collection_name(source, spec.key)
    commit = chunks.meta.get("commit", "")
    progress = Progress(f"upserting into {name}", len(chunks), context.log)
    with store.open() as s:
        # Streamed (store/sync.py): the diff reads chunk ids only, rows to upsert are read a row group at a time.
        stats = sync_collection(
            s, name, chunks, embeddings, dim=spec.dim, distance=spec.distance, progress=progress,
            meta={"indexed_commit": commit, "model": spec.key, "model_version": spec.version, "source": source},
            quantization=settings.quantize, indexing_threshold=settings.indexing_threshold_kb,
            ledger=settings.tables.ledger_path(name),
        )
        alias_target = s.resolve_alias(source)
    return dg.MaterializeResult(metadata={
        "collection": name, "engine": s.engine, "commit": commit, "points": stats.points,
        "upserted": stats.upserted, "deleted": stats.deleted, "unchanged": stats.unchanged,
        "live_alias": f"{source} -> {alias_target}", "seconds": round(stats.seconds, 2), "model": spec.key,
        "dim": spec.dim, "quantization": settings.quantize or "none", "diff": stats.diff,
        "diff_seconds": round(stats.diff_seconds, 3), "delete_seconds": round(stats.delete_seconds, 3),
        "upsert_seconds": round(stats.upsert_seconds, 3), "finalize_seconds": round(stats.finalize_seconds, 3),
    })


class AliasConfig(dg.Config):
    force: bool = False  # move the alias although the candidate measures below the live collection (recorded)


@dg.asset(
    partitions_def=source_model_partitions, group_name="store", kinds={"qdrant"}, pool=STORE_POOL,
    deps=[qdrant_collection], code_version="1",
)
def collection_alias(context: dg.AssetExecutionContext, config: AliasConfig, store: VectorStoreResource,
                     settings: RagSettings) -> dg.MaterializeResult:
    """Points the source's alias (what search uses) at this model's collection, atomically.

    In the index run it only runs when the blocking checks on qdrant_collection passed. Run alone
    (a rollback: materialize the old model's partition) it re-verifies the same measures first: points
    match chunks, and the recall gate (recall@10 and MRR@10 >= the live collection's - tolerance, recall@10
    >= the floor). `force` skips only the comparison with the live collection, and is recorded.
    """
    keys = context.partition_key.keys_by_dimension
    source, spec = keys["source"], get_model(keys["model"])
    name = collection_name(source, spec.key)
    with store.open() as s:
        if not s.collection_exists(name):  # never built: nothing to check, nothing to point at
            raise dg.Failure(f"source '{source}' is not indexed with model '{spec.key}' (no collection {name}); "
                             f"build it first: rag-assets index {source} --model {spec.key}")
        chunks_table = settings.tables.chunks(source)
        if chunks_table is None:
            raise dg.Failure(f"source '{source}': chunks are not materialized")
        ok, meta = collection_quality(s, name, len(chunks_table), chunks_table.meta.get("commit", ""))
        recall_ok, reason, recall_meta = golden_gate(s, settings, source, spec.key, report_all=False)
        before = s.resolve_alias(source)
        # --force overrides only a candidate that falls below the live one; the floor and points == chunks hold.
        overridden = bool(config.force and recall_ok is False and recall_meta.get("passed_floor")
                          and not recall_meta.get("passed_live", True))
        if not ok or (recall_ok is False and not overridden):
            why = reason if recall_ok is False else (
                f"{meta['points']} points for {meta['chunks']} chunks, indexed at {meta['indexed_commit'][:12]}, "
                f"snapshot {meta['snapshot_commit'][:12]}, missing payload indexes: {meta['missing_payload_indexes']}")
            raise dg.Failure(f"alias '{source}' stays on {before}: {name} fails its checks: {why}",
                             metadata={**meta, **recall_meta, "forced": bool(config.force)})
        s.set_alias(source, name)
    context.log.info(f"alias {source}: {before} -> {name}" + (f" (forced past: {reason})" if overridden else ""))
    return dg.MaterializeResult(metadata={
        "alias": source, "collection": name, "previous": str(before), "forced": bool(config.force),
        "gate": reason, "gate_overridden": overridden, **meta, **{f"golden_{k}": v for k, v in recall_meta.items()},
    })
