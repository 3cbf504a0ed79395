"""Partitions: a dynamic `source` dimension (one key per sources.yaml entry) × a static `model` one."""

import dagster as dg

from rag_assets.embedding.models import MODELS

source_partitions = dg.DynamicPartitionsDefinition(name="source")
model_partitions = dg.StaticPartitionsDefinition(list(MODELS))
source_model_partitions = dg.MultiPartitionsDefinition({"source": source_partitions, "model": model_partitions})


def source_model_key(source: str, model: str) -> dg.MultiPartitionKey:
    """str() of it is contract.partition_key(source, model): the tables' partition names."""
    return dg.MultiPartitionKey({"source": source, "model": model})
