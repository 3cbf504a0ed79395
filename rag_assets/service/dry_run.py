"""`index --dry-run`: what a source will produce, and roughly how long embedding will take here."""

from __future__ import annotations

import time

from rag_assets import settings
from rag_assets.chunking.documents import build_chunks
from rag_assets.contract import embedding_text
from rag_assets.embedding.embedder import Embedder
from rag_assets.embedding.models import ModelSpec
from rag_assets.sources.config import Source
from rag_assets.sources.readers import FetchContext, reader_for
from rag_assets.tables import Tables

SAMPLE = 32


def dry_run(source: Source, model: ModelSpec) -> str:
    tables = Tables(settings.current().data_dir)
    reader = reader_for(source)
    # Fetches (a git mirror, or the docs pages with conditional GETs); writes no table.
    fetched = reader.fetch(source, FetchContext(tables.root, previous=tables.read(reader.table, source.name),
                                                fetcher_factory=_docs_fetcher))
    df, stats, _ = build_chunks(source.name, reader.documents(fetched.table), tables.chunks(source.name))
    prev_emb = tables.embeddings(source.name, model.key)
    done = set(prev_emb.df["content_hash"]) if prev_emb is not None and prev_emb.meta.get("model_version") == model.version else set()
    todo = df[~df["content_hash"].isin(done)].drop_duplicates("content_hash")
    lines = [
        f"source '{source.name}' ({source.kind}) at {fetched.version[:12]}: {fetched.metadata.get('url')}",
        f"  files: {stats.files_indexed} to index, skipped {dict(sorted(stats.skipped.items())) or 'none'}",
        f"  chunks: {len(df)} ({int(df['n_tokens'].sum())} tokens, max {int(df['n_tokens'].max() or 0) if len(df) else 0} per chunk)",
        f"  to embed with {model.key}: {len(todo)} chunks ({len(df) - len(todo)} already embedded)",
    ]
    if len(todo):
        # Time a sample of the real texts on this machine: rates vary 10x between CPU and GPU.
        emb = Embedder(model)
        sample = todo.sample(min(SAMPLE, len(todo)), random_state=0)
        texts = [embedding_text(p, s, t, g) for p, s, t, g in
                 zip(sample["path"], sample["symbol"], sample["text"], sample["signature"])]
        emb.encode_documents(texts[:2])  # load the model and warm up outside the timing
        t0 = time.perf_counter()
        emb.encode_documents(texts)
        rate = len(texts) / (time.perf_counter() - t0)
        lines.append(f"  estimate: ~{len(todo) / rate:.0f}s embedding at {rate:.1f} texts/s on {emb.device}"
                     f" (+{emb.load_seconds:.0f}s model load)")
    by_language = df.groupby("language").agg(files=("path", "nunique"), chunks=("chunk_id", "size"))
    for language, row in by_language.sort_values("chunks", ascending=False).iterrows():
        failed = stats.parse_failures.get(language, 0)
        lines.append(f"    {language:<12} {row['files']:>6} files {row['chunks']:>7} chunks"
                     + (f"  ({failed} with parse errors)" if failed else ""))
    for err in stats.errors:
        lines.append(f"  warning: {err}")
    return "\n".join(lines)


def _docs_fetcher():
    from rag_assets.sources.docs import Fetcher, FetcherConfig

    return Fetcher(FetcherConfig())
