"""Register sources.yaml entries as partitions of the dynamic `source` dimension."""

from __future__ import annotations

from dagster import DagsterInstance

from .defs.partitions import source_partitions
from .sources import load_sources


def register_sources(instance: DagsterInstance | None = None, names: list[str] | None = None,
                     sources_file: str | None = None) -> tuple[list[str], list[str]]:
    """Add partitions for sources not yet registered. Returns (added, all names in the file)."""
    instance = instance or DagsterInstance.get()
    known = list(load_sources(sources_file))
    wanted = [n for n in (names or known)]
    existing = set(instance.get_dynamic_partitions(source_partitions.name))
    added = [n for n in wanted if n not in existing]
    if added:
        instance.add_dynamic_partitions(source_partitions.name, added)
    return added, known
