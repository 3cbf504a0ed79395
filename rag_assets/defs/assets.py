"""The indexing assets: repo_snapshot -> chunks -> embeddings -> qdrant_collection.

Thin wrappers: the work is in rag_assets.indexing; here we add partitions, lineage and metadata.
"""


import re
import time
from pathlib import Path

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetIn,
    BackfillPolicy,
    Config,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
    Output,
    asset,
)

from ..chunking import CHUNKER_VERSION
from ..docs import download_library, indexable
from ..ids import content_hash
from ..indexing import (
    Snapshot,
    build_chunks,
    build_doc_chunks,
    collection_name,
    embed_chunks,
    sync_collection,
    take_snapshot,
)
from ..models import MODELS, get_model
from ..quality import collection_quality, recall_quality
from ..progress import Progress
from ..tables import Table
from .automation import refresh_existing
from .partitions import source_model_partitions, source_partitions
from ..remote_embedding import EmbeddingRunner
from .resources import DocsFetcherResource, RagSettings, VectorStoreResource

STORE_POOL = "qdrant_store"  # dagster.yaml limits every pool to 1: one writer to the embedded store


def _preview(df: pd.DataFrame, cols: list[str], n: int = 8) -> MetadataValue:
    rows = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    rows += ["| " + " | ".join(str(v).replace("|", "\\|") for v in r) + " |" for r in df[cols].head(n).itertuples(index=False)]
    return MetadataValue.md("\n".join(rows) if len(df) else "_empty_")


@asset(
    partitions_def=source_partitions, io_manager_key="parquet_io", group_name="index", kinds={"git"},
    code_version="1",
)
def repo_snapshot(context: AssetExecutionContext, settings: RagSettings) -> Output[Table]:
    """A bare mirror of the source's branch, fetched; the table lists every tracked file and why any is skipped."""
    source = settings.source(context.partition_key)
    if source.kind != "git":
        return _not_applicable(source, "repo_snapshot")
    t0 = time.perf_counter()
    snap = take_snapshot(source, settings.mirrors)
    files = snap.files
    kept = files[files["skip"].isna()]
    skipped = files["skip"].value_counts().to_dict()
    context.log.info(f"{source.name}: {snap.commit[:12]}, {len(kept)} files to index, skipped {skipped}")
    return Output(
        Table(files, {"commit": snap.commit, "mirror": str(snap.mirror), "source": source.name}),
        data_version=DataVersion(snap.commit),
        metadata={
            "commit": snap.commit, "url": source.url, "branch": source.branch,
            "files": len(kept), "bytes": int(kept["size"].sum()), "files_tracked": len(files),
            **{f"skipped_{k}": int(v) for k, v in skipped.items()},
            "seconds": round(time.perf_counter() - t0, 2),
        },
    )


def _not_applicable(source, asset: str) -> Output[Table]:
    """Each source feeds chunks from one of repo_snapshot / doc_pages; the other records an empty table."""
    return Output(Table(pd.DataFrame(), {"kind": source.kind, "not_applicable": True}),
                  data_version=DataVersion(f"n/a:{source.kind}"),
                  metadata={"note": f"source '{source.name}' is a {source.kind} source: nothing for {asset}"})


@asset(
    partitions_def=source_partitions, io_manager_key="parquet_io", group_name="index", kinds={"html"},
    code_version="1",
)
def doc_pages(context: AssetExecutionContext, settings: RagSettings, docs_fetcher: DocsFetcherResource) -> Output[Table]:
    """A documentation library's pages as Markdown: conditional GETs, retries, robots.txt, deduplication.

    A failing page never fails the library; a page that fails now keeps its previous text (still searchable).
    """
    source = settings.source(context.partition_key)
    if source.kind != "docs":
        return _not_applicable(source, "doc_pages")
    previous = settings.previous("doc_pages", context.partition_key)
    prev_df = previous.df if previous is not None and not previous.meta.get("not_applicable") else None
    with docs_fetcher.fetcher() as fetcher:
        last = [0]

        def progress(done: int, total: int) -> None:
            if done * 10 // max(total, 1) > last[0] * 10 // max(total, 1) or done == total:
                context.log.info(f"{source.name}: {done}/{total} pages")
            last[0] = done

        df, stats = download_library(source.name, source.url, prev_df, fetcher, progress=progress,
                                     log=context.log)
    context.log.info(stats.summary())
    version = content_hash("".join(sorted(df["content_hash"].dropna())))
    return Output(
        Table(df, {"kind": "docs", "source": source.name, "version": version}),
        data_version=DataVersion(version),
        metadata={
            "url": source.url, "discovered": stats.discovered, "fetched": stats.fetched,
            "not_modified": stats.not_modified, "duplicates": stats.duplicates, "failed": stats.failed,
            "failed_reasons": MetadataValue.json(dict(stats.failed_reasons)), "kept_previous_text": stats.kept_previous_text,
            "bytes": stats.bytes, "seconds": round(stats.elapsed_s, 2),
            "preview": _preview(df, ["page_id", "title", "status", "error"]),
        },
    )


