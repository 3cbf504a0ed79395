"""rag-assets: git repositories and docs -> searchable Qdrant collections, as Dagster assets."""
