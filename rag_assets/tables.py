"""Stored tables: Parquet on disk, one file per (asset, partition), written atomically.

`Tables(data_dir)` is the one owner of the layout `tables/<asset>/<partition>.parquet`: the IO manager,
checks, sensors, status, answer assembly and the dry run read through its named accessors.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from rag_assets.contract import partition_key

_META_KEY = b"rag_assets"


def table_path(data_dir: str | Path, asset: str, partition: str | None) -> Path:
    # Multi-partition keys look like "minilm-l6|rag-assets": keep them readable and path-safe.
    part = re.sub(r"[^A-Za-z0-9_.=-]", "__", partition) if partition else "_all"
    return Path(data_dir) / "tables" / asset / f"{part}.parquet"


def vectors_to_arrow(vectors: np.ndarray) -> pa.FixedSizeListArray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1])


def write_table(path: Path, df: pd.DataFrame, meta: dict | None = None, vectors: np.ndarray | None = None) -> None:
    """Write df (+ an optional float32 'vector' column and a JSON meta dict) atomically."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    if vectors is not None:
        if len(vectors) != len(df):
            raise ValueError(f"{len(vectors)} vectors for {len(df)} rows")
        dim = vectors.shape[1] if vectors.ndim == 2 else 0
        col = vectors_to_arrow(vectors) if len(vectors) else pa.array([], pa.list_(pa.float32(), dim))
        table = table.append_column("vector", col)
    schema_meta = dict(table.schema.metadata or {})
    schema_meta[_META_KEY] = json.dumps(meta or {}).encode()
    table = table.replace_schema_metadata(schema_meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)  # a killed run leaves the previous version intact


class Table:
    """A loaded table: rows as a DataFrame, vectors as an (n, dim) float32 array, meta as a dict."""

    def __init__(self, df: pd.DataFrame, meta: dict, vectors: np.ndarray | None = None):
        self.df, self.meta, self.vectors = df, meta, vectors

    def __len__(self) -> int:
        return len(self.df)


class TableError(RuntimeError):
    """A stored table cannot be read (damaged or truncated file): one line naming the file and what to do."""

    def __init__(self, path: str | Path, cause: str, fix: str = "delete it and re-materialize its partition"):
        self.path, self.cause = Path(path), cause
        super().__init__(f"damaged table {path}: {cause}; {fix}")


def read_table(path: Path) -> Table:
    try:
        table = pq.read_table(path)
        meta = json.loads((table.schema.metadata or {}).get(_META_KEY, b"{}"))
        vectors = None
        if "vector" in table.column_names:
            col = table.column("vector").combine_chunks()
            dim = col.type.list_size
            vectors = col.values.to_numpy(zero_copy_only=False).reshape(-1, dim).astype(np.float32, copy=False)
            table = table.drop(["vector"])
        return Table(table.to_pandas(), meta, vectors)
    except FileNotFoundError:
        raise
    except (pa.ArrowException, ValueError, KeyError, AttributeError, OSError) as e:
        cause = " ".join(str(e).split()) or type(e).__name__
        raise TableError(path, cause[:200]) from None


def read_meta(path: Path) -> dict | None:
    """A table's meta dict from its schema alone (no rows read); None when the file does not exist."""
    try:
        return json.loads((pq.read_schema(path).metadata or {}).get(_META_KEY, b"{}"))
    except FileNotFoundError:
        return None
    except (pa.ArrowException, ValueError, OSError) as e:
        raise TableError(path, " ".join(str(e).split())[:200] or type(e).__name__) from None


def read_table_if_exists(path: Path) -> Table | None:
    try:
        return read_table(path) if path.exists() else None
    except FileNotFoundError:  # removed since the check
        return None


def _rebuild_hint(asset: str, partition: str | None) -> str:
    """What rewrites this table: the index command of its source (and model)."""
    if not partition:
        return "delete it and re-materialize the asset"
    model, _, source = partition.rpartition("|")  # source × model keys are "model|source"
    return f"rebuild it: rag-assets index {source}{f' --model {model}' if model else ''} (the damaged file is replaced)"


class TableMissing(FileNotFoundError):
    pass


class Tables:
    """The tables under one data dir, by asset and partition."""

    # Asset names as Dagster knows them (defs/assets.py defines assets with these names).
    SNAPSHOT, PAGES, CHUNKS, EMBEDDINGS = "repo_snapshot", "doc_pages", "chunks", "embeddings"
    GOLDEN = "golden_queries"  # queries mined from a source's chunks (retrieval/mining.py)
    # The memory index (memory/index.py): its points + vectors, and vectors by text for the next build.
    MEMORY, MEMORY_VECTORS = "memory_collection", "memory_vectors"

    def __init__(self, data_dir: str | Path):
        self.root = Path(data_dir)

    def path(self, asset: str, partition: str | None) -> Path:
        return table_path(self.root, asset, partition)

    def read(self, asset: str, partition: str | None) -> Table | None:
        """The table, None when it was never written; TableError (naming the file and the fix) when damaged."""
        try:
            return read_table_if_exists(self.path(asset, partition))
        except TableError as e:
            raise TableError(e.path, f"{asset} of '{partition}': {e.cause}", _rebuild_hint(asset, partition)) from None

    def meta(self, asset: str, partition: str | None) -> dict | None:
        """A table's meta without its rows; None when it was never written."""
        return read_meta(self.path(asset, partition))

    def require(self, asset: str, partition: str | None) -> Table:
        table = self.read(asset, partition)
        if table is None:
            raise TableMissing(f"{asset} for partition '{partition}' is not materialized ({self.path(asset, partition)})")
        return table

    def write(self, asset: str, partition: str | None, table: Table) -> Path:
        path = self.path(asset, partition)
        write_table(path, table.df, table.meta, table.vectors)
        return path

    def snapshot(self, source: str) -> Table | None:
        return self.read(self.SNAPSHOT, source)

    def pages(self, source: str) -> Table | None:
        return self.read(self.PAGES, source)

    def chunks(self, source: str) -> Table | None:
        return self.read(self.CHUNKS, source)

    def embeddings(self, source: str, model: str) -> Table | None:
        return self.read(self.EMBEDDINGS, partition_key(source, model))

    def golden_queries(self, source: str) -> Table | None:
        return self.read(self.GOLDEN, source)

    def chunks_path(self, source: str) -> Path:
        return self.path(self.CHUNKS, source)
