"""One contract suite for every embedded VectorStore engine (Edge and qdrant-client local)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from rag_assets.store import (
    PAYLOAD_INDEXES,
    CollectionNotFoundError,
    Hit,
    StoreBusyError,
    StoreError,
    VectorStore,
    open_store,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
DIM = 16
N = 60
LANGS = ("python", "markdown", "rst")


# Opt-in: also run the contract against a THROWAWAY Qdrant server (every collection on it is
# deleted before each test), e.g. RAG_TEST_QDRANT_URL=http://localhost:6333.
SERVER_URL = os.environ.get("RAG_TEST_QDRANT_URL")
ENGINES = ["edge", "local"] + (["server"] if SERVER_URL else [])


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    # A developer's QDRANT_URL / RAG_STORE_ENGINE must not redirect the suite.
    monkeypatch.delenv("QDRANT_URL", raising=False)
    monkeypatch.delenv("QDRANT_API_KEY", raising=False)
    monkeypatch.delenv("RAG_STORE_ENGINE", raising=False)


def reopen(engine: str, data_dir: Path):
    if engine == "server":
        return open_store(url=SERVER_URL)
    return open_store(data_dir, engine=engine)


def make_points(n: int = N, dim: int = DIM, seed: int = 0):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    ids = [str(uuid.UUID(int=int(rng.integers(1, 2**63)) << 64 | i)) for i in range(n)]
    payloads = [
        {
            "source": "repo_a" if i % 2 == 0 else "repo_b",
            "path": f"src/f{i % 5}.py",
            "language": LANGS[i % 3],
            "symbol": f"sym_{i}",
            "kind": "function",
            "text": f"chunk {i}",
            "start_line": i + 1,
        }
        for i in range(n)
    ]
    return ids, vectors, payloads


@pytest.fixture(params=ENGINES)
def engine(request) -> str:
    return request.param


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(engine, data_dir):
    s = reopen(engine, data_dir)
    if engine == "server":
        for name in s.list_collections():
            s.delete_collection(name)
    yield s
    s.close()


@pytest.fixture
def filled(store):
    ids, vectors, payloads = make_points()
    assert store.ensure_collection("code_v1", DIM) is True
    store.upsert("code_v1", ids, vectors, payloads, batch_size=16)
    store.finalize("code_v1")
    return store, ids, vectors, payloads


def test_engine_and_protocol(store, engine):
    assert store.engine == engine
    assert isinstance(store, VectorStore)


def test_upsert_count_and_progress(store):
    ids, vectors, payloads = make_points()
    store.ensure_collection("c", DIM)
    done: list[int] = []
    store.upsert("c", ids, vectors, payloads, batch_size=25, progress=done.append)
    assert done == [25, 25, 10]
    assert store.count("c") == N


def test_reupsert_same_ids_overwrites(filled):
    store, ids, vectors, payloads = filled
    new_payloads = [{**p, "text": "updated"} for p in payloads[:10]]
    store.upsert("code_v1", ids[:10], vectors[:10], new_payloads)
    assert store.count("code_v1") == N
    hit = store.query("code_v1", vectors[3], k=1, exact=True)[0]
    assert hit.id == ids[3] and hit.payload["text"] == "updated"


def test_delete_and_ids(filled):
    store, ids, _, _ = filled
    assert store.ids("code_v1") == set(ids)
    store.delete("code_v1", ids[:7])
    store.delete("code_v1", [])
    assert store.count("code_v1") == N - 7
    assert store.ids("code_v1") == set(ids[7:])


def test_ids_are_canonical_uuid_strings(store):
    ids, vectors, payloads = make_points(3)
    store.ensure_collection("c", DIM)
    store.upsert("c", [i.upper() for i in ids], vectors, payloads)  # any UUID spelling in
    assert store.ids("c") == set(ids)  # canonical lowercase out
    with pytest.raises(StoreError):
        store.upsert("c", ["not-a-uuid"], vectors[:1], payloads[:1])


@pytest.mark.parametrize("exact", [True, False])
def test_query_nearest_and_score_order(filled, exact):
    store, ids, vectors, payloads = filled
    for j in (0, 17, 42):
        hits = store.query("code_v1", vectors[j], k=5, exact=exact)
        assert len(hits) == 5 and all(isinstance(h, Hit) for h in hits)
        assert hits[0].id == ids[j]
        assert hits[0].score == pytest.approx(1.0, abs=1e-4)  # cosine with itself
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert hits[0].payload == payloads[j]  # stored payload only, no internal fields


def test_query_matches_numpy_ranking(filled):
    store, ids, vectors, _ = filled
    q = np.random.default_rng(7).standard_normal(DIM).astype(np.float32)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    expected = [ids[i] for i in np.argsort(-(unit @ (q / np.linalg.norm(q))))[:5]]
    assert [h.id for h in store.query("code_v1", q, k=5, exact=True)] == expected


def test_query_filters(filled):
    store, ids, vectors, payloads = filled
    # vectors[0] is repo_a/python: filtering it out must return the best *other* match.
    hits = store.query("code_v1", vectors[0], k=N, filter={"source": "repo_b"}, exact=True)
    assert hits and all(h.payload["source"] == "repo_b" for h in hits)
    assert {h.id for h in hits} == {i for i, p in zip(ids, payloads) if p["source"] == "repo_b"}

    hits = store.query("code_v1", vectors[1], k=N, filter={"language": ["markdown", "rst"]})
    assert hits[0].id == ids[1]
    assert {h.payload["language"] for h in hits} == {"markdown", "rst"}
    assert len(hits) == sum(p["language"] != "python" for p in payloads)

    hits = store.query("code_v1", vectors[4], k=N, filter={"source": "repo_a", "path": "src/f4.py"})
    want = {i for i, p in zip(ids, payloads) if p["source"] == "repo_a" and p["path"] == "src/f4.py"}
    assert {h.id for h in hits} == want and hits[0].id == ids[4]

    assert store.query("code_v1", vectors[0], k=3, filter={"symbol": "nope"}) == []


def test_count_with_filter(filled):
    store, _, _, payloads = filled
    assert store.count("code_v1", {"source": "repo_a"}) == sum(p["source"] == "repo_a" for p in payloads)
    assert store.count("code_v1", {"language": ["python", "rst"]}) == sum(
        p["language"] in ("python", "rst") for p in payloads
    )
    assert store.count("code_v1", {"source": "repo_b", "language": "rst"}) == sum(
        p["source"] == "repo_b" and p["language"] == "rst" for p in payloads
    )
    assert store.count("code_v1", {"kind": "class"}) == 0


def test_scroll_with_and_without_vectors(filled):
    store, ids, vectors, payloads = filled
    by_id = {i: (p, v) for i, p, v in zip(ids, payloads, vectors)}
    rows = list(store.scroll("code_v1", batch=7))
    assert len(rows) == N and {r[0] for r in rows} == set(ids)
    assert all(vec is None and payload == by_id[pid][0] for pid, payload, vec in rows)

    rows = list(store.scroll("code_v1", with_vectors=True, batch=1000))
    assert len(rows) == N
    for pid, payload, vec in rows:
        assert vec.dtype == np.float32 and vec.shape == (DIM,)
        original = by_id[pid][1]
        # cosine collections store unit vectors: compare directions
        assert np.allclose(vec, original / np.linalg.norm(original), atol=1e-5)


def test_alias_create_and_atomic_move(filled):
    store, ids, vectors, payloads = filled
    assert store.resolve_alias("code") is None
    store.set_alias("code", "code_v1")
    assert store.resolve_alias("code") == "code_v1"
    assert store.query("code", vectors[5], k=1)[0].id == ids[5]

    ids2, vectors2, payloads2 = make_points(10, seed=1)
    store.ensure_collection("code_v2", DIM)
    store.upsert("code_v2", ids2, vectors2, payloads2)
    store.finalize("code_v2")
    store.set_alias("code", "code_v2")  # move
    assert store.aliases() == {"code": "code_v2"}
    assert store.query("code", vectors2[3], k=1)[0].id == ids2[3]
    assert store.count("code") == 10
    assert store.query("code_v1", vectors[5], k=1)[0].id == ids[5]  # old one untouched

    with pytest.raises(CollectionNotFoundError):
        store.set_alias("code", "missing")
    with pytest.raises(StoreError):
        store.set_alias("code_v1", "code_v2")  # alias may not shadow a collection


def test_metadata_merge_survives_reopen(filled, engine, data_dir):
    store, *_ = filled
    assert store.get_metadata("code_v1") == {}
    store.set_metadata("code_v1", {"indexed_commit": "abc123", "model": "minilm"})
    store.set_metadata("code_v1", {"indexed_commit": "def456"})
    assert store.get_metadata("code_v1") == {"indexed_commit": "def456", "model": "minilm"}
    store.set_alias("code", "code_v1")
    assert store.get_metadata("code")["model"] == "minilm"  # through the alias too
    store.close()
    with reopen(engine, data_dir) as again:
        assert again.get_metadata("code_v1") == {"indexed_commit": "def456", "model": "minilm"}


def test_reopen_after_close_keeps_everything(filled, engine, data_dir):
    store, ids, vectors, payloads = filled
    store.set_alias("code", "code_v1")
    store.delete("code_v1", ids[:2])
    store.finalize("code_v1")
    store.close()
    store.close()  # idempotent
    with reopen(engine, data_dir) as again:
        assert again.list_collections() == {"code_v1": N - 2}
        assert again.aliases() == {"code": "code_v1"}
        assert again.ids("code_v1") == set(ids[2:])
        hit = again.query("code", vectors[9], k=1)[0]
        assert hit.id == ids[9] and hit.payload == payloads[9]
        assert again.ensure_collection("code_v1", DIM) is False


def test_writes_survive_close_without_finalize(store, engine, data_dir):
    ids, vectors, payloads = make_points(20)
    store.ensure_collection("c", DIM)
    store.upsert("c", ids, vectors, payloads)
    store.delete("c", ids[:5])
    store.close()
    with reopen(engine, data_dir) as again:
        assert again.ids("c") == set(ids[5:])


def test_ensure_collection_idempotent_and_dim_mismatch(store):
    assert store.ensure_collection("c", DIM) is True
    assert store.collection_exists("c")
    assert store.ensure_collection("c", DIM) is False
    with pytest.raises(StoreError, match="dim"):
        store.ensure_collection("c", DIM + 1)
    with pytest.raises(StoreError):
        store.ensure_collection("c", DIM, distance="nope")
    with pytest.raises(StoreError):
        store.ensure_collection("bad/name", DIM)
    assert not store.collection_exists("other")


def test_quantized_and_hnsw_settings_accepted(store):
    assert store.ensure_collection("q8", DIM, quantization="int8", hnsw_m=8, hnsw_ef_construct=64)
    assert store.ensure_collection("qb", DIM, quantization="binary")
    with pytest.raises(StoreError):
        store.ensure_collection("qx", DIM, quantization="pq")


def test_delete_collection(filled):
    store, *_ = filled
    store.set_alias("code", "code_v1")
    store.delete_collection("code_v1")
    assert not store.collection_exists("code_v1")
    assert store.aliases() == {}  # aliases of a dropped collection go with it
    assert store.list_collections() == {}
    store.delete_collection("code_v1")  # no-op when missing
    assert store.ensure_collection("code_v1", DIM + 4) is True  # name reusable, new dim


def test_list_collections_counts(filled):
    store, ids, vectors, payloads = filled
    store.ensure_collection("empty", DIM)
    store.ensure_collection("small", DIM)
    store.upsert("small", ids[:3], vectors[:3], payloads[:3])
    store.set_alias("code", "code_v1")  # aliases are not collections
    assert store.list_collections() == {"code_v1": N, "empty": 0, "small": 3}


def test_missing_collection_raises(store):
    q = np.ones(DIM, dtype=np.float32)
    with pytest.raises(CollectionNotFoundError):
        store.query("missing", q)
    with pytest.raises(CollectionNotFoundError):
        store.count("missing")
    with pytest.raises(CollectionNotFoundError):
        store.get_metadata("missing")
    with pytest.raises(CollectionNotFoundError):
        list(store.scroll("missing"))
    ids, vectors, payloads = make_points(2)
    with pytest.raises(CollectionNotFoundError):
        store.upsert("missing", ids, vectors, payloads)


def test_euclid_scores_higher_is_better(store):
    ids, vectors, payloads = make_points(20)
    store.ensure_collection("e", DIM, distance="euclid")
    store.upsert("e", ids, vectors, payloads)
    store.finalize("e")
    hits = store.query("e", vectors[2], k=3, exact=True)
    assert hits[0].id == ids[2] and hits[0].score == pytest.approx(0.0, abs=1e-4)
    assert hits[0].score > hits[1].score >= hits[2].score


_CHILD = """
import sys
import numpy as np
from rag_assets.store import StoreBusyError, open_store
try:
    with open_store(sys.argv[1], engine=sys.argv[2]) as s:
        if sys.argv[3] == "delete":
            s.delete_collection("code_v1")
            print("DELETED")
        else:
            hits = s.query("code_v1", np.ones(%d, dtype=np.float32), k=3)
            print("OK", len(hits))
