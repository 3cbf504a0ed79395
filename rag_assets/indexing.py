"""The indexing steps as plain functions (Dagster assets and the CLI's dry run call these).

snapshot -> build_chunks -> embed_chunks -> sync_collection. Each step reuses the previous
output of the same partition, so a re-run after a small commit does little work.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .chunking import CHUNKER_VERSION, chunk_file, language_for
from .file_filters import decode_text, skip_reason_for_content
from .git_snapshot import list_files, mirror_path, read_blobs, sync_mirror
from .ids import chunk_id, content_hash, point_id
from .models import ModelSpec
from .sources import Source
from .sparse import DEFAULT_AVG_LEN
from .sparse import encode_documents as encode_sparse
from .store import VectorStore
from .tables import Table

CHUNK_COLUMNS = [
    "chunk_id", "content_hash", "source", "path", "blob_sha", "language", "kind",
    "symbol", "start_line", "end_line", "n_tokens", "commit", "text",
]
PAYLOAD_COLUMNS = ["source", "path", "language", "kind", "symbol", "start_line", "end_line", "commit", "text"]


SPARSE_SCHEME = f"bm25 blake2b32 avg_len={DEFAULT_AVG_LEN:g}"  # changing it needs a re-index


class IndexingError(RuntimeError):
    pass


def embedding_text(path: str, symbol: str, text: str) -> str:
    """What the model reads: a path/symbol header helps queries that name files or functions."""
    header = f"{path} :: {symbol}" if symbol else path
    return f"{header}\n{text}"


# ---------------------------------------------------------------- snapshot
@dataclass
class Snapshot:
    commit: str
    mirror: Path
    files: pd.DataFrame  # path, blob_sha, size, skip


def take_snapshot(source: Source, mirror_root: Path) -> Snapshot:
    if source.kind != "git":
        raise IndexingError(f"source '{source.name}': kind '{source.kind}' is not a git source")
    commit = sync_mirror(source.name, source.url, source.branch, mirror_root)
    mirror = mirror_path(mirror_root, source.name)
    entries = list_files(mirror, commit, source.include, source.exclude)
    files = pd.DataFrame(
        [(e.path, e.blob_sha, e.size, e.skip) for e in entries], columns=["path", "blob_sha", "size", "skip"]
    )
    return Snapshot(commit, mirror, files)


# ---------------------------------------------------------------- chunks
@dataclass
class ChunkStats:
    files_indexed: int = 0
    files_rechunked: int = 0
    files_reused: int = 0
    skipped: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


def _chunk_rows(source: str, path: str, key: str, commit: str, text: str, max_tokens: int,
                language: str | None = None) -> list[dict]:
    rows = []
    for c in chunk_file(path, text, max_tokens=max_tokens, language=language):
        h = content_hash(embedding_text(c.path, c.symbol, c.text))
        rows.append({
            "chunk_id": chunk_id(source, c.path, c.start_line, c.end_line, h), "content_hash": h,
            "source": source, "path": c.path, "blob_sha": key, "language": c.language, "kind": c.kind,
            "symbol": c.symbol, "start_line": c.start_line, "end_line": c.end_line, "n_tokens": c.n_tokens,
            "commit": commit, "text": c.text,
        })
    return rows


def _chunk_documents(
    source: Source, commit: str, wanted: list[tuple[str, str]], texts: Callable[[list[str]], Iterable],
    previous: Table | None, max_tokens: int, stats: ChunkStats, progress, language: str | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Chunk (path, key) documents; a (path, key) chunked last time with the same settings reuses its rows.

    `key` identifies content (a git blob sha, a page's content hash); `texts(keys)` yields
    (key, text or None, skip reason) for the documents that need chunking.
    """
    meta = {"commit": commit, "chunker": CHUNKER_VERSION, "max_tokens": max_tokens}
    reusable = previous is not None and all(previous.meta.get(k) == meta[k] for k in ("chunker", "max_tokens"))
    prev_by_doc = previous.df.groupby(["path", "blob_sha"]) if reusable and len(previous.df) else None
    prev_keys = set(prev_by_doc.groups) if prev_by_doc is not None else set()
    parts: list[pd.DataFrame] = []
    todo: dict[str, list[str]] = {}  # content key -> paths (one blob may live at several paths)
    for path, key in wanted:
        if (path, key) in prev_keys:
            parts.append(prev_by_doc.get_group((path, key)))
            stats.files_reused += 1
            stats.files_indexed += 1
        else:
            todo.setdefault(key, []).append(path)
    if progress and stats.files_reused:
        progress(stats.files_reused)
    new_rows: list[dict] = []
    for key, text, reason in texts(list(todo)):
        paths = todo[key]
        if reason:
            stats.skipped[reason] += len(paths)
        else:
            for path in paths:
                try:
                    new_rows.extend(_chunk_rows(source.name, path, key, commit, text, max_tokens, language))
                    stats.files_rechunked += 1
                    stats.files_indexed += 1
                except Exception as e:  # one bad file never fails the source
                    stats.skipped["error"] += 1
                    stats.errors.append(f"source '{source.name}': file '{path}': {type(e).__name__}: {e}")
        if progress:
            progress(len(paths))
    if new_rows:
        parts.append(pd.DataFrame(new_rows, columns=CHUNK_COLUMNS))
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=CHUNK_COLUMNS)
    df["commit"] = commit  # reused chunks are identical at the new commit
    df = df.sort_values(["path", "start_line", "end_line"], kind="stable").drop_duplicates("chunk_id")
    return df.reset_index(drop=True)[CHUNK_COLUMNS], meta