@asset(
    partitions_def=source_partitions, io_manager_key="parquet_io", group_name="index", kinds={"python"},
    code_version=CHUNKER_VERSION, automation_condition=refresh_existing,
)
def chunks(context: AssetExecutionContext, settings: RagSettings, repo_snapshot: Table, doc_pages: Table) -> Table:
    """Code-aware chunks (AST for Python, headings for Markdown/RST, line windows otherwise), token-counted."""
    source = settings.source(context.partition_key)
    previous = settings.previous("chunks", context.partition_key)
    t0 = time.perf_counter()
    if source.kind == "docs":
        pages = indexable(doc_pages.df)
        progress = Progress("chunking pages", len(pages), context.log)
        df, stats, meta = build_doc_chunks(source, pages, previous, settings.max_tokens, progress)
    else:
        snap = Snapshot(repo_snapshot.meta["commit"], Path(repo_snapshot.meta["mirror"]), repo_snapshot.df)
        progress = Progress("chunking files", int(snap.files["skip"].isna().sum()), context.log)
        df, stats, meta = build_chunks(source, snap, previous, settings.max_tokens, progress)
    secs = time.perf_counter() - t0
    for err in stats.errors:
        context.log.warning(err)
    context.add_output_metadata({
        "commit": meta["commit"], "chunks": len(df), "tokens": int(df["n_tokens"].sum()),
        "max_tokens": settings.max_tokens, "files_indexed": stats.files_indexed,
        "files_rechunked": stats.files_rechunked, "files_reused": stats.files_reused,
        **{f"skipped_{k}": v for k, v in sorted(stats.skipped.items())},
        "errors": MetadataValue.md("\n".join(f"- {e}" for e in stats.errors) or "none"),
        "by_language": MetadataValue.json(df["language"].value_counts().to_dict()),
        "seconds": round(secs, 2),
        "preview": _preview(df, ["path", "start_line", "end_line", "kind", "symbol", "n_tokens"]),
    })
    return Table(df, meta)


class EmbedConfig(Config):
    force: bool = False  # re-encode every chunk, ignoring vectors from the last run (weekly re-embed)


@asset(
    partitions_def=source_model_partitions, io_manager_key="parquet_io", group_name="index",
    kinds={"pytorch"}, code_version="|".join(f"{k}={m.version}" for k, m in MODELS.items()),
    automation_condition=refresh_existing,
    # A backfill embeds up to 25 partitions per run: the model loads once per run, not once per source.
    backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=25),
)
def embeddings(
    context: AssetExecutionContext, config: EmbedConfig, chunks, embedder: EmbeddingRunner,
    settings: RagSettings,
) -> Output:
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
        return Output(table, metadata=metadata)
    context.log.info(f"embedded {len(outputs)} partitions in one run")
    return Output({k: t for k, (t, _) in outputs.items()}, metadata={
        "partitions": len(outputs), "embedded": sum(m["embedded"] for _, m in outputs.values()),
        "reused": sum(m["reused"] for _, m in outputs.values()),
        "by_partition": MetadataValue.json({k: {f: m[f] for f in ("chunks", "embedded", "reused", "deleted")}
                                            for k, (_, m) in outputs.items()}),
    })


