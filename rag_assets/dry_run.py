"""`index --dry-run`: what a source will produce, and roughly how long embedding will take here."""

from __future__ import annotations

import time

from .embedder import Embedder
from .indexing import build_chunks, embedding_text, take_snapshot
from .models import ModelSpec
from .settings import default_data_dir, mirror_root
from .sources import Source
from .tables import read_table_if_exists, table_path

SAMPLE = 32


def dry_run(source: Source, model: ModelSpec) -> str:
    data_dir = default_data_dir()
    snap = take_snapshot(source, mirror_root(data_dir))  # fetches the mirror; writes no table
    previous = read_table_if_exists(table_path(data_dir, "chunks", source.name))
    df, stats, _ = build_chunks(source, snap, previous)
    prev_emb = read_table_if_exists(table_path(data_dir, "embeddings", f"{model.key}|{source.name}"))
    done = set(prev_emb.df["content_hash"]) if prev_emb is not None and prev_emb.meta.get("model_version") == model.version else set()
    todo = df[~df["content_hash"].isin(done)].drop_duplicates("content_hash")
    lines = [
        f"source '{source.name}' at {snap.commit[:12]} ({source.url}, branch {source.branch})",
        f"  files: {stats.files_indexed} to index, skipped {dict(sorted(stats.skipped.items())) or 'none'}",
        f"  chunks: {len(df)} ({int(df['n_tokens'].sum())} tokens, max {int(df['n_tokens'].max() or 0) if len(df) else 0} per chunk)",
        f"  to embed with {model.key}: {len(todo)} chunks ({len(df) - len(todo)} already embedded)",
    ]
    if len(todo):
        # Time a sample of the real texts on this machine: rates vary 10x between CPU and GPU.
        emb = Embedder(model)
        sample = todo.sample(min(SAMPLE, len(todo)), random_state=0)
        texts = [embedding_text(p, s, t) for p, s, t in zip(sample["path"], sample["symbol"], sample["text"])]
        emb.encode_documents(texts[:2])  # load the model and warm up outside the timing
        t0 = time.perf_counter()
        emb.encode_documents(texts)
        rate = len(texts) / (time.perf_counter() - t0)
        lines.append(f"  estimate: ~{len(todo) / rate:.0f}s embedding at {rate:.1f} texts/s on {emb.device}"
                     f" (+{emb.load_seconds:.0f}s model load)")
    for err in stats.errors:
        lines.append(f"  warning: {err}")
    return "\n".join(lines)