def build_chunks(
    source: Source, snap: Snapshot, previous: Table | None, max_tokens: int = 512,
    progress: Callable[[int], None] | None = None,
) -> tuple[pd.DataFrame, ChunkStats, dict]:
    """Chunk a git snapshot's indexable files; files whose blob is unchanged reuse their old chunks."""
    stats = ChunkStats()
    for reason in snap.files["skip"].dropna():
        stats.skipped[reason] += 1
    wanted = snap.files[snap.files["skip"].isna()]

    def texts(keys: list[str]):
        for key, data in read_blobs(snap.mirror, keys):
            reason = skip_reason_for_content(data)
            yield key, None if reason else decode_text(data), reason

    df, meta = _chunk_documents(source, snap.commit, list(zip(wanted["path"], wanted["blob_sha"])), texts,
                                previous, max_tokens, stats, progress)
    return df, stats, meta


def build_doc_chunks(
    source: Source, pages: pd.DataFrame, previous: Table | None, max_tokens: int = 512,
    progress: Callable[[int], None] | None = None,
) -> tuple[pd.DataFrame, ChunkStats, dict]:
    """Chunk downloaded pages as Markdown; path = the page id (its URL), symbol = heading path.

    A docs library has no commit: its version is a digest of its pages' content hashes.
    """
    stats = ChunkStats()
    pages = pages[pages["text"].fillna("").str.strip() != ""]
    version = content_hash("".join(sorted(pages["content_hash"])))
    by_hash = dict(zip(pages["content_hash"], pages["text"]))
    df, meta = _chunk_documents(
        source, version, list(zip(pages["page_id"], pages["content_hash"])),
        lambda keys: ((k, by_hash[k], None) for k in keys), previous, max_tokens, stats, progress,
        language="markdown",
    )
    return df, stats, meta


# ---------------------------------------------------------------- embeddings
@dataclass
class EmbedStats:
    reused: int = 0
    embedded: int = 0
    deleted: int = 0
    seconds: float = 0.0


