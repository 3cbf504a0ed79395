"""Make a collection hold exactly a chunks table's points: upsert what is missing, delete what vanished.

Streamed: the diff reads only the chunk_id columns; the rows to upsert are read from the row groups that
hold them (payload columns and vectors), a row group at a time, and upserted while reading. Memory stays
bounded by a row group, whatever the table's size.

The diff is against the store itself, so a run killed anywhere converges on re-run. Listing every point
id of a large collection (and hashing every chunk id into a point id) is proportional to the repository,
though, so a completed sync leaves a *ledger*: the chunk ids it made the collection hold, in a small
Parquet file, and a token naming that file in the collection's metadata. The next sync trusts the ledger
only when the token matches and the store's point count equals the ledger's rows; it clears the token
before it writes anything, so a killed run (or a store restored from a backup, or a collection dropped
and rebuilt) falls back to listing the store.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from rag_assets.contract import PAYLOAD_COLUMNS, SPARSE_SCHEME, embedding_text, point_id
from rag_assets.store.base import VectorStore
from rag_assets.store.sparse import encode_documents as encode_sparse
from rag_assets.tables import BATCH_ROWS, Table, TableWriter

LEDGER_KEY = "sync_ledger"  # collection metadata: the token of the ledger written by the last complete sync
CHANGED_KEY = "points_changed"  # collection metadata: points upserted + deleted by every sync so far
LEDGER_SCHEMA = pa.schema([("chunk_id", pa.large_string())])


class SyncError(RuntimeError):
    pass


@dataclass
class SyncStats:
    upserted: int = 0
    deleted: int = 0
    unchanged: int = 0
    points: int = 0
    seconds: float = 0.0
    diff: str = "store"  # "store": listed the collection's ids; "ledger": the last sync's ledger
    diff_seconds: float = 0.0
    delete_seconds: float = 0.0
    upsert_seconds: float = 0.0
    finalize_seconds: float = 0.0


def _large(arr) -> pa.Array:
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    return arr.cast(pa.large_string())


def _as_table(chunks) -> Table:
    return chunks if isinstance(chunks, Table) else Table(chunks.reset_index(drop=True), {})


def payload_rows(rows: pd.DataFrame) -> list[dict]:
    """Point payloads of chunk rows: the payload columns + chunk_id, as plain Python values."""
    payloads = rows[[c for c in PAYLOAD_COLUMNS if c in rows]].to_dict("records")
    for p, cid in zip(payloads, rows["chunk_id"]):
        p["chunk_id"] = cid
        p["start_line"], p["end_line"] = int(p["start_line"]), int(p["end_line"])
        if "part" in p:
            p["part"] = int(p["part"])
        if "imports" in p:  # Parquet gives lists back as arrays
            p["imports"] = [str(i) for i in p["imports"]] if p["imports"] is not None else []
    return payloads


def _read_ledger(path: Path | None, token: str | None, count: int) -> pa.Array | None:
    """The last sync's chunk ids when its ledger is valid for the collection as it is now, else None."""
    if not path or not token or not path.exists():
        return None
    try:
        ledger = Table.open(path)
    except Exception:  # noqa: BLE001 - a damaged ledger only costs a full diff
        return None
    if ledger.meta.get("token") != token or len(ledger) != count:
        return None
    return _large(ledger.column("chunk_id"))


def _write_ledger(path: Path, ids: pa.Array, collection: str) -> str:
    token = uuid.uuid4().hex
    with TableWriter(path, {"token": token, "collection": collection}, schema=LEDGER_SCHEMA) as w:
        for lo in range(0, len(ids), BATCH_ROWS):
            w.write(pd.DataFrame({"chunk_id": ids.slice(lo, BATCH_ROWS).to_pandas()}))
        w.commit()
    return token


