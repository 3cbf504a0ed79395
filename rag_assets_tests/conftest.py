"""Shared fixtures: an isolated data dir, sources file and Dagster instance per test."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from dagster import instance_for_test

os.environ.setdefault("HF_HUB_OFFLINE", "1")


class Env:
    """A test's sandbox: write sources.yaml, run the real index jobs on a test Dagster instance."""

    def __init__(self, root: Path, instance):
        self.root, self.instance = root, instance
        self.sources_file = root / "sources.yaml"
        self.data_dir = root / "data"

    def write_sources(self, *entries: dict) -> Path:
        self.sources_file.write_text(yaml.safe_dump({"sources": list(entries)}))
        return self.sources_file

    def index(self, source: str, model: str = "minilm-l6") -> str:
        from rag_assets.service.runs import index_source

        return index_source(source, model, instance=self.instance)

    def store(self):
        from rag_assets.defs.resources import VectorStoreResource

        return VectorStoreResource().open()


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAG_SOURCES", str(tmp_path / "sources.yaml"))
    monkeypatch.delenv("QDRANT_URL", raising=False)
    monkeypatch.delenv("RAG_MODEL", raising=False)
    (tmp_path / "dagster_home").mkdir()
    with instance_for_test(temp_dir=str(tmp_path / "dagster_home")) as instance:
        yield Env(tmp_path, instance)


@contextmanager
def index_run_writing(data_dir, collection: str = "demo"):
    """Another process in the middle of an index run: it has begun writing the collection (here: deleted
    every point of its copy) and not published yet. Searches must keep answering from the published state."""
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from rag_assets.store import open_store
        s = open_store({str(data_dir)!r})
        ids = sorted(s.ids({collection!r}))
        s.delete({collection!r}, ids)
        assert s.count({collection!r}) == 0
        print("writing", flush=True)
        time.sleep(120)
    """)], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        assert holder.stdout.readline().strip() == "writing"
        yield
    finally:
        holder.kill()
        holder.wait()
