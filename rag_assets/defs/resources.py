"""Dagster resources: settings (paths, sources, chunking and gate settings), the vector store, the docs fetcher.

Unset fields fall back to `rag_assets.settings` at run time (never at import), so the CLI, schedules
and the UI share one configuration.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from rag_assets import settings as env
from rag_assets.sources.config import Source, get_source, load_sources
from rag_assets.sources.readers import SourceReader, reader_for
from rag_assets.store import VectorStore, open_store
from rag_assets.tables import Table, TableError, Tables


class RagSettings(dg.ConfigurableResource):
    """Paths and chunking settings; unset fields fall back to rag_assets.settings (RAG_DATA_DIR, RAG_SOURCES, ...)."""

    data_dir: str | None = None
    sources_file: str | None = None
    max_tokens: int = 512
    recall_threshold: float | None = None  # RAG_RECALL_THRESHOLD, default 0.5: the floor recall@10 to move the alias
    gate_tolerance: float | None = None  # RAG_GATE_TOLERANCE, default 0.01: a candidate may measure this much below live
    quantization: str | None = None  # RAG_QUANTIZATION: none | int8 | binary (real on Edge and servers)
    indexing_threshold_kb: int | None = None  # HNSW is built above this segment size (Qdrant default 10 MB)

    @property
    def min_recall(self) -> float:
        return self.recall_threshold if self.recall_threshold is not None else env.current().recall_threshold

    @property
    def tolerance(self) -> float:
        return self.gate_tolerance if self.gate_tolerance is not None else env.current().gate_tolerance

    @property
    def quantize(self) -> str | None:
        q = self.quantization or env.current().quantization
        return None if q == "none" else q

    @property
    def root(self) -> Path:
        return Path(self.data_dir).resolve() if self.data_dir else env.current().data_dir

    @property
    def tables(self) -> Tables:
        return Tables(self.root)

    def sources(self) -> dict[str, Source]:
        return load_sources(self.sources_file)

    def source(self, name: str) -> Source:
        return get_source(name, self.sources_file)

    def reader(self, name: str) -> tuple[Source, SourceReader]:
        source = self.source(name)
        return source, reader_for(source)

    def previous(self, asset: str, partition: str) -> Table | None:
        """This partition's last materialized table, to reuse unchanged work (None when damaged: rebuilt)."""
        try:
            return self.tables.read(asset, partition)
        except TableError as e:
            dg.get_dagster_logger().warning(f"{e}: building it from scratch")
            return None


class VectorStoreResource(dg.ConfigurableResource):
    """Qdrant: a server when url (or QDRANT_URL) is set, else the embedded engine under the data dir."""

    url: str | None = None  # unset: QDRANT_URL
    api_key: str | None = None  # a secret: pass dg.EnvVar("QDRANT_API_KEY"); unset: QDRANT_API_KEY
    engine: str | None = None  # "edge" | "local"; unset: RAG_STORE_ENGINE, else edge
    data_dir: str | None = None

    @contextmanager
    def open(self) -> VectorStore:
        store = open_store(self.data_dir or env.current().data_dir, url=self.url, api_key=self.api_key,
                           engine=self.engine)
        try:
            yield store
        except BaseException:
            store.abort()  # a failed step publishes nothing it half-wrote
            raise
        store.close()

    @contextmanager
    def read(self) -> VectorStore:
        """For steps that only read (the checks): on embedded Edge, the process's long-lived reader, which
        loads a published generation once for every check of the run; else a store opened as by `open`."""
        current = env.current()
        if not (self.url or current.qdrant_url) and (self.engine or current.store_engine or "edge") == "edge":
            from rag_assets.service.stores import shared_reader

            yield shared_reader(Path(self.data_dir or current.data_dir))
            return
        with self.open() as store:
            yield store


class DocsFetcherResource(dg.ConfigurableResource):
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
        from rag_assets.sources.docs import Fetcher, FetcherConfig

        return Fetcher(FetcherConfig(
            user_agent=self.user_agent, read_timeout_s=self.read_timeout_s, max_retries=self.max_retries,
            per_host_concurrency=self.per_host_concurrency, per_host_rps=self.per_host_rps,
            respect_robots=self.respect_robots, max_bytes=self.max_bytes, proxies=tuple(self.proxies),
        ))
