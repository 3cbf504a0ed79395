"""Where things live on disk; env vars give the defaults so the CLI, tests and Dagster agree."""

from __future__ import annotations

import os
from pathlib import Path


def default_data_dir() -> Path:
    """RAG_DATA_DIR, else <DAGSTER_HOME>/rag_data, else ./.rag_data."""
    if os.environ.get("RAG_DATA_DIR"):
        return Path(os.environ["RAG_DATA_DIR"]).expanduser().resolve()
    if os.environ.get("DAGSTER_HOME"):
        return Path(os.environ["DAGSTER_HOME"]).expanduser().resolve() / "rag_data"
    return Path(".rag_data").resolve()


def mirror_root(data_dir: Path) -> Path:
    return data_dir / "mirrors"