except StoreBusyError as e:
    print("BUSY", e)
    sys.exit(3)
""" % DIM


def _run_child(data_dir: Path, engine: str, action: str = "query") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("QDRANT_URL", "RAG_STORE_ENGINE")}
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-c", _CHILD, str(data_dir), engine, action],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_busy_store_in_another_process(filled, engine, data_dir):
    if engine == "server":
        pytest.skip("a server is shared by design")
    store, *_ = filled
    store.query("code_v1", np.ones(DIM, dtype=np.float32), k=1)  # holds the store open
    out = _run_child(data_dir, engine)
    assert out.returncode == 3, out.stdout + out.stderr
    assert "locked by another process" in out.stdout
    assert "Dagster" in out.stdout and "QDRANT_URL" in out.stdout
    assert str(data_dir) in out.stdout
    out = _run_child(data_dir, engine, "delete")  # nor may it delete what we hold
    assert out.returncode == 3, out.stdout + out.stderr
    store.close()
    out = _run_child(data_dir, engine)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == "OK 3"


def test_context_manager_closes(store, engine, data_dir):
    with store as s:
        s.ensure_collection("c", DIM)
    with reopen(engine, data_dir) as s:  # would be busy if the first was still open
        assert s.collection_exists("c")


def test_open_store_engine_selection(data_dir, monkeypatch):
    with open_store(data_dir) as s:
        assert s.engine == "edge"
    assert (data_dir / "qdrant_edge").is_dir()
    monkeypatch.setenv("RAG_STORE_ENGINE", "local")
    with open_store(data_dir) as s:
        assert s.engine == "local"
    assert (data_dir / "qdrant_local").is_dir()
    with pytest.raises(StoreError):
        open_store(None)
    with pytest.raises(StoreError):
        open_store(data_dir, engine="nope")


def test_payload_indexes_constant():
    assert PAYLOAD_INDEXES == {k: "keyword" for k in ("source", "path", "language", "symbol", "kind")}


# ---- Edge-specific ----------------------------------------------------------------


@pytest.mark.parametrize("quantization", ["int8", "binary"])
def test_edge_quantized_rescore_matches_exact(data_dir, quantization):
    dim, n = 32, 3000
    ids, vectors, payloads = make_points(n, dim, seed=3)
    with open_store(data_dir, engine="edge") as store:
        # A tiny indexing threshold so finalize() really builds HNSW + quantized vectors.
        store.ensure_collection("q", dim, quantization=quantization, indexing_threshold=10)
        store.upsert("q", ids, vectors, payloads, batch_size=1000)
        store.finalize("q")
        shard_info = store._shard("q").info()
        assert shard_info.indexed_vectors_count == n  # HNSW built by finalize
        for j in range(0, n, 150):
            exact = store.query("q", vectors[j], k=1, exact=True)[0]
            approx = store.query("q", vectors[j], k=1, rescore=True, oversampling=2.0)[0]
            assert exact.id == approx.id == ids[j]
            assert approx.score == pytest.approx(exact.score, abs=1e-4)


def test_edge_layout_and_payload_indexes(data_dir):
    store = open_store(data_dir, engine="edge")
    ids, vectors, payloads = make_points()
    store.ensure_collection("code_v1", DIM)
    store.upsert("code_v1", ids, vectors, payloads)
    store.set_metadata("code_v1", {"model": "m"})
    store.set_alias("code", "code_v1")
    root = data_dir / "qdrant_edge"
    assert (root / "code_v1" / "rag_collection.json").is_file()
    assert (root / "aliases.json").is_file()
    assert not list(root.glob(".*.tmp")) and not list((root / "code_v1").glob(".*.tmp"))
    schema = store._shard("code_v1").info().payload_schema
    assert set(schema) == set(PAYLOAD_INDEXES)
    store.close()


def test_edge_recovers_half_created_collection(data_dir):
    # A crash between shard creation and rag_collection.json leaves a folder without config.
    import qdrant_edge as qe

    root = data_dir / "qdrant_edge"
    shard = qe.EdgeShard.create(
        str(root / "c"), qe.EdgeConfig(vectors=qe.EdgeVectorParams(size=4, distance=qe.Distance.Cosine))
    )
    shard.close()
    with open_store(data_dir, engine="edge") as store:
        assert not store.collection_exists("c")
        assert store.list_collections() == {}
        assert store.ensure_collection("c", DIM) is True
        assert store.count("c") == 0