def _embed_partition(context, config: EmbedConfig, key, chunks: Table, embedder: EmbeddingRunner,
                     settings: RagSettings) -> tuple[Table, dict]:
    spec = get_model(key.keys_by_dimension["model"])
    previous = None if config.force else settings.previous("embeddings", str(key))
    run_stats: dict = {}

    def encode(texts: list[str], hashes: list[str]):
        progress = Progress(f"embedding {key} with {spec.key}", len(texts), context.log, bar=embedder.progress_bar)
        try:
            workdir = settings.root / "work" / "embed" / re.sub(r"[^\w.-]", "_", str(key))
            vectors, stats = embedder.embed(context, texts, hashes, spec.key, workdir, progress=progress)
        finally:
            progress.close()
        run_stats.update(stats)
        return vectors

    df, vectors, stats = embed_chunks(chunks.df, previous, spec, encode)
    metadata = {
        "model": spec.key, "model_version": spec.version, "dim": spec.dim,
        "query_prompt": spec.query_prompt or "none", "document_prompt": spec.document_prompt or "none",
        "commit": chunks.meta.get("commit", ""), "chunks": len(df), "embedded": stats.embedded,
        "reused": stats.reused, "deleted": stats.deleted, "forced": config.force,
        "mode": embedder.mode, "device": run_stats.get("device", "-"),
        "texts_per_s": float(run_stats.get("texts_per_s", 0.0)),
        "embed_seconds": round(stats.seconds, 2), "model_load_seconds": float(run_stats.get("load_seconds", 0.0)),
    }
    meta = {"model": spec.key, "model_version": spec.version, "dim": spec.dim, "commit": chunks.meta.get("commit")}
    return Table(df, meta, vectors), metadata


@asset(
    partitions_def=source_model_partitions, group_name="index", kinds={"qdrant"}, pool=STORE_POOL,
    ins={"chunks": AssetIn(), "embeddings": AssetIn()}, code_version="1", automation_condition=refresh_existing,
)
def qdrant_collection(
    context: AssetExecutionContext, chunks: Table, embeddings: Table, store: VectorStoreResource,
    settings: RagSettings,
) -> MaterializeResult:
    """The searchable copy: one collection per source × model. Never touches the live alias."""
    keys = context.partition_key.keys_by_dimension
    source, spec = keys["source"], get_model(keys["model"])
    name = collection_name(source, spec.key)
    commit = chunks.meta.get("commit", "")
    progress = Progress(f"upserting into {name}", len(chunks.df), context.log)
    with store.open() as s:
        stats = sync_collection(
            s, name, chunks.df, embeddings, dim=spec.dim, distance=spec.distance, progress=progress,
            meta={"indexed_commit": commit, "model": spec.key, "model_version": spec.version, "source": source},
            quantization=settings.quantize, indexing_threshold=settings.indexing_threshold_kb,
        )
        alias_target = s.resolve_alias(source)
    return MaterializeResult(metadata={
        "collection": name, "engine": s.engine, "commit": commit, "points": stats.points,
        "upserted": stats.upserted, "deleted": stats.deleted, "unchanged": stats.unchanged,
        "live_alias": f"{source} -> {alias_target}", "seconds": round(stats.seconds, 2), "model": spec.key,
        "dim": spec.dim, "quantization": settings.quantize or "none",
    })


@asset(
    partitions_def=source_model_partitions, group_name="index", kinds={"qdrant"}, pool=STORE_POOL,
    deps=[qdrant_collection], code_version="1",
)
def collection_alias(context: AssetExecutionContext, store: VectorStoreResource, settings: RagSettings) -> MaterializeResult:
    """Points the source's alias (what search uses) at this model's collection, atomically.

    In the index run it only runs when the blocking checks on qdrant_collection passed. Run alone
    (a rollback: materialize the old model's partition) it re-verifies the same measures first.
    """
    keys = context.partition_key.keys_by_dimension
    source, spec = keys["source"], get_model(keys["model"])
    name = collection_name(source, spec.key)
    chunks_table = settings.previous("chunks", source)
    if chunks_table is None:
        raise Failure(f"source '{source}': chunks are not materialized")
    with store.open() as s:
        ok, meta = collection_quality(s, name, chunks_table.df, chunks_table.meta.get("commit", ""))
        recall_ok, recall_meta = recall_quality(s, source, spec.key, settings.source(source).queries,
                                                settings.min_recall)
        if not ok or recall_ok is False:
            raise Failure(f"alias '{source}' stays on {s.resolve_alias(source)}: {name} fails its checks",
                          metadata={**meta, **recall_meta})
        before = s.resolve_alias(source)
        s.set_alias(source, name)
    context.log.info(f"alias {source}: {before} -> {name}")
    return MaterializeResult(metadata={"alias": source, "collection": name, "previous": str(before), **meta,
                                       **{f"golden_{k}": v for k, v in recall_meta.items()}})
