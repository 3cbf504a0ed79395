"""What a user needs to trust the state: per source, the indexed commit, live model, counts, staleness."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack

from rag_assets import settings
from rag_assets.sources.config import Source, load_sources
from rag_assets.sources.git import SnapshotError
from rag_assets.sources.readers import reader_for
from rag_assets.service import failures
from rag_assets.service.errors import one_line
from rag_assets.sources.git import redact_url
from rag_assets.store import StoreBusyError, StoreError, open_store
from rag_assets.tables import TableError, Tables


def source_status(check_remote: bool = True, head: Callable[[Source], str | None] | None = None) -> list[dict]:
    """One row per configured source. `head`: how to learn a source's head (default: ask its remote now)."""
    head = head or (lambda src: reader_for(src).head(src))
    data_dir = settings.current().data_dir
    tables = Tables(data_dir)
    failed = failures.summary(data_dir)
    rows = []
    with ExitStack() as stack:
        try:
            store = stack.enter_context(open_store(data_dir))
        except StoreBusyError:
            store = None  # still report what the tables say
        for src in load_sources().values():
            row = {"source": src.name, "kind": src.kind, "url": redact_url(src.url), "branch": src.branch,
                   "chunks": None, "chunked_commit": None,
                   "live_model": None, "collection": None, "points": None, "indexed_commit": None, "head_commit": None,
                   "failure": failed.get(src.name, {}).get("text"), "failures": failed.get(src.name, {}).get("count", 0)}
            try:  # one source's damaged table or collection never hides the others
                chunks = tables.chunks(src.name)
                row.update(chunks=len(chunks) if chunks is not None else None,
                           chunked_commit=chunks.meta.get("commit") if chunks else None)
                if store is not None:
                    target = store.resolve_alias(src.name)
                    if target and store.collection_exists(target):
                        meta = store.get_metadata(target)
                        row.update(collection=target, live_model=meta.get("model"), points=store.count(target),
                                   indexed_commit=meta.get("indexed_commit"))
            except (TableError, StoreError) as e:
                if isinstance(e, StoreBusyError):
                    raise
                row["damaged"] = one_line(e)
            if check_remote:
                try:
                    row["head_commit"] = head(src)  # None: the kind has no head (docs)
                except SnapshotError as e:
                    row["error"] = str(e)
            row["state"] = _state(row, store is not None)
            rows.append(row)
    return rows


def _state(row: dict, store_open: bool) -> str:
    if row.get("damaged"):
        return f"damaged: {row['damaged']}"
    if not store_open:
        return "store busy (an index run holds it)"
    if row["indexed_commit"] is None:
        return "not indexed"
    if row.get("error"):
        return "head unknown (remote unreachable)"
    if row["head_commit"] and row["head_commit"] != row["indexed_commit"]:
        return "stale (new commits)"
    if row["chunks"] is not None and row["points"] != row["chunks"]:
        return "incomplete (points != chunks)"
    return "fresh" if row["head_commit"] else "indexed"
