"""Vectors for a chunks table, encoding only content not embedded before with the same model version.

`embed_table` streams: it reads the chunks' id and hash columns, the previous vectors' hash column, the
texts of new content only (the row groups that hold them), encodes those in slices, and writes the new
embeddings table row group by row group, copying reused vectors from the previous table's row groups.
Memory stays bounded by a few row groups and one encoding slice, whatever the table's size.
`embed_chunks` is the same computation over in-memory DataFrames (small tables, tests).
"""

from __future__ import annotations

import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from rag_assets.contract import embedding_text
from rag_assets.embedding.models import ModelSpec
from rag_assets.tables import BATCH_ROWS, Table, TableWriter, vector_type

# New texts encoded per call to `encode`: bounds the texts and vectors held at once in a cold run.
ENCODE_SLICE = 50_000
# New vectors kept in memory up to this many bytes; beyond, they wait in a temporary file.
SPILL_BYTES = 256 * 2**20
TEXT_COLUMNS = ["path", "symbol", "text", "signature"]


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
    In memory: `embed_table` is the streamed form the embeddings asset uses.
    """
    stats = EmbedStats()
    cache: dict[str, np.ndarray] = {}
    if _reusable(previous, spec):
        cache = dict(zip(previous.df["content_hash"], previous.vectors))
        stats.deleted = len(set(previous.df["chunk_id"]) - set(chunks["chunk_id"]))
    new_hashes = [h for h in dict.fromkeys(chunks["content_hash"]) if h not in cache]
    if new_hashes:
        first = chunks.drop_duplicates("content_hash").set_index("content_hash").loc[new_hashes]
        texts = [embedding_text(p, s, t, g) for p, s, t, g in
                 zip(first["path"], first["symbol"], first["text"], _signatures(first))]
        t0 = time.perf_counter()
        vecs = encode(texts, new_hashes)
        stats.seconds = time.perf_counter() - t0
        cache.update(zip(new_hashes, vecs))
    stats.embedded = len(new_hashes)
    stats.reused = int(len(chunks) - chunks["content_hash"].isin(new_hashes).sum())
    vectors = np.stack([cache[h] for h in chunks["content_hash"]]) if len(chunks) else np.zeros((0, spec.dim), np.float32)
    df = chunks[["chunk_id", "content_hash"]].reset_index(drop=True)
    return df, vectors.astype(np.float32, copy=False), stats


def _reusable(previous: Table | None, spec: ModelSpec) -> bool:
    return (previous is not None and previous.meta.get("model_version") == spec.version and len(previous) > 0
            and previous.has_vectors)


def _signatures(df: pd.DataFrame):
    # Tables chunked before signatures existed have no such column.
    return df["signature"].fillna("") if "signature" in df else [""] * len(df)


def embedding_schema(dim: int) -> pa.Schema:
    return pa.schema([("chunk_id", pa.large_string()), ("content_hash", pa.large_string()),
                      ("vector", vector_type(dim))])


class _NewVectors:
    """The vectors encoded this run, in encoding order: in memory, or past SPILL_BYTES in a temporary file."""

    def __init__(self, dim: int, spill_dir: Path | None):
        self.dim, self.n, self.spill_dir = dim, 0, spill_dir
        self._parts: list[np.ndarray] = []
        self._file = None

    def append(self, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        if self._file is None and (self.n + len(vectors)) * self.dim * 4 > SPILL_BYTES:
            self._file = tempfile.TemporaryFile(dir=self.spill_dir, prefix=".vectors-")
            for part in self._parts:
                self._file.write(part.tobytes())
            self._parts = []
        if self._file is not None:
            self._file.seek(0, 2)
            self._file.write(vectors.tobytes())
        else:
            self._parts.append(vectors)
        self.n += len(vectors)

    def gather(self, idx: np.ndarray) -> np.ndarray:
        if self._file is None:
            if len(self._parts) > 1:
                self._parts = [np.concatenate(self._parts)]
            return self._parts[0][idx] if self._parts else np.zeros((0, self.dim), np.float32)
        out = np.empty((len(idx), self.dim), np.float32)
        uniq = np.unique(idx)
        # Runs of wanted rows, each read with one seek (new rows come in the order they were encoded).
        row = self.dim * 4
        for run in np.split(uniq, np.nonzero(np.diff(uniq) > 64)[0] + 1):
            lo, hi = int(run[0]), int(run[-1]) + 1
            self._file.seek(lo * row)
            block = np.frombuffer(self._file.read((hi - lo) * row), np.float32).reshape(-1, self.dim)
            hit = (idx >= lo) & (idx < hi)
            out[hit] = block[idx[hit] - lo]
        return out

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class _RowGroupCache:
    """Vectors of a table's row groups, a few kept (reused vectors are read mostly in order)."""

    def __init__(self, table: Table, keep: int = 3):
        self.table, self.keep = table, keep
        self.starts = np.array([s for s, _ in table.row_groups()], dtype=np.int64)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()

    def _group(self, g: int) -> np.ndarray:
        if g in self._cache:
            self._cache.move_to_end(g)
            return self._cache[g]
        vec = self.table.row_group_vectors(g)
        self._cache[g] = vec
        while len(self._cache) > self.keep:
            self._cache.popitem(last=False)
        return vec

    def gather(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), self.table.dim), np.float32)
        if len(rows) and rows[-1] - rows[0] == len(rows) - 1 and (np.diff(rows) == 1).all():
            # The usual case: unchanged rows in the same order as before: copy slices, group by group.
            pos, row = 0, int(rows[0])
            while pos < len(rows):
                g = int(np.searchsorted(self.starts, row, side="right") - 1)
                vec = self._group(g)
                lo = row - int(self.starts[g])
                n = min(len(rows) - pos, len(vec) - lo)
                out[pos:pos + n] = vec[lo:lo + n]
                pos, row = pos + n, row + n
            return out
        which = np.searchsorted(self.starts, rows, side="right") - 1
        for g in np.unique(which):
            sel = which == g
            out[sel] = self._group(int(g))[rows[sel] - self.starts[g]]
        return out


