"""Stored tables: Parquet on disk, one file per (asset, partition), written atomically.

`Tables(data_dir)` is the one owner of the layout `tables/<asset>/<partition>.parquet`: the IO manager,
checks, sensors, status, answer assembly and the dry run read through its named accessors.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
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


ROW_GROUP_ROWS = 8192  # rows per Parquet row group: a reader can fetch a few rows without the whole file
BATCH_ROWS = ROW_GROUP_ROWS  # rows per streamed batch


def vector_type(dim: int) -> pa.DataType:
    """How a float32 vector is stored: its dim * 4 bytes (little-endian float32) in one fixed-size binary value.

    One value per row: Parquet reads and writes these at memory speed, where a fixed-size list of floats pays
    for a repetition and definition level per float (measured here: 4x slower to write, 2-9x to read).
    Tables written before (fixed-size float32 lists) read the same."""
    return pa.binary(dim * 4)


def vector_dim(type_: pa.DataType) -> int:
    if pa.types.is_fixed_size_binary(type_):
        return type_.byte_width // 4
    return type_.list_size  # a fixed-size float32 list (tables written before)


def vectors_to_arrow(vectors: np.ndarray) -> pa.FixedSizeBinaryArray:
    vectors = np.ascontiguousarray(vectors, dtype="<f4")
    dim = vectors.shape[1] if vectors.ndim == 2 else 0
    if not len(vectors):
        return pa.array([], vector_type(dim))
    return pa.FixedSizeBinaryArray.from_buffers(vector_type(dim), len(vectors), [None, pa.py_buffer(vectors.tobytes())])


def _arrow_batch(df: pd.DataFrame, vectors: np.ndarray | None, schema: pa.Schema | None) -> pa.Table:
    """df (+ a float32 'vector' column) as an Arrow table; with `schema`, cast to it (streamed batches agree)."""
    if vectors is not None and len(vectors) != len(df):
        raise ValueError(f"{len(vectors)} vectors for {len(df)} rows")
    if schema is not None:
        names = [n for n in schema.names if n != "vector"]
        table = pa.Table.from_pandas(df[names] if names else df.iloc[:, :0], schema=pa.schema(
            [schema.field(n) for n in names]), preserve_index=False)
    else:
        table = pa.Table.from_pandas(df, preserve_index=False)
        table = table.cast(pa.schema([_concrete(f) for f in table.schema]))
    if vectors is not None:
        dim = vector_dim(schema.field("vector").type) if schema is not None and "vector" in schema.names else (
            vectors.shape[1] if vectors.ndim == 2 else 0)
        col = vectors_to_arrow(vectors) if len(vectors) else pa.array([], vector_type(dim))
        table = table.append_column("vector", col)
    return table.replace_schema_metadata(None)


def _concrete(field: pa.Field) -> pa.Field:
    """A type later batches can share: all-null columns of a first batch become strings."""
    if pa.types.is_null(field.type):
        return field.with_type(pa.large_string())
    if pa.types.is_list(field.type) and pa.types.is_null(field.type.value_type):
        return field.with_type(pa.list_(pa.string()))
    return field


def _with_meta(schema: pa.Schema, meta: dict | None) -> pa.Schema:
    return schema.with_metadata({_META_KEY: json.dumps(meta or {}).encode()})


def _write_options(schema: pa.Schema) -> dict:
    # Vectors are random-looking floats: compression and dictionaries cost time and save nothing.
    if "vector" not in schema.names:
        return {}
    return {"compression": {n: ("none" if n == "vector" else "snappy") for n in schema.names},
            "use_dictionary": [n for n in schema.names if n != "vector"]}


def write_table(path: Path, df: pd.DataFrame, meta: dict | None = None, vectors: np.ndarray | None = None) -> None:
    """Write df (+ an optional float32 'vector' column and a JSON meta dict) atomically, in row groups."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    if vectors is not None:
        if len(vectors) != len(df):
            raise ValueError(f"{len(vectors)} vectors for {len(df)} rows")
        dim = vectors.shape[1] if vectors.ndim == 2 else 0
        col = vectors_to_arrow(vectors) if len(vectors) else pa.array([], vector_type(dim))
        table = table.append_column("vector", col)
    schema_meta = dict(table.schema.metadata or {})
    schema_meta[_META_KEY] = json.dumps(meta or {}).encode()
    table = table.replace_schema_metadata(schema_meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp, row_group_size=ROW_GROUP_ROWS, **_write_options(table.schema))
    os.replace(tmp, path)  # a killed run leaves the previous version intact


