"""Partition-aware Parquet IO: one file per (asset, partition), through `Tables`; batched runs read
and write several partitions at once.

Inputs are handed over unread (`Table.open`: the footer only), so a step reads just the columns and row
groups it uses. An asset that streams its output writes it with a `TableWriter` and returns the staged
table; the IO manager then only moves that file into place (atomically), never loading it."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from rag_assets.defs.resources import RagSettings
from rag_assets.tables import Table, open_table, write_table


class ParquetIOManager(dg.ConfigurableIOManager):
    """Partition-aware Parquet: one file per (asset, partition), written atomically."""

    settings: RagSettings

    def _path(self, asset_key: dg.AssetKey, partition: str | None) -> Path:
        return self.settings.tables.path(asset_key.path[-1], partition)

    @staticmethod
    def _store(path: Path, table: Table) -> None:
        if table.staged_for is not None:  # streamed by the asset beside its final path: move it there
            if Path(table.staged_for) != path:
                os.replace(table.path, path)
                table.path, table.staged_for = path, None
            else:
                table.commit()
        elif table.path is not None and table._df is None and table._vectors is None:
            if Path(table.path) != path:  # another table's file, unread: copy it through in batches
                from rag_assets.tables import TableWriter

                with TableWriter(path, table.meta) as w:
                    for _, df, vec in table.batches(vectors=table.has_vectors):
                        w.write(df, vec)
                    w.commit()
        else:
            write_table(path, table.df, table.meta, table.vectors)

    def handle_output(self, context: dg.OutputContext, obj: Table | dict[str, Table] | None) -> None:
        if obj is None:
            return
        if isinstance(obj, dict):  # a batched (multi-partition) run: one table per partition
            for key, table in obj.items():
                self._store(self._path(context.asset_key, key), table)
            context.add_output_metadata({"partitions": len(obj), "rows": sum(len(t) for t in obj.values())})
            return
        path = self._path(context.asset_key, context.partition_key if context.has_partition_key else None)
        self._store(path, obj)
        context.add_output_metadata({"path": str(path), "rows": len(obj)})

    def load_input(self, context: dg.InputContext) -> Table | dict[str, Table]:
        """One partition: its Table. Several (a batched run): {partition key: Table}. Unread until used."""
        if not context.has_asset_partitions:
            return self._read(context, None)
        keys = context.asset_partition_keys
        if len(keys) == 1:
            return self._read(context, keys[0])
        return {k: self._read(context, k) for k in keys}

    def _read(self, context: dg.InputContext, partition: str | None) -> Table:
        path = self._path(context.asset_key, partition)
        if not path.exists():
            raise FileNotFoundError(
                f"{context.asset_key.to_user_string()} for partition '{partition}' is not materialized ({path})"
            )
        return open_table(path)
