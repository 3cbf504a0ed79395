"""Opening the store for the front doors (CLI, MCP, health).

- Edge (the embedded default): one long-lived reader store per data dir, shared by all threads of the
  process. It reads private views of published generations, so it never waits for an index run, and it
  moves to a newer generation on the next call after one is published. Keeping it open spares each call
  the shard load (an MCP search then costs the query, not the open).
- qdrant-client's local mode admits one open per process: a lock around it (HTTP calls run on threads).
- A Qdrant server takes concurrent clients: opened per call.
The asset checks read through the same reader (defs/resources.VectorStoreResource.read): in an in-process
run (`rag-assets index`) the checks then load each published generation once, not once per check.
"""

from __future__ import annotations

import atexit
import threading
from contextlib import contextmanager, nullcontext
from pathlib import Path

from rag_assets import settings
from rag_assets.store import VectorStore, open_store

_EMBEDDED = threading.Lock()
_READERS: dict[Path, VectorStore] = {}
_READERS_LOCK = threading.Lock()


def _engine() -> str:
    env = settings.current()
    return "server" if env.qdrant_url else (env.store_engine or "edge")


def embedded_lock():
    """Serialises opens of qdrant-client's local mode within this process; a no-op for Edge and servers."""
    return _EMBEDDED if _engine() == "local" else nullcontext()


def shared_reader(data_dir: Path) -> VectorStore:
    """The process's long-lived Edge reader of `data_dir` (also what read-only Dagster checks use)."""
    with _READERS_LOCK:
        store = _READERS.get(data_dir)
        if store is None:
            store = _READERS[data_dir] = open_store(data_dir, engine="edge")
        return store


@atexit.register
def close_readers() -> None:
    with _READERS_LOCK:
        for store in _READERS.values():
            store.close()
        _READERS.clear()


@contextmanager
def open_store_for_reading() -> VectorStore:
    if _engine() == "edge":
        yield shared_reader(Path(settings.current().data_dir))  # read-only use: never written, never closed here
        return
    with embedded_lock(), open_store(settings.current().data_dir) as store:
        yield store
