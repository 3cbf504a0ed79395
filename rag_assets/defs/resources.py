"""Dagster resources: settings (paths, sources file), the vector store and the embedder."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from dagster import ConfigurableIOManager, ConfigurableResource, InputContext, OutputContext

from ..settings import default_data_dir, mirror_root
from ..sources import Source, get_source, load_sources
from ..store import VectorStore, open_store
from ..tables import Table, read_table, read_table_if_exists, table_path, write_table


class RagSettings(ConfigurableResource):
    """Paths and chunking settings; unset fields fall back to env vars (RAG_DATA_DIR, RAG_SOURCES)."""

    data_dir: str | None = None
    sources_file: str | None = None
    max_tokens: int = 512
    # Unset fields fall back to env vars, so the CLI, schedules and the UI share one configuration.
    recall_threshold: float | None = None  # RAG_RECALL_THRESHOLD, default 0.5: recall@10 needed to move the alias
    quantization: str | None = None  # RAG_QUANTIZATION: none | int8 | binary (real on Edge and servers)
    indexing_threshold_kb: int | None = None  # HNSW is built above this segment size (Qdrant default 10 MB)

    @property
    def min_recall(self) -> float:
        return self.recall_threshold if self.recall_threshold is not None else float(os.environ.get("RAG_RECALL_THRESHOLD", 0.5))

    @property
    def quantize(self) -> str | None:
        q = self.quantization or os.environ.get("RAG_QUANTIZATION") or None
        return None if q == "none" else q

    @property
    def root(self) -> Path:
        return Path(self.data_dir).resolve() if self.data_dir else default_data_dir()

    @property
    def mirrors(self) -> Path:
        return mirror_root(self.root)

    def sources(self) -> dict[str, Source]:
        return load_sources(self.sources_file)

    def source(self, name: str) -> Source:
        return get_source(name, self.sources_file)

    def previous(self, asset: str, partition: str) -> Table | None:
        """This partition's last materialized table, to reuse unchanged work."""
        return read_table_if_exists(table_path(self.root, asset, partition))


class VectorStoreResource(ConfigurableResource):
    """Qdrant: a server when url (or QDRANT_URL) is set, else the embedded engine under the data dir."""

    url: str | None = None
    api_key: str | None = None
    engine: str | None = None  # "edge" | "local"; default from RAG_STORE_ENGINE, else edge
    data_dir: str | None = None

    @contextmanager
    def open(self) -> VectorStore:
        store = open_store(
            Path(self.data_dir) if self.data_dir else default_data_dir(),
            url=self.url or os.environ.get("QDRANT_URL") or None,
            api_key=self.api_key or os.environ.get("QDRANT_API_KEY") or None,
            engine=self.engine,
        )
        try:
            yield store
        finally:
            store.close()


class ParquetIOManager(ConfigurableIOManager):
    """Partition-aware Parquet: one file per (asset, partition), written atomically."""

    settings: RagSettings

    def _path(self, asset_key, partition: str | None) -> Path:
        return table_path(self.settings.root, asset_key.path[-1], partition)

    def handle_output(self, context: OutputContext, obj: Table | dict[str, Table] | None) -> None:
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

    def load_input(self, context: InputContext) -> Table | dict[str, Table]:
        """One partition: its Table. Several (a batched run): {partition key: Table}."""
        if not context.has_asset_partitions:
            return self._read(context, None)
        keys = context.asset_partition_keys
        if len(keys) == 1:
            return self._read(context, keys[0])
        return {k: self._read(context, k) for k in keys}

    def _read(self, context: InputContext, partition: str | None) -> Table:
        path = self._path(context.asset_key, partition)
        if not path.exists():
            raise FileNotFoundError(
                f"{context.asset_key.to_user_string()} for partition '{partition}' is not materialized ({path})"
            )
        return read_table(path)


class DocsFetcherResource(ConfigurableResource):
    """HTTP for docs sources: timeouts, retries with backoff, per-host limits, robots.txt, proxies."""

    user_agent: str = "rag-assets-docs/0.1"
    read_timeout_s: float = 20.0
    max_retries: int = 3
    per_host_concurrency: int = 4
    per_host_rps: float = 8.0
    respect_robots: bool = True
    max_bytes: int = 10_000_000
    proxies: list[str] = []  # tried in order, failing over to the next

    def fetcher(self):
        from ..docs import Fetcher, FetcherConfig

        return Fetcher(FetcherConfig(
            user_agent=self.user_agent, read_timeout_s=self.read_timeout_s, max_retries=self.max_retries,
            per_host_concurrency=self.per_host_concurrency, per_host_rps=self.per_host_rps,
            respect_robots=self.respect_robots, max_bytes=self.max_bytes, proxies=tuple(self.proxies),
        ))
