"""One contract suite for every embedded VectorStore engine (Edge and qdrant-client local)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from rag_assets.store.sparse import SparseVec, encode_documents, encode_query, token_index
from rag_assets.store import (
    PAYLOAD_INDEXES,
    CollectionNotFoundError,
    Hit,
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
        elif sys.argv[3] == "write":
            s.delete("code_v1", [s.query("code_v1", np.ones(%d, dtype=np.float32), k=1)[0].id])
            print("WROTE")
        else:
            hits = s.query("code_v1", np.ones(%d, dtype=np.float32), k=3)
            print("OK", len(hits))
except StoreBusyError as e:
    print("BUSY", e)
    sys.exit(3)
""" % (DIM, DIM)


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


def test_edge_reads_never_wait_for_a_writer(filled, engine, data_dir):
    """Edge: another process searches while this one writes, and sees the published state until the
    writer publishes; a second writer (or a delete) is refused while the first holds the collection."""
    if engine != "edge":
        pytest.skip("copy-on-write generations are the Edge engine's")
    store, ids, vectors, payloads = filled
    store.query("code_v1", np.ones(DIM, dtype=np.float32), k=1)  # a reader holding it is no obstacle
    assert _run_child(data_dir, engine).stdout.strip() == "OK 3"
    store.delete("code_v1", ids[:N - 2])  # begins a write: only 2 points left in our unpublished copy
    assert store.count("code_v1") == 2
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    readers = [subprocess.Popen([sys.executable, "-c", _CHILD, str(data_dir), engine, "query"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for r in readers:  # four processes search at once, all from the published state (N points: 3 hits)
        out, err = r.communicate(timeout=120)
        assert (r.returncode, out.strip()) == (0, "OK 3"), out + err
    for action in ("write", "delete"):
        out = _run_child(data_dir, engine, action)
        assert out.returncode == 3, out.stdout + out.stderr
        assert "being written by another process" in out.stdout
    store.finalize("code_v1")  # publish
    out = _run_child(data_dir, engine)
    assert (out.returncode, out.stdout.strip()) == (0, "OK 2"), out.stdout + out.stderr


def test_edge_generations_are_collected_once_no_reader_pins_them(filled, engine, data_dir):
    """A live reader keeps the generation it reads; a killed reader's pin does not; the writer collects."""
    if engine != "edge":
        pytest.skip("copy-on-write generations are the Edge engine's")
    store, ids, *_ = filled
    folder = data_dir / "qdrant_edge" / "code_v1"

    def generations() -> list[str]:
        return sorted(p.name for p in folder.iterdir() if p.name.startswith("g"))

    def reader() -> subprocess.Popen:
        code = ("import sys, time, numpy as np\nfrom rag_assets.store import open_store\n"
                f"s = open_store({str(data_dir)!r}, engine='edge')\n"
                f"s.query('code_v1', np.ones({DIM}, dtype=np.float32), k=1)\nprint('reading', flush=True)\n"
                "sys.stdin.readline()\ns.close()\n")
        r = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
        assert r.stdout.readline().strip() == "reading"
        return r

    [first] = generations()
    live, killed = reader(), reader()
    store.delete("code_v1", ids[:1])
    store.finalize("code_v1")
    [second] = set(generations()) - {first}
    assert generations() == sorted([first, second])  # the readers still hold the first
    killed.kill()
    killed.wait()
    store.delete("code_v1", ids[1:2])
    store.finalize("code_v1")
    assert first in generations()  # one live reader is enough to keep it
    live.communicate("\n", timeout=60)  # closes: its pin goes with it
    store.delete("code_v1", ids[2:3])
    store.finalize("code_v1")
    assert len(generations()) == 1 and first not in generations() and second not in generations()
    assert not list((folder / "pins").iterdir()) or all(p.name.split(".")[1] == str(os.getpid())
                                                          for p in (folder / "pins").iterdir())


def test_edge_failed_write_publishes_nothing(filled, engine, data_dir):
    if engine != "edge":
        pytest.skip("copy-on-write generations are the Edge engine's")
    store, ids, *_ = filled
    store.close()
    with pytest.raises(RuntimeError):
        with reopen(engine, data_dir) as s:
            s.delete("code_v1", ids[:10])
            raise RuntimeError("the run fails mid-write")
    with reopen(engine, data_dir) as s:
        assert s.count("code_v1") == N
        # Only the published generation is left; the dropped copy and every pin are gone.
        folder = data_dir / "qdrant_edge" / "code_v1"
        assert sorted(p.name for p in folder.iterdir() if p.name.startswith("g")) == [
            json.loads((folder / "CURRENT.json").read_text())["generation"]]


def test_busy_store_in_another_process(filled, engine, data_dir):
    if engine != "local":
        pytest.skip("a server is shared by design; Edge readers use their own views")
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


# ---- sparse / hybrid ----------------------------------------------------------------

RARE = 37  # the only chunk mentioning ParquetIOManager


def code_texts(n: int = N) -> list[str]:
    # Distinct lengths, so BM25 scores of shared tokens differ (no ties within a ranking).
    texts = [
        f"def handler_{i}(request):\n    cfg = load_config(path_{i % 5})\n    return render(cfg, request)"
        + "\n# note" * i
        for i in range(n)
    ]
    texts[RARE] += "\n\nclass ParquetIOManager(IOManager):\n    pass"
    return texts


@pytest.fixture
def sparse_filled(store):
    ids, vectors, payloads = make_points()
    store.ensure_collection("h", DIM)
    store.upsert("h", ids, vectors, payloads, sparse=encode_documents(code_texts()), batch_size=16)
    store.finalize("h")
    return store, ids, vectors, payloads


def test_sparse_query_finds_rare_identifier(sparse_filled):
    store, ids, vectors, _ = sparse_filled
    q = encode_query("ParquetIOManager")
    hits = store.query("h", mode="sparse", sparse_vector=q, k=5)
    assert hits[0].id == ids[RARE] and hits[0].score > 0
    assert len(hits) == 1  # no other chunk shares a token with the query (io/manager/parquet)
    # Dense alone points at chunk 3; hybrid keeps it first-ranked and pulls in the rare chunk.
    assert store.query("h", vectors[3], k=1)[0].id == ids[3]
    hybrid = [h.id for h in store.query("h", vectors[3], k=2, mode="hybrid", sparse_vector=q)]
    assert set(hybrid) == {ids[3], ids[RARE]}


def test_sparse_scores_apply_idf_natively(sparse_filled):
    store, ids, _, _ = sparse_filled
    texts = code_texts()
    docs = encode_documents(texts)
    # BM25 IDF as Qdrant computes it, over the N points that have a sparse vector.
    def idf(df: int) -> float:
        return math.log((N - df + 0.5) / (df + 0.5) + 1)

    rare_tok, common_tok = "parquet", "handler"  # 1 chunk vs all N chunks
    for tok, df in ((rare_tok, 1), (common_tok, N)):
        j = RARE
        weight = float(docs[j].values[list(docs[j].indices).index(token_index(tok))])
        hits = store.query("h", mode="sparse", sparse_vector=encode_query(tok), k=N)
        score = {h.id: h.score for h in hits}[ids[j]]
        assert score == pytest.approx(idf(df) * weight, rel=1e-4)


def _rrf_points():
    """Dense (query e0) ranks A C B D E; sparse ranks B C E (A and D have no sparse vector)."""
    names = "ABCDE"
    cos = {"A": 1.0, "C": 0.9, "B": 0.7, "D": 0.5, "E": 0.3}
    vectors = np.zeros((5, DIM), np.float32)
    for i, n in enumerate(names):
        vectors[i, 0], vectors[i, i + 1] = cos[n], math.sqrt(1 - cos[n] ** 2)
    sv = {
        "B": SparseVec(np.array([1, 2], np.uint32), np.array([2.0, 2.0], np.float32)),
        "C": SparseVec(np.array([1], np.uint32), np.array([1.5], np.float32)),
        "E": SparseVec(np.array([2], np.uint32), np.array([1.0], np.float32)),
    }
    empty = SparseVec(np.zeros(0, np.uint32), np.zeros(0, np.float32))
    ids = [str(uuid.UUID(int=i + 1)) for i in range(5)]
    payloads = [{"name": n, "source": "s"} for n in names]
    return ids, vectors, payloads, [sv.get(n, empty) for n in names]


@pytest.mark.parametrize("rrf_k", [2, 60])
def test_hybrid_rrf_order_and_scores(store, rrf_k):
    ids, vectors, payloads, sparse = _rrf_points()
    store.ensure_collection("r", DIM)
    store.upsert("r", ids, vectors, payloads, sparse=sparse)
    q_dense = np.eye(DIM, dtype=np.float32)[0]
    q_sparse = SparseVec(np.array([1, 2], np.uint32), np.array([1.0, 1.0], np.float32))
    dense = [h.payload["name"] for h in store.query("r", q_dense, k=5)]
    sparse_hits = [h.payload["name"] for h in store.query("r", mode="sparse", sparse_vector=q_sparse, k=5)]
    assert dense == list("ACBDE") and sparse_hits == list("BCE")

    expected: dict[str, float] = {}
    for ranking in (dense, sparse_hits):
        for rank, n in enumerate(ranking):
            expected[n] = expected.get(n, 0.0) + 1.0 / (rrf_k + rank)
    hits = store.query("r", q_dense, k=5, mode="hybrid", sparse_vector=q_sparse, rrf_k=rrf_k)
    assert [h.payload["name"] for h in hits] == sorted(expected, key=expected.get, reverse=True)
    assert [h.score for h in hits] == pytest.approx(sorted(expected.values(), reverse=True), rel=1e-5)
    # k=2: B (sparse #1, dense #3) beats A (dense #1 only) and C (#2 in both) -- for either k.
    assert [h.payload["name"] for h in hits[:2]] == ["B", "C"]
    again = store.query("r", q_dense, k=5, mode="hybrid", sparse_vector=q_sparse, rrf_k=rrf_k)
    assert again == hits  # deterministic

    # prefetch_k bounds each branch: with 1, only A (dense #1) and B (sparse #1) are fused...
    few = store.query("r", q_dense, k=1, mode="hybrid", sparse_vector=q_sparse, prefetch_k=1, rrf_k=rrf_k)
    assert len(few) == 1 and few[0].payload["name"] in "AB"
    # ...but never below k.
    assert len(store.query("r", q_dense, k=5, mode="hybrid", sparse_vector=q_sparse, prefetch_k=1)) == 5


def test_filters_apply_in_sparse_and_hybrid(sparse_filled):
    store, ids, vectors, payloads = sparse_filled
    assert (payloads[RARE]["source"], payloads[RARE]["language"]) == ("repo_b", "markdown")
    q = encode_query("ParquetIOManager handler_2")
    for mode in ("sparse", "hybrid"):
        hits = store.query("h", vectors[RARE], k=N, mode=mode, sparse_vector=q, filter={"source": "repo_a"})
        assert hits and all(h.payload["source"] == "repo_a" for h in hits)
        assert ids[RARE] not in {h.id for h in hits}
        flt = {"language": ["markdown", "rst"], "source": "repo_b"}
        hits = store.query("h", vectors[RARE], k=N, mode=mode, sparse_vector=q, filter=flt)
        assert hits[0].id == ids[RARE]
        assert all(h.payload["language"] in ("markdown", "rst") for h in hits)
        assert all(h.payload["source"] == "repo_b" for h in hits)
        assert store.query("h", vectors[0], k=3, mode=mode, sparse_vector=q, filter={"symbol": "nope"}) == []


def test_reupsert_with_sparse_is_idempotent(sparse_filled):
    store, ids, vectors, payloads = sparse_filled
    q = encode_query("ParquetIOManager handler render")
    before_sparse = store.query("h", mode="sparse", sparse_vector=q, k=N)
    # All points in both branches: RRF ties (ranks 3+5 vs 5+3) are then ordered by id, not
    # cut arbitrarily at k.
    before_hybrid = store.query("h", vectors[5], mode="hybrid", sparse_vector=q, k=N, prefetch_k=N)
    assert len(before_sparse) == len(before_hybrid) == N
    for _ in range(2):
        store.upsert("h", ids, vectors, payloads, sparse=encode_documents(code_texts()))
    store.finalize("h")
    assert store.count("h") == N
    after_sparse = store.query("h", mode="sparse", sparse_vector=q, k=N)
    assert [h.id for h in after_sparse] == [h.id for h in before_sparse]
    assert [h.score for h in after_sparse] == pytest.approx([h.score for h in before_sparse], rel=1e-5)
    assert len({h.score for h in after_sparse}) == N  # no ties: the order above is meaningful
    after_hybrid = store.query("h", vectors[5], mode="hybrid", sparse_vector=q, k=N, prefetch_k=N)
    assert after_hybrid == before_hybrid


def test_upsert_without_sparse_drops_the_sparse_vector(sparse_filled):
    store, ids, vectors, payloads = sparse_filled
    q = encode_query("ParquetIOManager")
    store.upsert("h", ids[RARE : RARE + 1], vectors[RARE : RARE + 1], payloads[RARE : RARE + 1])
    assert store.query("h", mode="sparse", sparse_vector=q) == []
    assert store.query("h", vectors[RARE], k=1)[0].id == ids[RARE]  # dense untouched


def test_empty_sparse_vectors(store):
    ids, vectors, payloads = make_points(4)
    sparse = encode_documents(["+ - * /", "load_config()", "", "render(cfg)"])
    assert len(sparse[0]) == len(sparse[2]) == 0
    store.ensure_collection("c", DIM)
    store.upsert("c", ids, vectors, payloads, sparse=sparse)
    assert store.count("c") == 4
    hits = store.query("c", mode="sparse", sparse_vector=encode_query("config render"), k=4)
    assert {h.id for h in hits} == {ids[1], ids[3]}
    assert store.query("c", mode="sparse", sparse_vector=encode_query("")) == []
    hybrid = store.query("c", vectors[2], k=4, mode="hybrid", sparse_vector=encode_query(""))
    assert hybrid[0].id == ids[2] and len(hybrid) == 4  # dense branch alone


def test_scroll_returns_dense_vector_of_hybrid_points(sparse_filled):
    store, ids, vectors, _ = sparse_filled
    rows = {pid: vec for pid, _, vec in store.scroll("h", with_vectors=True)}
    assert set(rows) == set(ids)
    assert all(vec.shape == (DIM,) and vec.dtype == np.float32 for vec in rows.values())
    assert np.allclose(rows[ids[RARE]], vectors[RARE] / np.linalg.norm(vectors[RARE]), atol=1e-5)


def test_query_mode_errors(filled):
    store, ids, vectors, payloads = filled
    q = encode_query("handler")
    with pytest.raises(StoreError, match="mode"):
        store.query("code_v1", vectors[0], mode="bm25")
    with pytest.raises(StoreError, match="sparse_vector"):
        store.query("code_v1", vectors[0], mode="hybrid")
    with pytest.raises(StoreError, match="dense query vector"):
        store.query("code_v1", mode="hybrid", sparse_vector=q)
    with pytest.raises(StoreError, match="dense query vector"):
        store.query("code_v1")
    with pytest.raises(StoreError):
        store.upsert("code_v1", ids[:2], vectors[:2], payloads[:2], sparse=[q])  # length mismatch
    bad = SparseVec(np.array([3, 3], np.uint32), np.array([1.0, 1.0], np.float32))
    with pytest.raises(StoreError, match="unique"):
        store.query("code_v1", mode="sparse", sparse_vector=bad)


def test_dense_only_collection(store):
    ids, vectors, payloads = make_points(10)
    assert store.ensure_collection("d", DIM, sparse=False) is True
    assert store.ensure_collection("d", DIM, sparse=False) is False
    with pytest.raises(StoreError, match="no sparse vectors"):
        store.ensure_collection("d", DIM)  # sparse=True asked of a dense-only collection
    store.upsert("d", ids, vectors, payloads)
    assert store.query("d", vectors[4], k=1)[0].id == ids[4]
    with pytest.raises(StoreError, match="no sparse vectors"):
        store.upsert("d", ids, vectors, payloads, sparse=encode_documents(["x"] * 10))
    for mode in ("sparse", "hybrid"):
        with pytest.raises(StoreError, match="no sparse vectors"):
            store.query("d", vectors[0], mode=mode, sparse_vector=encode_query("x"))
    assert store.ensure_collection("h", DIM) is True
    assert store.ensure_collection("h", DIM, sparse=False) is False  # asks less than it has: fine


def _make_legacy_collection(store, engine: str, name: str, dim: int) -> None:
    """A collection as created before hybrid search: one unnamed dense vector."""
    if engine == "edge":
        import qdrant_edge as qe

        config = qe.EdgeConfig(vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine))
        qe.EdgeShard.create(str(store.root / name), config).close()
        cfg = {"dim": dim, "distance": "cosine", "quantization": None, "metadata": {}}
        (store.root / name / "rag_collection.json").write_text(json.dumps(cfg))
    else:
        from qdrant_client import models as qm

        store.client.create_collection(
            name, vectors_config=qm.VectorParams(size=dim, distance=qm.Distance.COSINE)
        )


def test_pre_hybrid_collection_still_serves_dense(store, engine):
    ids, vectors, payloads = make_points(12)
    _make_legacy_collection(store, engine, "old", DIM)
    assert store.ensure_collection("old", DIM, sparse=False) is False
    with pytest.raises(StoreError, match="no sparse vectors"):
        store.ensure_collection("old", DIM)
    store.upsert("old", ids, vectors, payloads)
    store.set_alias("old_alias", "old")
    assert store.query("old_alias", vectors[7], k=1)[0].id == ids[7]
    rows = {pid: vec for pid, _, vec in store.scroll("old", with_vectors=True)}
    assert np.allclose(rows[ids[7]], vectors[7] / np.linalg.norm(vectors[7]), atol=1e-5)
    with pytest.raises(StoreError, match="no sparse vectors"):
        store.query("old", vectors[0], mode="hybrid", sparse_vector=encode_query("x"))


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


def _digests(folder: Path) -> dict[str, str]:
    import hashlib

    return {str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


def test_edge_copies_link_write_once_files_and_no_write_changes_a_published_byte(tmp_path, monkeypatch):
    """A writer's copy hard-links the big write-once files of indexed segments. Deletes, re-upserts of points
    that live in those segments, new points, an abort, then a finalize (which re-optimizes): the published
    generation's files keep every byte, and each generation answers with its own state."""
    from rag_assets.store.edge_generations import _WRITE_ONCE
    from rag_assets_tests.edge_points import small_checkpoints, unit_vectors

    small_checkpoints(monkeypatch, 200, 250)
    n, dim = 700, 16
    vecs = unit_vectors(n, dim, seed=3)
    ids = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"p{i}")) for i in range(n)]
    payloads = [{"path": f"f{i}.py", "text": f"text {i}", "source": "s"} for i in range(n)]
    sparse = encode_documents([p["text"] for p in payloads])
    root = tmp_path / "edge"
    with open_store(root, engine="edge") as s:
        s.ensure_collection("c", dim, indexing_threshold=1)
        s.upsert("c", ids, vecs, payloads, sparse=sparse)
        s.finalize("c")
    coll = root / "qdrant_edge" / "c"
    first = coll / json.loads((coll / "CURRENT.json").read_text())["generation"]
    before = _digests(first)
    assert any(_WRITE_ONCE.search(k) for k in before)  # indexed segments exist: there is something to link

    new_vecs = -vecs[:50]  # points 0..49 (in indexed segments) get new vectors; 50..99 are deleted
    with open_store(root, engine="edge") as reader:
        assert reader.query("c", vecs[60], k=1)[0].id == ids[60]  # a search pins the first generation
        with pytest.raises(RuntimeError):
            with open_store(root, engine="edge") as w:
                w.delete("c", ids[50:100])
                w.upsert("c", ids[:50], new_vecs, payloads[:50], sparse=sparse[:50])
                raise RuntimeError("the run fails: nothing is published")
        assert _digests(first) == before
        with open_store(root, engine="edge") as w:
            w.delete("c", ids[50:200])  # most of the first segment: its vacuum rebuilds it (drops the old folder)
            w.upsert("c", ids[:50], new_vecs, payloads[:50], sparse=sparse[:50])
            w.upsert("c", [str(uuid.uuid4())], vecs[:1] * 0 + 1 / math.sqrt(dim), [{"path": "new.py", "text": "n",
                                                                                 "source": "s"}])
            second = coll / w._held["c"].generation
            linked = [p for p in second.rglob("*") if p.is_file() and p.stat().st_nlink > 1]
            assert linked and all(_WRITE_ONCE.search(str(p)) for p in linked)
            w.finalize("c")
        assert _digests(first) == before  # not a byte of the pinned generation changed
        assert reader.query("c", vecs[60], k=1)[0].id != ids[60]  # a long-lived reader moves to the new one
    with open_store(root, engine="edge") as s:
        assert s.count("c") == n - 150 + 1
        assert s.query("c", new_vecs[7], k=1)[0].id == ids[7]
        assert ids[60] not in {h.id for h in s.query("c", vecs[60], k=20)}
