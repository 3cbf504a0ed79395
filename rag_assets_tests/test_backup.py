"""Backups: `rag-assets store snapshot` / `restore` of the embedded store (Edge and local mode), the
nightly backup job keeping the newest N, and a restored store answering searches as before."""

from __future__ import annotations

import datetime as dt
import json
import tarfile

import numpy as np
import pytest

from rag_assets.cli import main
from rag_assets.store import open_store
from rag_assets.store.backup import BackupError, list_snapshots, read_manifest, restore_store, snapshot_store
from rag_assets_tests.conftest import index_run_writing
from rag_assets_tests.gitrepo import make_repo
from rag_assets_tests.test_pipeline import MATH, SHOP


def _fill(data_dir, engine: str, collection: str, alias: str, n: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with open_store(data_dir, engine=engine) as s:
        s.ensure_collection(collection, dim=8)
        s.upsert(collection, [f"00000000-0000-0000-0000-{i:012d}" for i in range(n)], vectors,
                 [{"path": f"f{i}.py", "text": f"t{i}", "source": alias} for i in range(n)])
        s.set_alias(alias, collection)
        s.set_metadata(collection, {"model": "m", "indexed_commit": "c" * 40})
    return vectors


def _answers(data_dir, engine: str, alias: str, vectors) -> list:
    with open_store(data_dir, engine=engine) as s:
        return [[(h.id, round(h.score, 5)) for h in s.query(alias, v, k=3)] for v in vectors]


@pytest.mark.parametrize("engine", ["edge", "local"])
def test_snapshot_restores_collections_aliases_and_metadata(tmp_path, engine):
    vectors = _fill(tmp_path / "data", engine, "a__m", "a")
    before = _answers(tmp_path / "data", engine, "a", vectors)
    archive, manifest = snapshot_store(tmp_path / "data", tmp_path / "bk", engine=engine)
    assert archive.name.startswith("rag-store-") and archive.name.endswith(".tar.gz")
    assert read_manifest(archive) == manifest
    assert manifest["engine"] == engine and manifest["aliases"] == {"a": "a__m"}
    assert manifest["collections"]["a__m"]["points"] == 5
    assert manifest["collections"]["a__m"]["metadata"]["indexed_commit"] == "c" * 40
    with tarfile.open(archive) as tar:
        assert tar.getnames()[0] == "manifest.json"

    assert restore_store(archive, tmp_path / "fresh") == {"a__m": 5}
    assert _answers(tmp_path / "fresh", engine, "a", vectors) == before
    with open_store(tmp_path / "fresh", engine=engine) as s:
        assert s.get_metadata("a")["model"] == "m"
    with pytest.raises(BackupError, match="is not empty .* pass --force"):
        restore_store(archive, tmp_path / "fresh")
    assert restore_store(archive, tmp_path / "fresh", force=True) == {"a__m": 5}


def test_one_source_snapshot_replaces_only_that_source(tmp_path):
    data = tmp_path / "data"
    va = _fill(data, "edge", "a__m", "a", seed=1)
    _fill(data, "edge", "b__m", "b", seed=2)
    archive, manifest = snapshot_store(data, tmp_path / "bk", source="a", engine="edge")
    assert archive.name.startswith("rag-store-a-") and set(manifest["collections"]) == {"a__m"}
    assert manifest["aliases"] == {"a": "a__m"}
    assert list_snapshots(tmp_path / "bk") == []  # retention counts whole-store snapshots only

    before = _answers(data, "edge", "a", va)
    with open_store(data, engine="edge") as s:  # a's collection changes after the snapshot
        s.delete("a__m", ["00000000-0000-0000-0000-000000000000"])
    assert restore_store(archive, data, force=True) == {"a__m": 5}
    assert _answers(data, "edge", "a", va) == before
    with open_store(data, engine="edge") as s:
        assert s.aliases() == {"a": "a__m", "b": "b__m"} and s.count("b") == 5

    with pytest.raises(BackupError, match="source 'zzz' has no collection"):
        snapshot_store(data, tmp_path / "bk", source="zzz", engine="edge")
    (tmp_path / "bad.tar.gz").write_bytes(b"nope")
    with pytest.raises(BackupError, match="not a rag-assets store snapshot"):
        restore_store(tmp_path / "bad.tar.gz", tmp_path / "other")


def test_restore_repairs_a_damaged_alias_table(tmp_path):
    data = tmp_path / "data"
    vectors = _fill(data, "edge", "a__m", "a")
    archive, _ = snapshot_store(data, tmp_path / "bk", engine="edge")
    (data / "qdrant_edge" / "aliases.json").write_text("{broken")
    with pytest.raises(BackupError, match="not empty"):
        restore_store(archive, data)
    assert restore_store(archive, data, force=True) == {"a__m": 5}
    assert len(_answers(data, "edge", "a", vectors[:1])[0]) == 3


def test_a_server_store_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("QDRANT_URL", "http://127.0.0.1:6333")
    with pytest.raises(BackupError, match="Qdrant server: use the server's own snapshots"):
        snapshot_store(tmp_path, tmp_path / "bk")


@pytest.mark.slow  # loads the model, runs Dagster
def test_snapshot_restore_into_a_fresh_data_dir_searches_the_same(env, tmp_path, monkeypatch, capsys):
    from rag_assets.defs.backups import nightly_store_backup
    from rag_assets.definitions import defs
    from dagster import build_schedule_context

    make_repo(tmp_path / "demo", {"mathutil.py": MATH, "shop.py": SHOP})
    env.write_sources({"name": "demo", "kind": "git", "url": str(tmp_path / "demo")})
    env.index("demo")

    def search() -> list:
        assert main(["search", "fibonacci number", "--source", "demo", "--k", "3", "--json"]) == 0
        return [(h["path"], h["start_line"], h["end_line"], h["score"], h["commit"])
                for h in json.loads(capsys.readouterr().out)]

    before = search()
    assert before[0][:3] == ("mathutil.py", 11, 16)
    assert main(["store", "snapshot", "--out", str(tmp_path / "bk")]) == 0
    out = capsys.readouterr().out
    assert "1 collections, 6 points, 1 aliases" in out
    [archive] = (tmp_path / "bk").glob("rag-store-*.tar.gz")

    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "fresh"))  # a new machine: nothing but the snapshot
    assert main(["store", "restore", str(archive)]) == 0
    assert "demo__minilm-l6: 6 points restored" in capsys.readouterr().out
    assert search() == before
    assert main(["store", "restore", str(archive)]) != 0
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "not empty" in err and "--force" in err

    # During an index run the snapshot holds the published state, never the run's half-written copy.
    monkeypatch.setenv("RAG_DATA_DIR", str(env.data_dir))
    with index_run_writing(env.data_dir, "demo__minilm-l6"):  # its copy has 0 points
        assert main(["store", "snapshot", "--out", str(tmp_path / "during")]) == 0
        assert "1 collections, 6 points, 1 aliases" in capsys.readouterr().out

    # The nightly job keeps the newest RAG_BACKUP_KEEP snapshots.
    monkeypatch.setenv("RAG_BACKUP_DIR", str(tmp_path / "nightly"))
    monkeypatch.setenv("RAG_BACKUP_KEEP", "2")
    when = dt.datetime(2026, 11, 22, 2, 30, tzinfo=dt.timezone.utc)
    request = nightly_store_backup(build_schedule_context(instance=env.instance, scheduled_execution_time=when))
    assert request.tags["dagster/max_retries"] == "2" and request.run_key == "backup:2026-11-22"
    job = defs.resolve_job_def("store_backup")
    for _ in range(3):
        result = job.execute_in_process(instance=env.instance, tags=request.tags)
        assert result.success
    kept = list_snapshots(tmp_path / "nightly")
    assert len(kept) == 2 and kept[-1].name == result.output_for_node("store_snapshot").rsplit("/", 1)[-1]
    assert read_manifest(kept[-1])["collections"]["demo__minilm-l6"]["points"] == 6
