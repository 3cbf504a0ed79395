"""Opening the store for the front doors: one process-wide lock around the embedded engine, which admits
one open per process (HTTP calls run on worker threads); a Qdrant server takes concurrent clients."""

from __future__ import annotations

import threading
from contextlib import contextmanager, nullcontext

from rag_assets import settings
from rag_assets.store import VectorStore, open_store

_EMBEDDED = threading.Lock()


def embedded_lock():
    return nullcontext() if settings.current().qdrant_url else _EMBEDDED


@contextmanager
def open_store_for_reading() -> VectorStore:
    with embedded_lock(), open_store(settings.current().data_dir) as store:
        yield store
