"""`rag-assets collections --drop NAME`: a kept collection, or all that is left of a retired source."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from rag_assets import settings
from rag_assets.defs.partitions import source_partitions
from rag_assets.sources.config import load_sources

class DropRefused(ValueError):
    """Bad input for `collections --drop`: one line saying why and what to do."""


def _source_collections(store, source: str) -> list[str]:
    from rag_assets.embedding.models import MODELS

    names = {f"{source}__{m}" for m in MODELS} | {f"{source}__memory__{m}" for m in MODELS}
    target = store.resolve_alias(source)
    return sorted(c for c in store.list_collections() if c in names or c == target)


def _source_files(data_dir: Path, source: str) -> list[Path]:
    """The source's tables (every asset's partition of it, per model too) and its git mirror."""
    from rag_assets.contract import partition_key
    from rag_assets.embedding.models import MODELS
    from rag_assets.sources.git import mirror_path
    from rag_assets.tables import table_path

    found = []
    tables = data_dir / "tables"
    # Partitions are the source or "model|source"; some tables are kept per collection ("source__model").
    parts = [source, *(partition_key(source, m) for m in MODELS), *(f"{source}__{m}" for m in MODELS),
             *(f"{source}__memory__{m}" for m in MODELS)]
    for asset in sorted(p.name for p in tables.iterdir() if p.is_dir()) if tables.is_dir() else []:
        for part in parts:
            path = table_path(data_dir, asset, part)
            if path.exists():
                found.append(path)
    mirror = mirror_path(data_dir / "mirrors", source)
    return found + ([mirror] if mirror.exists() else [])


def drop(name: str, instance: dg.DagsterInstance | None = None) -> str:
    """`rag-assets collections --drop NAME`: a kept collection (never a live one of a configured source), or
    everything of a source removed from sources.yaml: its collections (with its alias), tables, git mirror
    and `source` partition. Its memory log is kept (agents wrote it; delete it by hand)."""
    import shutil

    from rag_assets.service.stores import embedded_lock
    from rag_assets.store import open_store

    sources = load_sources()
    data_dir = Path(settings.current().data_dir)
    with embedded_lock(), open_store(data_dir) as store:
        aliases = store.aliases()
        if store.collection_exists(name):
            live = sorted(a for a, c in aliases.items() if c == name)
            configured = [a for a in live if a in sources]
            if configured:
                raise DropRefused(f"collection '{name}' is live (alias {', '.join(configured)}); move the alias first: "
                                  "rag-assets alias SOURCE MODEL")
            if live:  # the alias of a retired source: drop the source, not half of it
                raise DropRefused(f"collection '{name}' is live for '{live[0]}', which is no longer in sources.yaml: "
                                  f"drop the whole source with: rag-assets collections --drop {live[0]}")
            store.delete_collection(name)
            return f"dropped {name}"
        if name in sources:
            raise DropRefused(f"'{name}' is a source in {settings.current().sources_file}: remove it there first, "
                              f"then run: rag-assets collections --drop {name}")
        collections = _source_collections(store, name)
        had_alias = name in aliases
        files = _source_files(data_dir, name)
        settings.ensure_dagster_home()
        owned = instance is None
        instance = instance or dg.DagsterInstance.get()
        try:
            registered = instance.has_dynamic_partition(source_partitions.name, name)
            if not (collections or had_alias or files or registered):
                known = sorted(set(store.list_collections()) | set(aliases) |
                               set(instance.get_dynamic_partitions(source_partitions.name)) - set(sources))
                raise DropRefused(f"no collection or retired source named '{name}' (collections and retired sources: "
                                  f"{', '.join(known) or 'none'})")
            points = {c: store.count(c) for c in collections}
            for c in collections:  # its alias goes with the collection it points at
                store.delete_collection(c)
            for path in files:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
            if registered:
                instance.delete_dynamic_partition(source_partitions.name, name)
        finally:
            if owned:
                instance.dispose()
    memory_log = data_dir / "memory" / f"{name}.jsonl"
    parts = [f"{len(collections)} collection{'s' if len(collections) != 1 else ''}"
             + (f" ({', '.join(f'{c}: {n} points' for c, n in points.items())})" if collections else ""),
             *(["alias"] if had_alias else []),
             f"{sum(1 for p in files if p.suffix == '.parquet')} tables",
             *(["git mirror"] if any(p.suffix == ".git" for p in files) else []),
             *(["partition"] if registered else [])]
    kept = f"; kept its memory log {memory_log}" if memory_log.exists() else ""
    return f"dropped source '{name}' (no longer in sources.yaml): {', '.join(parts)}{kept}"