class TableWriter:
    """Write a table batch by batch in bounded memory: rows go out in row groups of ROW_GROUP_ROWS.

    Rows are written to a temporary file beside `path`; `finish()` returns a Table over it, *staged* for
    `path`: the IO manager (or `commit()`) moves it into place atomically, so a killed run leaves the
    previous version intact. Used as a context manager, an exception discards the temporary file.
    `schema` fixes the column types (else the first batch's, with all-null columns as strings)."""

    def __init__(self, path: Path, meta: dict | None = None, schema: pa.Schema | None = None):
        self.path, self.meta, self.schema = Path(path), dict(meta or {}), schema
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{id(self):x}.tmp")
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._pending: list[pa.Table] = []
        self._pending_rows = 0

    def write(self, df: pd.DataFrame | pa.Table, vectors: np.ndarray | None = None) -> None:
        """Append rows: a DataFrame (+ vectors), or an Arrow table (cast to the schema)."""
        if isinstance(df, pa.Table):
            if self.schema is None:
                self.schema = df.schema.remove_metadata()
            if not df.num_rows:
                return
            batch = df.select(self.schema.names).cast(self.schema).replace_schema_metadata(None)
            self._pending.append(batch)
            self._pending_rows += batch.num_rows
            self.rows += batch.num_rows
            if self._pending_rows >= ROW_GROUP_ROWS:
                self._flush(final=False)
            return
        if not len(df) and self.schema is not None:
            return
        batch = _arrow_batch(df.reset_index(drop=True), vectors, self.schema)
        if self.schema is None:
            self.schema = batch.schema
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        self.rows += batch.num_rows
        if self._pending_rows >= ROW_GROUP_ROWS:
            self._flush(final=False)

    def _open(self) -> pq.ParquetWriter:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            schema = _with_meta(self.schema if self.schema is not None else pa.schema([]), self.meta)
            self._writer = pq.ParquetWriter(self.tmp, schema, **_write_options(schema))
        return self._writer

    def _flush(self, final: bool) -> None:
        if not self._pending:
            return
        table = pa.concat_tables(self._pending)
        full = table.num_rows if final else table.num_rows - table.num_rows % ROW_GROUP_ROWS
        if full:
            self._open().write_table(table.slice(0, full), row_group_size=ROW_GROUP_ROWS)
        rest = table.slice(full)
        self._pending, self._pending_rows = ([rest] if rest.num_rows else []), rest.num_rows

    def finish(self) -> "Table":
        """Close the file; a Table over it, staged for `path` (see `commit`)."""
        self._flush(final=True)
        self._open().close()
        table = Table.open(self.tmp)
        table.staged_for = self.path
        return table

    def commit(self) -> "Table":
        return self.finish().commit()

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> "TableWriter":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is not None:
            self.abort()


