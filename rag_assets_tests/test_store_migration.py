"""Moving an embedded store between engines (local <-> edge) without re-embedding."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from rag_assets.contract import SPARSE_SCHEME, embedding_text
from rag_assets.store.sparse import encode_documents, encode_query
from rag_assets.store import StoreError, open_store
from rag_assets.store.migration import StoreMigrationError, copy_store, migrate_embedded

DIM = 24
WORDS = ["parquet", "manager", "retry", "schedule", "sensor", "partition", "asset", "io", "config", "resource"]


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv("QDRANT_URL", raising=False)
    monkeypatch.delenv("RAG_STORE_ENGINE", raising=False)


def make_points(n: int, seed: int):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    ids = [str(uuid.UUID(int=(seed << 64) | (i + 1))) for i in range(n)]
    payloads = []
    for i in range(n):
        words = " ".join(WORDS[(i * j) % len(WORDS)] for j in range(1, 4))
        payloads.append({
            "source": "repo", "path": f"src/mod_{i % 4}.py", "symbol": f"Thing{i}.handle_{WORDS[i % len(WORDS)]}",
            "language": "python", "kind": "function", "chunk_id": f"c{seed}-{i}", "start_line": i + 1,
            "text": f"def handle_{i}(self):\n    # {words}\n    return unique_token_{seed}_{i}",
        })
    return ids, vectors, payloads


def fill(store, name: str, n: int, seed: int, distance: str = "cosine"):
    ids, vectors, payloads = make_points(n, seed)
    store.ensure_collection(name, DIM, distance)
    sparse = encode_documents([embedding_text(p["path"], p["symbol"], p["text"]) for p in payloads])
    store.upsert(name, ids, vectors, payloads, sparse=sparse, batch_size=16)
    store.set_metadata(name, {"model": "minilm-l6", "indexed_commit": f"abc{seed}", "sparse": SPARSE_SCHEME})
    store.finalize(name)
    return ids, vectors, payloads


@pytest.fixture
def local_store(tmp_path):
    data = tmp_path / "data"
    with open_store(data, engine="local") as s:
        a = fill(s, "repo__minilm-l6", 40, 1)
        b = fill(s, "docs__minilm-l6", 25, 2, distance="dot")
        s.set_alias("repo", "repo__minilm-l6")
        s.set_alias("docs", "docs__minilm-l6")
    return data, {"repo__minilm-l6": a, "docs__minilm-l6": b}


def snapshot(store, name):
    return {pid: (payload, vec) for pid, payload, vec in store.scroll(name, with_vectors=True)}


def top_hits(store, name, vectors, payloads):
    out = []
    for i in (0, 7, 13):
        sv = encode_query(f"unique_token_{payloads[i]['chunk_id'][1]}_{i} handle")
        out.append(store.query(name, sparse_vector=sv, k=3, mode="sparse")[0].id)
        out.append(store.query(name, vectors[i], k=3, mode="hybrid", sparse_vector=sv)[0].id)
        out.append(store.query(name, vectors[i], k=3, filter={"path": payloads[i]["path"]})[0].id)
    return out


def test_local_to_edge_roundtrip_and_rerun(local_store):
    data, made = local_store
    seen: list[tuple[str, int, int]] = []
    counts = migrate_embedded(data, "local", "edge", progress=lambda *a: seen.append(a))
    assert counts == {"docs__minilm-l6": 25, "repo__minilm-l6": 40}
    assert seen[-1] == ("repo__minilm-l6", 40, 40) and ("docs__minilm-l6", 25, 25) in seen

    with open_store(data, engine="local") as src, open_store(data, engine="edge") as dst:
        assert dst.engine == "edge"
        assert dst.list_collections() == src.list_collections()
        assert dst.aliases() == src.aliases() == {"repo": "repo__minilm-l6", "docs": "docs__minilm-l6"}
        for name, (ids, vectors, payloads) in made.items():
            assert dst.get_metadata(name) == src.get_metadata(name)
            s, d = snapshot(src, name), snapshot(dst, name)
            assert set(d) == set(s) == set(ids)
            cosine = name.startswith("repo")
            for pid in ids:
                assert d[pid][0] == s[pid][0]
                # Edge stores cosine vectors normalised, local mode as given: same direction.
                want = s[pid][1] / np.linalg.norm(s[pid][1]) if cosine else s[pid][1]
                np.testing.assert_allclose(d[pid][1], want, rtol=1e-5, atol=1e-6)
            hits = top_hits(dst, name, vectors, payloads)
            assert hits == top_hits(src, name, vectors, payloads)
            assert hits[:3] == [ids[0]] * 3  # sparse, hybrid and filtered dense all find the point
        # Searches through the alias work on the copy.
        ids, vectors, payloads = made["repo__minilm-l6"]
        assert dst.query("repo", vectors[5], k=1)[0].id == ids[5]
        assert dst.get_metadata("repo__minilm-l6")["sparse"] == SPARSE_SCHEME

    # Re-run: converges, nothing duplicated; the source is untouched.
    assert migrate_embedded(data, "local", "edge") == counts
    with open_store(data, engine="local") as src, open_store(data, engine="edge") as dst:
        assert dst.list_collections() == src.list_collections() == counts
        assert len(dst.ids("repo__minilm-l6")) == 40


def test_existing_destination_is_converged_and_subset(local_store, tmp_path):
    data, made = local_store
    ids, vectors, payloads = made["repo__minilm-l6"]
    with open_store(data, engine="edge") as dst:
        dst.ensure_collection("repo__minilm-l6", DIM)
        # A stale point the source does not have, and a stale payload for a shared id.
        stale = str(uuid.UUID(int=999))
        dst.upsert("repo__minilm-l6", [stale, ids[0]], vectors[:2], [{"text": "old"}, {"text": "old"}])
    with open_store(data, engine="local") as src, open_store(data, engine="edge") as dst:
        assert copy_store(src, dst, collections=["repo"]) == {"repo__minilm-l6": 40}  # alias accepted
        assert dst.ids("repo__minilm-l6") == set(ids)
        assert dst.get_vectors("repo__minilm-l6", [ids[0]])  # present
        assert next(p for i, p, _ in dst.scroll("repo__minilm-l6") if i == ids[0]) == payloads[0]
        assert dst.list_collections() == {"repo__minilm-l6": 40}  # docs not asked for
        assert dst.aliases() == {"repo": "repo__minilm-l6"}  # only aliases of copied collections


def test_edge_to_local_and_errors(local_store, monkeypatch):
    data, made = local_store
    migrate_embedded(data, "local", "edge", collections=["docs__minilm-l6"])
    # Back the other way into a fresh data dir's local store.
    other = data.parent / "other"
    with open_store(data, engine="edge") as src, open_store(other, engine="local") as dst:
        assert copy_store(src, dst) == {"docs__minilm-l6": 25}
        ids, vectors, _ = made["docs__minilm-l6"]
        assert dst.query("docs", vectors[3], k=1)[0].id == ids[3]

        # A destination whose count comes out wrong is reported, not returned as success.
        monkeypatch.setattr(type(dst), "count", lambda self, name, filter=None: 1)
        with pytest.raises(StoreMigrationError, match="destination has 1"):
            copy_store(src, dst)
        monkeypatch.undo()
        # Same name with another dim in the destination: a clear StoreError.
        dst.ensure_collection("clash", DIM + 1)
        src.ensure_collection("clash", DIM)
        with pytest.raises(StoreError, match="dim"):
            copy_store(src, dst, collections=["clash"])

    with pytest.raises(StoreMigrationError, match="nothing to migrate"):
        migrate_embedded(data, "edge", "edge")
    with pytest.raises(StoreMigrationError, match="no 'local' store"):
        migrate_embedded(data.parent / "missing", "local", "edge")