def embed_chunks(
    chunks: pd.DataFrame, previous: Table | None, spec: ModelSpec,
    encode: Callable[[list[str], list[str]], np.ndarray],
) -> tuple[pd.DataFrame, np.ndarray, EmbedStats]:
    """Vectors for every chunk; only content hashes not embedded before (same model version) are encoded.

    `encode(texts, content_hashes)` does the compute: in process, in a Pipes subprocess or on a GPU box.
    """
    stats = EmbedStats()
    cache: dict[str, np.ndarray] = {}
    if previous is not None and previous.meta.get("model_version") == spec.version and len(previous.df):
        cache = dict(zip(previous.df["content_hash"], previous.vectors))
        stats.deleted = len(set(previous.df["chunk_id"]) - set(chunks["chunk_id"]))
    new_hashes = [h for h in dict.fromkeys(chunks["content_hash"]) if h not in cache]
    if new_hashes:
        first = chunks.drop_duplicates("content_hash").set_index("content_hash").loc[new_hashes]
        texts = [embedding_text(p, s, t) for p, s, t in zip(first["path"], first["symbol"], first["text"])]
        t0 = time.perf_counter()
        vecs = encode(texts, new_hashes)
        stats.seconds = time.perf_counter() - t0
        cache.update(zip(new_hashes, vecs))
    stats.embedded = len(new_hashes)
    stats.reused = int(len(chunks) - chunks["content_hash"].isin(new_hashes).sum())
    vectors = np.stack([cache[h] for h in chunks["content_hash"]]) if len(chunks) else np.zeros((0, spec.dim), np.float32)
    df = chunks[["chunk_id", "content_hash"]].reset_index(drop=True)
    return df, vectors.astype(np.float32, copy=False), stats


# ---------------------------------------------------------------- collection
@dataclass
class SyncStats:
    upserted: int = 0
    deleted: int = 0
    unchanged: int = 0
    points: int = 0
    seconds: float = 0.0


def collection_name(source: str, model_key: str) -> str:
    return f"{source}__{model_key}"


def sync_collection(
    store: VectorStore, name: str, chunks: pd.DataFrame, emb: Table, *, dim: int, distance: str,
    meta: dict, progress: Callable[[int], None] | None = None, quantization: str | None = None,
    indexing_threshold: int | None = None,
) -> SyncStats:
    """Make the collection hold exactly these chunks: upsert missing points, delete vanished ones.

    Diffing against the store itself (not against the last run) makes a killed run converge on re-run.
    """
    t0 = time.perf_counter()
    if list(emb.df["chunk_id"]) != list(chunks["chunk_id"]):
        vec_by_id = dict(zip(emb.df["chunk_id"], emb.vectors))
        missing = set(chunks["chunk_id"]) - set(vec_by_id)
        if missing:
            raise IndexingError(f"{len(missing)} chunks have no embedding: materialize embeddings first")
        vectors = np.stack([vec_by_id[c] for c in chunks["chunk_id"]])
    else:
        vectors = emb.vectors
    store.ensure_collection(name, dim, distance, quantization=quantization, indexing_threshold=indexing_threshold,
                            sparse=True)
    want = [point_id(c) for c in chunks["chunk_id"]]
    have = store.ids(name)
    new_idx = [i for i, p in enumerate(want) if p not in have]
    gone = sorted(have - set(want))
    if gone:
        store.delete(name, gone)
    if new_idx:
        rows = chunks.iloc[new_idx]
        payloads = rows[PAYLOAD_COLUMNS].to_dict("records")
        for p, cid in zip(payloads, rows["chunk_id"]):
            p["chunk_id"] = cid
            p["start_line"], p["end_line"] = int(p["start_line"]), int(p["end_line"])
        # BM25 sparse vectors from the same text the dense model reads (path and symbol included).
        sparse = encode_sparse([embedding_text(p, s, t) for p, s, t in zip(rows["path"], rows["symbol"], rows["text"])])
        store.upsert(name, [want[i] for i in new_idx], vectors[new_idx], payloads, sparse=sparse, progress=progress)
    store.set_metadata(name, {**meta, "sparse": SPARSE_SCHEME})
    store.finalize(name)
    return SyncStats(
        upserted=len(new_idx), deleted=len(gone), unchanged=len(want) - len(new_idx),
        points=store.count(name), seconds=time.perf_counter() - t0,
    )