class Table:
    """A table: rows as a DataFrame, vectors as an (n, dim) float32 array, meta as a dict.

    In memory (`Table(df, meta, vectors)`) or over a Parquet file (`Table.open(path)`: only the footer is
    read; `df` and `vectors` load on first use). Either way, `column`, `batches` and `take` read only what
    they are asked for, so a step can stream a large table in bounded memory."""

    def __init__(self, df: pd.DataFrame | None = None, meta: dict | None = None, vectors: np.ndarray | None = None):
        self._df, self.meta, self._vectors = df, meta if meta is not None else {}, vectors
        self.path: Path | None = None
        self.staged_for: Path | None = None  # a file written for this path, not moved there yet
        self._file: pq.ParquetFile | None = None

    @classmethod
    def open(cls, path: str | Path) -> "Table":
        """The table over a Parquet file, reading only its footer; TableError when the file is damaged.

        The open file is kept: the rows read later are this version's even after the path is replaced."""
        path = Path(path)
        try:
            f = pq.ParquetFile(path)
            meta = json.loads((f.schema_arrow.metadata or {}).get(_META_KEY, b"{}"))
        except FileNotFoundError:
            raise
        except (pa.ArrowException, ValueError, KeyError, AttributeError, OSError) as e:
            cause = " ".join(str(e).split()) or type(e).__name__
            raise TableError(path, cause[:200]) from None
        table = cls(None, meta)
        table.path, table._file = path, f
        return table

    # ---- whole table (loaded on first use)
    @property
    def df(self) -> pd.DataFrame:
        if self._df is None:
            self._df = self._read_arrow([c for c in self.column_names if c != "vector"]).to_pandas()
        return self._df

    @df.setter
    def df(self, value: pd.DataFrame) -> None:
        self._df = value

    @property
    def vectors(self) -> np.ndarray | None:
        if self._vectors is None and self._file is not None and self.has_vectors:
            self._vectors = _vectors_of(self._read_arrow(["vector"]).column("vector"))
        return self._vectors

    @vectors.setter
    def vectors(self, value: np.ndarray | None) -> None:
        self._vectors = value

    # ---- shape
    def __len__(self) -> int:
        if self._df is not None:
            return len(self._df)
        if self._file is not None:
            return self._file.metadata.num_rows
        return len(self._vectors) if self._vectors is not None else 0

    @property
    def column_names(self) -> list[str]:
        if self._file is not None:
            return list(self._file.schema_arrow.names)
        names = list(self._df.columns) if self._df is not None else []
        return names + (["vector"] if self._vectors is not None else [])

    @property
    def has_vectors(self) -> bool:
        return "vector" in self.column_names

    @property
    def dim(self) -> int | None:
        if self._file is not None and self.has_vectors:
            return vector_dim(self._file.schema_arrow.field("vector").type)
        return int(self._vectors.shape[1]) if self._vectors is not None and self._vectors.ndim == 2 else None

    def row_groups(self) -> list[tuple[int, int]]:
        """(first row, rows) of each row group; an in-memory table is one group."""
        if self._file is None:
            return [(0, len(self))] if len(self) else []
        out, start = [], 0
        for i in range(self._file.metadata.num_row_groups):
            n = self._file.metadata.row_group(i).num_rows
            out.append((start, n))
            start += n
        return out

    # ---- partial reads
    def _read_arrow(self, columns: list[str], row_groups: list[int] | None = None) -> pa.Table:
        try:
            if row_groups is None:
                return self._file.read(columns=columns)
            return self._file.read_row_groups(row_groups, columns=columns)
        except (pa.ArrowException, ValueError, OSError) as e:
            raise TableError(self.path, " ".join(str(e).split())[:200] or type(e).__name__) from None

    def column(self, name: str) -> pa.Array:
        """One column as a (combined) Arrow array, without reading the others."""
        if self._file is not None and self._df is None:
            return self._read_arrow([name]).column(name).combine_chunks()
        if name == "vector":
            return vectors_to_arrow(self.vectors)
        return pa.array(self.df[name])

    def batches(self, columns: list[str] | None = None, *, vectors: bool = False
                ) -> Iterator[tuple[int, pd.DataFrame, np.ndarray | None]]:
        """(first row, rows, vectors or None) per row group (per BATCH_ROWS in memory), in order."""
        cols = [c for c in (columns if columns is not None else self.column_names) if c != "vector"]
        if self._file is None or self._df is not None:
            for start in range(0, len(self), BATCH_ROWS):
                stop = min(start + BATCH_ROWS, len(self))
                vec = self.vectors[start:stop] if vectors else None
                yield start, self.df.iloc[start:stop][cols].reset_index(drop=True), vec
            return
        for i, (start, _) in enumerate(self.row_groups()):
            t = self._read_arrow(cols + (["vector"] if vectors else []), [i])
            vec = _vectors_of(t.column("vector")) if vectors else None
            yield start, t.select(cols).to_pandas(), vec

    def take(self, rows, columns: list[str] | None = None, *, vectors: bool = False
             ) -> tuple[pd.DataFrame, np.ndarray | None]:
        """These rows (any order, repeats allowed), reading only the row groups that hold them."""
        rows = np.asarray(rows, dtype=np.int64)
        cols = [c for c in (columns if columns is not None else self.column_names) if c != "vector"]
        if self._file is None or self._df is not None:
            df = self.df.iloc[rows][cols].reset_index(drop=True)
            return df, (self.vectors[rows] if vectors else None)
        groups = self.row_groups()
        starts = np.array([s for s, _ in groups], dtype=np.int64)
        which = np.searchsorted(starts, rows, side="right") - 1
        parts, vecs, order = [], [], []
        for g in np.unique(which):
            sel = np.nonzero(which == g)[0]
            t = self._read_arrow(cols + (["vector"] if vectors else []), [int(g)])
            local = pa.array(rows[sel] - starts[g])
            parts.append(t.select(cols).take(local))
            if vectors:
                vecs.append(_vectors_of(t.column("vector").take(local)))
            order.append(sel)
        if not parts:
            empty = pa.schema([self._file.schema_arrow.field(c) for c in cols]).empty_table().to_pandas()
            return empty, (np.zeros((0, self.dim or 0), np.float32) if vectors else None)
        inverse = np.argsort(np.concatenate(order), kind="stable")
        df = pa.concat_tables(parts).take(pa.array(inverse)).to_pandas()
        return df, (np.concatenate(vecs)[inverse] if vectors else None)

    def row_group(self, group: int, columns: list[str] | None = None) -> pa.Table:
        """One row group (see row_groups) as an Arrow table."""
        cols = columns if columns is not None else self.column_names
        if self._file is None or self._df is not None:
            start, n = self.row_groups()[group]
            t = pa.Table.from_pandas(self.df.iloc[start:start + n][[c for c in cols if c != "vector"]],
                                     preserve_index=False)
            return t.append_column("vector", vectors_to_arrow(self.vectors[start:start + n])) if "vector" in cols else t
        return self._read_arrow(cols, [group])

    def row_group_vectors(self, group: int) -> np.ndarray:
        """The vectors of one row group (see row_groups)."""
        if self._file is None or self._vectors is not None:
            start, n = self.row_groups()[group]
            return self.vectors[start:start + n]
        return _vectors_of(self._read_arrow(["vector"], [group]).column("vector"))

    # ---- staging (TableWriter)
    def commit(self) -> "Table":
        """Move a staged file into place (atomic); the table then reads from there."""
        if self.staged_for is not None:
            os.replace(self.path, self.staged_for)
            self.path, self.staged_for = self.staged_for, None
        return self


