"""Prometheus metrics of the MCP server (the official prometheus-client), served at GET /metrics.

Per tool call (`observe`): calls by tool, source and outcome, latency histograms by tool and source,
errors by kind. At scrape time (`StoreCollector`): points per collection, each source's index lag (stale
or not, commits behind its head when the mirror knows both) and its failed runs in a row; `rag_store_up`
is 0 while the embedded store is busy or unreadable (the other store figures are then left out).

    with observe("search_code", source):
        ...  # the tool's work; an exception is counted by kind and re-raised
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "REGISTRY", "error_kind", "observe", "render"]

REGISTRY = CollectorRegistry(auto_describe=True)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

CALLS = Counter("rag_tool_calls", "MCP tool calls by tool, source and outcome (ok | error)",
                ["tool", "source", "outcome"], registry=REGISTRY)
LATENCY = Histogram("rag_tool_latency_seconds", "MCP tool call latency by tool and source",
                    ["tool", "source"], buckets=LATENCY_BUCKETS, registry=REGISTRY)
ERRORS = Counter("rag_tool_errors", "MCP tool errors by tool and kind "
                 "(bad_request, store_busy, store, damaged_table, run_request, internal)",
                 ["tool", "kind"], registry=REGISTRY)

_KNOWN_TTL_S = 60.0
_known: tuple[float, frozenset[str]] = (0.0, frozenset())
_known_lock = threading.Lock()


def _known_sources() -> frozenset[str]:
    """Source names a label may carry (the sources file), re-read at most once a minute."""
    global _known
    with _known_lock:
        if time.monotonic() - _known[0] > _KNOWN_TTL_S:
            from rag_assets.sources.config import SourcesError, load_sources

            try:
                names = frozenset(load_sources())
            except SourcesError:
                names = frozenset()
            _known = (time.monotonic(), names)
        return _known[1]


def source_label(source: str | None) -> str:
    """The source as a label; names outside the sources file become "other" (bounded cardinality)."""
    if not source:
        return "-"
    return source if source in _known_sources() else "other"


def error_kind(e: BaseException) -> str:
    from rag_assets.retrieval.search import SearchError
    from rag_assets.service.errors import RunRequestError
    from rag_assets.sources.config import SourcesError
    from rag_assets.store import StoreBusyError, StoreError
    from rag_assets.tables import TableError

    if isinstance(e, StoreBusyError):
        return "store_busy"
    if isinstance(e, TableError):
        return "damaged_table"
    if isinstance(e, StoreError):
        return "store"
    if isinstance(e, (SearchError, SourcesError, KeyError)) or type(e).__name__ == "ToolError":
        return "bad_request"  # ToolError: the server's own one-line refusals (e.g. a bad rerank spec)
    if isinstance(e, RunRequestError):
        return "run_request"
    return "internal"


@contextmanager
def observe(tool: str, source: str | None):
    """Count and time one tool call; exceptions are counted by kind and re-raised unchanged."""
    label = source_label(source)
    t0 = time.perf_counter()
    try:
        yield
    except BaseException as e:
        CALLS.labels(tool, label, "error").inc()
        ERRORS.labels(tool, error_kind(e)).inc()
        raise
    else:
        CALLS.labels(tool, label, "ok").inc()
    finally:
        LATENCY.labels(tool, label).observe(time.perf_counter() - t0)


class StoreCollector:
    """Figures read at scrape time from the store, the sources file and the failure log."""

    def collect(self):
        from rag_assets.service.health import source_lags, store_figures

        up = GaugeMetricFamily("rag_store_up", "1 when the vector store opened for this scrape, else 0")
        points = GaugeMetricFamily("rag_collection_points", "points per collection", labels=["collection"])
        figures = store_figures()
        up.add_metric([], 1.0 if figures["ok"] else 0.0)
        for name, n in figures.get("collections", {}).items():
            points.add_metric([name], float(n))
        yield up
        yield points
        stale = GaugeMetricFamily("rag_index_stale", "1 when the source's live index is behind its head "
                                  "(or not indexed), 0 when fresh", labels=["source"])
        behind = GaugeMetricFamily("rag_index_commits_behind", "commits between the indexed commit and the "
                                   "source's head (when the mirror holds both)", labels=["source"])
        failed = GaugeMetricFamily("rag_source_failed_runs", "failed runs in a row since the source's last "
                                   "successful run", labels=["source"])
        for name, lag in source_lags().items():
            if lag["stale"] is not None:
                stale.add_metric([name], 1.0 if lag["stale"] else 0.0)
            if lag["commits_behind"] is not None:
                behind.add_metric([name], float(lag["commits_behind"]))
            failed.add_metric([name], float(lag["failures"]))
        yield stale
        yield behind
        yield failed

    def describe(self):
        return []  # figures are read at scrape time only, never at registration


REGISTRY.register(StoreCollector())


def render() -> bytes:
    """The Prometheus text exposition of every metric."""
    return generate_latest(REGISTRY)