def _large(arr: pa.Array) -> pa.Array:
    return arr.cast(pa.large_string())


def embed_table(
    chunks: Table, previous: Table | None, spec: ModelSpec,
    encode: Callable[[list[str], list[str]], np.ndarray], writer: TableWriter, *,
    encode_slice: int = ENCODE_SLICE, on_new: Callable[[int], None] | None = None,
) -> EmbedStats:
    """Write one vector per chunk row (columns chunk_id, content_hash, vector) to `writer`, in the chunks'
    order; content hashes not embedded before with this model version are encoded, the rest copied.

    Streams (see the module doc). `on_new(n)` is told how many texts will be encoded, before the first
    call to `encode`."""
    stats = EmbedStats()
    ids = _large(chunks.column("chunk_id"))
    hashes = _large(chunks.column("content_hash"))
    n = len(hashes)
    prev_rows = None
    if _reusable(previous, spec):
        src_prev = pc.index_in(hashes, value_set=_large(previous.column("content_hash")))  # null: new content
        gone = pc.invert(pc.is_in(_large(previous.column("chunk_id")), value_set=ids))
        stats.deleted = int(pc.sum(gone).as_py() or 0)
        is_new = pc.is_null(src_prev).to_numpy(zero_copy_only=False)
        prev_rows = pc.fill_null(src_prev, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        del src_prev, gone
    else:
        is_new = np.ones(n, dtype=bool)
    new_rows = np.nonzero(is_new)[0]
    # Each new content hash once, in order of first appearance, with the row that first has it.
    new_series = hashes.take(pa.array(new_rows, pa.int64())).to_pandas()
    first = ~new_series.duplicated().to_numpy()
    first_rows = new_rows[first]
    new_hashes = pa.array(new_series[first].tolist(), pa.large_string())
    del new_series, first
    stats.embedded = len(new_hashes)
    stats.reused = n - len(new_rows)
    if on_new is not None:
        on_new(stats.embedded)

    fresh = _NewVectors(spec.dim, writer.path.parent if writer.path.parent.exists() else None)
    try:
        text_columns = [c for c in TEXT_COLUMNS if c in chunks.column_names]
        for lo in range(0, len(first_rows), encode_slice):
            rows = first_rows[lo:lo + encode_slice]
            df, _ = chunks.take(rows, text_columns)
            texts = [embedding_text(p, s, t, g) for p, s, t, g in
                     zip(df["path"], df["symbol"].fillna(""), df["text"], _signatures(df))]
            t0 = time.perf_counter()
            vecs = encode(texts, new_hashes.slice(lo, len(rows)).to_pylist())
            stats.seconds += time.perf_counter() - t0
            if len(vecs) != len(rows):
                raise RuntimeError(f"the encoder returned {len(vecs)} vectors for {len(rows)} texts")
            fresh.append(vecs)
            del df, texts, vecs
        src_new = (pc.index_in(hashes, value_set=new_hashes).to_numpy(zero_copy_only=False)
                   if len(new_hashes) else None)
        cache = _RowGroupCache(previous) if prev_rows is not None else None
        for lo in range(0, n, BATCH_ROWS):
            hi = min(lo + BATCH_ROWS, n)
            vec = np.empty((hi - lo, spec.dim), np.float32)
            new_here = is_new[lo:hi]
            if new_here.any():
                vec[new_here] = fresh.gather(src_new[lo:hi][new_here].astype(np.int64))
            if not new_here.all():
                vec[~new_here] = cache.gather(prev_rows[lo:hi][~new_here])
            writer.write(pd.DataFrame({"chunk_id": ids.slice(lo, hi - lo).to_pandas(),
                                       "content_hash": hashes.slice(lo, hi - lo).to_pandas()}), vec)
    finally:
        fresh.close()
    return stats