def _vectors_of(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """An (n, dim) float32 array (writable, owned) from a vector column of either stored type."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    dim = vector_dim(col.type)
    if len(col) == 0:
        return np.zeros((0, dim), np.float32)
    if pa.types.is_fixed_size_binary(col.type):
        width = col.type.byte_width
        view = np.frombuffer(col.buffers()[1], dtype="<f4", count=len(col) * dim, offset=col.offset * width)
        return view.reshape(-1, dim).astype(np.float32, copy=True)
    if col.offset:  # a slice: its values start further in
        col = pa.concat_arrays([col])
    return col.values.to_numpy(zero_copy_only=False).reshape(-1, dim).astype(np.float32, copy=False)


class TableError(RuntimeError):
    """A stored table cannot be read (damaged or truncated file): one line naming the file and what to do."""

    def __init__(self, path: str | Path, cause: str, fix: str = "delete it and re-materialize its partition"):
        self.path, self.cause = Path(path), cause
        super().__init__(f"damaged table {path}: {cause}; {fix}")


def read_table(path: Path) -> Table:
    """The whole table, loaded now (a damaged file raises TableError here, not later)."""
    table = open_table(path)
    table.df, table.vectors  # noqa: B018 - load
    return table


def open_table(path: Path) -> Table:
    """The table over its file, rows not read yet (see Table.open)."""
    return Table.open(path)


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
        return open_table(path) if path.exists() else None
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
    # What each collection's last complete sync left in it (store/sync.py), and line counts by content key.
    SYNC_LEDGER, LINE_COUNTS = "sync_ledger", "line_counts"

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

    def ledger_path(self, collection: str) -> Path:
        return self.path(self.SYNC_LEDGER, collection)
