"""Partition-aware Parquet IO: one file per (asset, partition), through `Tables`; batched runs read
and write several partitions at once."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from rag_assets.defs.resources import RagSettings
from rag_assets.tables import Table, read_table, write_table


class ParquetIOManager(dg.ConfigurableIOManager):
    """Partition-aware Parquet: one file per (asset, partition), written atomically."""

    settings: RagSettings

    def _path(self, asset_key: dg.AssetKey, partition: str | None) -> Path:
        return self.settings.tables.path(asset_key.path[-1], partition)

    def handle_output(self, context: dg.OutputContext, obj: Table | dict[str, Table] | None) -> None:
        if obj is None:
            return
        if isinstance(obj, dict):  # a batched (multi-partition) run: one table per partition
            for key, table in obj.items():
                write_table(self._path(context.asset_key, key), table.df, table.meta, table.vectors)
            context.add_output_metadata({"partitions": len(obj), "rows": sum(len(t.df) for t in obj.values())})
            return
        path = self._path(context.asset_key, context.partition_key if context.has_partition_key else None)
        write_table(path, obj.df, obj.meta, obj.vectors)
        context.add_output_metadata({"path": str(path), "rows": len(obj.df)})

    def load_input(self, context: dg.InputContext) -> Table | dict[str, Table]:
        """One partition: its Table. Several (a batched run): {partition key: Table}."""
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
        return read_table(path)
