"""Agent memory as an asset: `memory_collection` (per source, group "memory") turns the source's memory log
into its searchable memory collection; `memory_sensor` requests a run within a minute of a write.

The work is in rag_assets/memory/index.py; here: the partition, the store pool, metadata, the sensor.
"""

import time

import dagster as dg

from rag_assets.defs.partitions import source_partitions
from rag_assets.defs.resources import RagSettings, VectorStoreResource
from rag_assets.embedding.embedder import Embedder
from rag_assets.embedding.models import get_model
from rag_assets.memory.index import (
    INDEX_VERSION, build_memory_index, live_model, memory_collection_name, notes_markdown_path, staleness,
)
from rag_assets.memory.log import log_path, log_size

STORE_POOL = "qdrant_store"  # the same pool as every store-writing asset: one writer to the embedded store
MEMORY_JOB = "index_memory"
MEMORY_SENSOR_INTERVAL_S = 30  # + a run's start: a write is indexed within about a minute


@dg.asset(
    partitions_def=source_partitions, group_name="memory", kinds={"qdrant"}, pool=STORE_POOL,
    code_version=INDEX_VERSION,
)
def memory_collection(context: dg.AssetExecutionContext, store: VectorStoreResource,
                      settings: RagSettings) -> dg.MaterializeResult:
    """A source's memories and notes, searchable: repeats and near-duplicates merged (with a count),
    forgotten and expired ones dropped, embedded with the source's live model. Reads the append-only
    memory log (agents write it through MCP `remember`/`note`/`forget` or `rag-assets memory`)."""
    source = context.partition_key
    with store.open() as s:
        spec = get_model(live_model(s, source))
        embedder = Embedder(spec)
        stats = build_memory_index(s, settings.root, source, spec, embedder.encode_documents,
                                   log=context.log.warning)
        engine = s.engine
    context.log.info(f"{source}: {stats.live_memories} live memories -> {stats.memory_points} points "
                     f"({stats.merged} merged), {stats.notes} notes; {stats.embedded} embedded")
    return dg.MaterializeResult(
        metadata={
            "collection": memory_collection_name(source, spec.key), "engine": engine, "model": spec.key,
            "log": str(log_path(settings.root, source)), "log_offset": stats.log_offset, "events": stats.events,
            "remembered": stats.remembered, "forgotten": stats.forgotten, "expired": stats.expired,
            "live_memories": stats.live_memories, "merged": stats.merged, "memory_points": stats.memory_points,
            "notes": stats.notes, "embedded": stats.embedded, "reused": stats.reused,
            "upserted": stats.upserted, "deleted": stats.deleted, "damaged_log_lines": stats.damaged_lines,
            "next_expiry": stats.next_expiry or 0.0, "seconds": round(stats.seconds, 2),
            "notes_markdown": str(notes_markdown_path(settings.root, source)),
            "largest_merges": dg.MetadataValue.json(stats.largest_groups),
        },
        data_version=dg.DataVersion(f"{spec.key}:{stats.log_offset}"),
    )


memory_job = dg.define_asset_job(
    MEMORY_JOB, selection=dg.AssetSelection.assets(memory_collection),
    description="Rebuild a source's memory collection from its memory log (per source).",
)


@dg.sensor(job=memory_job, minimum_interval_seconds=MEMORY_SENSOR_INTERVAL_S,
           default_status=dg.DefaultSensorStatus.RUNNING)
def memory_sensor(context: dg.SensorEvaluationContext, settings: RagSettings):
    """Request `memory_collection` for each registered source whose memory log grew, whose live model
    changed or whose session memory expired since the last build. Cheap: a stat and a Parquet footer per
    source. The run key names the log size, so one state of the log is indexed once."""
    from rag_assets import settings as env
    from rag_assets.store import open_store

    root, now = settings.root, time.time()
    requests, checked = [], 0
    store = None
    try:
        store = open_store(root)  # reads the alias catalog only: never locks a shard
    except Exception as e:  # noqa: BLE001 - a sensor must not die on an unreachable store
        context.log.warning(f"store not readable, using the default model: {e}")
    try:
        for source in context.instance.get_dynamic_partitions(source_partitions.name):
            size = log_size(root, source)
            if not size:
                continue
            checked += 1
            model = live_model(store, source) if store is not None else get_model_key_default()
            reason = staleness(root, source, size, model, now)
            if reason:
                context.log.info(f"{source}: {reason}")
                requests.append(dg.RunRequest(
                    partition_key=source, run_key=f"memory:{source}:{size}:{model}:{_expiry_key(root, source, now)}",
                    tags={"rag/memory": reason[:100],
                          "dagster/max_retries": str(getattr(env.current(), "run_max_retries", 2))}))
    finally:
        if store is not None:
            store.close()
    return requests or dg.SkipReason(f"memory indexes current ({checked} sources with a memory log)")


def get_model_key_default() -> str:
    from rag_assets.embedding.models import live_model_key

    return live_model_key()


def _expiry_key(root, source: str, now: float) -> int:
    from rag_assets.memory.index import snapshot_meta

    meta = snapshot_meta(root, source) or {}
    nxt = float(meta.get("next_expiry") or 0)
    return int(nxt) if nxt and nxt <= now else 0
