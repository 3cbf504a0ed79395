"""Partitions: a dynamic `source` dimension (one key per sources.yaml entry) × a static `model` one."""

from dagster import DynamicPartitionsDefinition, MultiPartitionKey, MultiPartitionsDefinition, StaticPartitionsDefinition

from ..models import MODELS

source_partitions = DynamicPartitionsDefinition(name="source")
model_partitions = StaticPartitionsDefinition(list(MODELS))
source_model_partitions = MultiPartitionsDefinition({"source": source_partitions, "model": model_partitions})


def source_model_key(source: str, model: str) -> MultiPartitionKey:
    return MultiPartitionKey({"source": source, "model": model})