def sync_collection(
    store: VectorStore, name: str, chunks: pd.DataFrame | Table, emb: Table, *, dim: int, distance: str,
    meta: dict, progress: Callable[[int], None] | None = None, quantization: str | None = None,
    indexing_threshold: int | None = None, ledger: Path | None = None,
) -> SyncStats:
    """Make the collection hold exactly these chunks: upsert missing points, delete vanished ones.

    `chunks` and `emb` may be files (`Table.open`) or in memory; `ledger` is where this collection's
    ledger lives (None: always list the store's ids). See the module doc."""
    t0 = time.perf_counter()
    stats = SyncStats()
    chunks = _as_table(chunks)
    ids = _large(chunks.column("chunk_id"))
    emb_ids = _large(emb.column("chunk_id"))
    emb_rows = None  # row of each chunk's vector in `emb`; None: the same row
    if not (len(ids) == len(emb_ids) and ids.equals(emb_ids)):
        pos = pc.index_in(ids, value_set=emb_ids)
        if pos.null_count:
            raise SyncError(f"{pos.null_count} chunks have no embedding: materialize embeddings first")
        emb_rows = pos.to_numpy(zero_copy_only=False).astype(np.int64)
    store.ensure_collection(name, dim, distance, quantization=quantization, indexing_threshold=indexing_threshold,
                            sparse=True)
    stored = store.get_metadata(name)
    # Vectors re-encoded from scratch (a forced re-embed) replace every point; otherwise only new ones go in.
    rewrite = bool(emb.meta.get("vectors_run")) and stored.get("vectors_run") != emb.meta["vectors_run"]

    t = time.perf_counter()
    synced = _read_ledger(ledger, stored.get(LEDGER_KEY), store.count(name) if stored.get(LEDGER_KEY) else -1)
    if synced is not None:  # diff against the last complete sync: Arrow set operations, no point ids
        stats.diff = "ledger"
        is_new = pc.invert(pc.is_in(ids, value_set=synced)).to_numpy(zero_copy_only=False)
        gone_ids = synced.filter(pc.invert(pc.is_in(synced, value_set=ids))).to_pylist()
        gone = [point_id(c) for c in gone_ids]
    else:  # list the store
        have = store.ids(name)
        want = [point_id(c) for c in ids.to_pylist()]
        is_new = np.fromiter((p not in have for p in want), dtype=bool, count=len(want))
        gone = sorted(have - set(want))
        del have, want
    if rewrite:
        is_new = np.ones(len(ids), dtype=bool)
    new_idx = np.nonzero(is_new)[0]
    stats.diff_seconds = time.perf_counter() - t
    changes = bool(gone) or bool(len(new_idx))
    if changes:
        # Before any write: the ledger no longer describes the collection, and the change counter (which the
        # golden-recall gate reads to tell whether its last measurement still holds) counts this run's
        # changes even when the run is killed half-way.
        store.set_metadata(name, {LEDGER_KEY: "", CHANGED_KEY: int(stored.get(CHANGED_KEY, 0)) + len(gone)
                                  + int(len(new_idx))})

    t = time.perf_counter()
    if gone:
        store.delete(name, gone)
    stats.delete_seconds = time.perf_counter() - t

    t = time.perf_counter()
    if len(new_idx):
        columns = [c for c in ["chunk_id", *PAYLOAD_COLUMNS] if c in chunks.column_names]
        starts = np.array([s for s, _ in chunks.row_groups()], dtype=np.int64)
        group_of = np.searchsorted(starts, new_idx, side="right") - 1
        bounds = np.nonzero(np.diff(group_of))[0] + 1
        for sel in np.split(new_idx, bounds):  # one chunks row group at a time, read once
            for lo in range(0, len(sel), BATCH_ROWS):
                part = sel[lo:lo + BATCH_ROWS]
                rows, _ = chunks.take(part, columns)
                _, vectors = emb.take(part if emb_rows is None else emb_rows[part], [], vectors=True)
                payloads = payload_rows(rows)
                # BM25 sparse vectors from the same text the dense model reads (path, symbol, signature included).
                sparse = encode_sparse([embedding_text(p["path"], p["symbol"], p["text"], p.get("signature") or "")
                                        for p in payloads])
                store.upsert(name, [point_id(c) for c in rows["chunk_id"]], vectors, payloads, sparse=sparse,
                             progress=progress)
    stats.upsert_seconds = time.perf_counter() - t

    final = {**meta, "sparse": SPARSE_SCHEME, "vectors_run": emb.meta.get("vectors_run", "")}
    stats.points = store.count(name)
    if stats.points != len(ids):  # checked before publishing: searches keep the last good state
        raise SyncError(f"collection {name!r} would hold {stats.points} points for {len(ids)} chunks; not published")
    if ledger is not None and (changes or synced is None) and stats.points == len(ids):
        final[LEDGER_KEY] = _write_ledger(ledger, ids, name)
    # Every metadata write before finalize: an engine that copies a collection on its first write after a
    # publish (Edge generations) then copies it once per sync, not twice. A run killed in finalize leaves
    # either all points written (the ledger holds) or, on Edge, nothing published (the token does not match).
    if changes or any(stored.get(k) != v for k, v in final.items()):  # a no-op run writes nothing
        store.set_metadata(name, final)
    t = time.perf_counter()
    if changes or synced is None:  # a run killed before finalize left work: the full diff path finalizes
        store.finalize(name)
    stats.finalize_seconds = time.perf_counter() - t
    stats.upserted, stats.deleted = int(len(new_idx)), len(gone)
    stats.unchanged = len(ids) - stats.upserted
    stats.seconds = time.perf_counter() - t0
    return stats
