"""Big repositories in bounded memory (issue 14): the streamed steps equal the whole-table ones, and
deletions reach the store whatever the size.

Row groups and batches are shrunk (to 16-64 rows) so that small sources span many row groups, upsert
batches and chunking slices: the same code paths as a half-million-chunk source, at test speed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from dagster import AssetKey

import rag_assets.defs.assets as assets_mod
import rag_assets.embedding.incremental as incremental
import rag_assets.store.sync as sync_mod
import rag_assets.tables as tables_mod
from rag_assets.contract import PAYLOAD_COLUMNS, SPARSE_SCHEME, collection_name, embedding_text, point_id
from rag_assets.embedding.models import get_model
from rag_assets.store import open_store
from rag_assets.store.sparse import encode_documents as encode_sparse
from rag_assets.tables import Table, TableWriter, read_table, write_table
from rag_assets_tests.edge_points import small_checkpoints, unit_vectors
from rag_assets_tests.gitrepo import commit, make_repo

SPEC = get_model("minilm-l6")


@pytest.fixture
def small_groups(monkeypatch):
    """Row groups, batches and slices of a few rows: every table spans many of them."""
    monkeypatch.setattr(tables_mod, "ROW_GROUP_ROWS", 32)
    monkeypatch.setattr(tables_mod, "BATCH_ROWS", 32)
    monkeypatch.setattr(incremental, "BATCH_ROWS", 32)
    monkeypatch.setattr(sync_mod, "BATCH_ROWS", 16)
    monkeypatch.setattr(assets_mod, "CHUNK_SLICE_FILES", 3)


def fake_vectors(hashes: list[str]) -> np.ndarray:
    """Deterministic unit vectors by content hash (no model)."""
    if not hashes:
        return np.zeros((0, SPEC.dim), np.float32)
    v = np.stack([np.random.default_rng(int(h[:12], 16)).standard_normal(SPEC.dim) for h in hashes]).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def chunk_frame(n: int, seed: int, source: str = "s") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        f = int(rng.integers(0, n // 4 + 1))
        text = f"def f{i}_{int(rng.integers(0, 3))}():\n    return {i}\n"
        h = f"{abs(hash((f, text))) % 16**32:032x}"
        rows.append({"chunk_id": f"{abs(hash((source, f, i, h))) % 16**32:032x}", "content_hash": h,
                     "source": source, "path": f"pkg/m{f:03d}.py", "blob_sha": f"{f:040x}", "language": "python",
                     "kind": "function", "symbol": f"f{i}", "signature": f"def f{i}()", "imports": ["os"] if i % 2 else [],
                     "part": 0, "start_line": i + 1, "end_line": i + 2, "n_tokens": 12, "commit": "c" * 40, "text": text})
    return pd.DataFrame(rows).sort_values(["path", "start_line"]).reset_index(drop=True)


def whole_table_sync(store, name: str, chunks: pd.DataFrame, emb: Table, meta: dict) -> tuple[int, int]:
    """The sync before streaming (store/sync.py at 406e3f1), kept as the reference: every table in memory."""
    if list(emb.df["chunk_id"]) != list(chunks["chunk_id"]):
        vec_by_id = dict(zip(emb.df["chunk_id"], emb.vectors))
        vectors = np.stack([vec_by_id[c] for c in chunks["chunk_id"]])
    else:
        vectors = emb.vectors
    store.ensure_collection(name, SPEC.dim, "cosine", sparse=True)
    want = [point_id(c) for c in chunks["chunk_id"]]
    have = store.ids(name)
    new_idx = [i for i, p in enumerate(want) if p not in have]
    gone = sorted(have - set(want))
    if gone:
        store.delete(name, gone)
    if new_idx:
        rows = chunks.iloc[new_idx]
        payloads = rows[[c for c in PAYLOAD_COLUMNS if c in rows]].to_dict("records")
        for p, cid in zip(payloads, rows["chunk_id"]):
            p["chunk_id"] = cid
            p["start_line"], p["end_line"] = int(p["start_line"]), int(p["end_line"])
            p["part"] = int(p["part"])
            p["imports"] = [str(i) for i in p["imports"]]
        sparse = encode_sparse([embedding_text(p["path"], p["symbol"], p["text"], p.get("signature") or "")
                                for p in payloads])
        store.upsert(name, [want[i] for i in new_idx], vectors[new_idx], payloads, sparse=sparse)
    store.set_metadata(name, {**meta, "sparse": SPARSE_SCHEME, "vectors_run": emb.meta.get("vectors_run", "")})
    store.finalize(name)
    return len(new_idx), len(gone)


def snapshot_of(store, name: str) -> dict:
    return {pid: (p, np.round(v, 5).tolist()) for pid, p, v in store.scroll(name, with_vectors=True)}


def test_streamed_sync_equals_whole_table_sync(tmp_path, small_groups):
    """Three commits (cold, add/modify/delete, the same again with a lost ledger): the streamed sync (files,
    row groups of 32, upsert batches of 16, ledger diff) leaves the same points as the whole-table sync."""
    v1 = chunk_frame(300, 1)
    v2 = pd.concat([v1.iloc[40:250], chunk_frame(90, 2)]).sort_values(["path", "start_line"]).reset_index(drop=True)
    v3 = v2.iloc[::2].reset_index(drop=True)  # half the chunks deleted
    ledger = tmp_path / "ledger.parquet"
    with open_store(tmp_path / "old", engine="edge") as old, open_store(tmp_path / "new", engine="edge") as new:
        for step, df in enumerate([v1, v2, v3]):
            emb_df, vectors, _ = incremental.embed_chunks(df, None, SPEC, lambda t, h: fake_vectors(h))
            meta = {"model_version": SPEC.version, "vectors_run": "r1"}
            write_table(tmp_path / "chunks.parquet", df, {"commit": "c"})
            write_table(tmp_path / "emb.parquet", emb_df, meta, vectors)
            chunks_t, emb_t = Table.open(tmp_path / "chunks.parquet"), Table.open(tmp_path / "emb.parquet")
            assert len(chunks_t.row_groups()) > 3
            if step == 2:  # a killed run or a restored store: the token no longer matches, full diff
                new.set_metadata("c", {sync_mod.LEDGER_KEY: "stale"})
            up_old, del_old = whole_table_sync(old, "c", df, Table(emb_df, meta, vectors), {"indexed_commit": "c"})
            stats = sync_mod.sync_collection(new, "c", chunks_t, emb_t, dim=SPEC.dim, distance="cosine",
                                             meta={"indexed_commit": "c"}, ledger=ledger)
            assert (stats.upserted, stats.deleted) == (up_old, del_old)
            assert stats.diff == ("ledger" if step == 1 else "store")
            assert stats.points == len(df) == old.count("c")
            assert snapshot_of(new, "c") == snapshot_of(old, "c")
        # Nothing changed: nothing written, the ledger still valid.
        again = sync_mod.sync_collection(new, "c", chunks_t, emb_t, dim=SPEC.dim, distance="cosine",
                                         meta={"indexed_commit": "c"}, ledger=ledger)
        assert (again.upserted, again.deleted, again.diff) == (0, 0, "ledger")


def test_streamed_embeddings_equal_in_memory(tmp_path, small_groups, monkeypatch):
    """embed_table (row groups of 32, encode slices of 7, new vectors spilled to a file) == embed_chunks."""
    monkeypatch.setattr(incremental, "SPILL_BYTES", 4096)
    calls = []

    def encode(texts, hashes):
        calls.append(len(texts))
        return fake_vectors(hashes)

    v1, v2 = chunk_frame(200, 1), chunk_frame(260, 2)
    v2.iloc[:120] = v1.iloc[:120].values  # shared content
    df1, vec1, _ = incremental.embed_chunks(v1, None, SPEC, encode)
    meta = {"model_version": SPEC.version}
    write_table(tmp_path / "prev.parquet", df1, meta, vec1)
    write_table(tmp_path / "chunks.parquet", v2, {})
    df2, vec2, st2 = incremental.embed_chunks(v2, Table(df1, meta, vec1), SPEC, encode)
    calls.clear()
    with TableWriter(tmp_path / "out.parquet", meta, incremental.embedding_schema(SPEC.dim)) as w:
        st = incremental.embed_table(Table.open(tmp_path / "chunks.parquet"), Table.open(tmp_path / "prev.parquet"),
                                     SPEC, encode, w, encode_slice=7)
        w.commit()
    out = read_table(tmp_path / "out.parquet")
    assert (st.embedded, st.reused, st.deleted) == (st2.embedded, st2.reused, st2.deleted)
    assert st.embedded and st.reused and max(calls) <= 7 and sum(calls) == st.embedded
    assert out.df.equals(df2) and np.array_equal(out.vectors, vec2)
    assert len(Table.open(tmp_path / "out.parquet").row_groups()) == -(-len(v2) // 32)


MODULE = '''"""Module {i}."""


def func_{i}_a(x):
    """Return x plus {i}: a small function."""
    return x + {i}


def func_{i}_b(x):
    """Return x times {i}: another small function."""
    return x * {i}


class Thing{i}:
    """A class with two methods."""

    def first(self):
        return {i}

    def second(self):
        return -{i}
'''


def repo_files(n: int, offset: int = 0) -> dict[str, str]:
    return {f"pkg/sub{i % 7}/mod_{i:04d}.py": MODULE.format(i=i) for i in range(offset, offset + n)}


def test_streamed_chunks_equal_build_chunks(tmp_path, small_groups):
    """stream_chunks (previous read in row groups of 32, new files chunked 3 at a time, merged by path) writes
    the rows build_chunks makes in memory, across a commit that adds, modifies and deletes files."""
    from rag_assets.chunking.documents import build_chunks
    from rag_assets.sources.config import Source
    from rag_assets.sources.readers import FetchContext, GitReader

    files = repo_files(40)
    repo = make_repo(tmp_path / "repo", files)
    source = Source(name="s", kind="git", url=str(tmp_path / "repo"), branch="main")
    reader, previous = GitReader(), None
    changes = [{}, {**{p: None for p in list(files)[::5]}, **repo_files(6, 100),
                    "pkg/sub1/mod_0001.py": MODULE.format(i=1) + "\n\ndef extra():\n    return 1\n"}]
    for n, change in enumerate(changes):
        if change:
            commit(repo, change, f"change {n}")
        fetched = reader.fetch(source, FetchContext(tmp_path / "data"))
        docs = reader.documents(fetched.table)
        expected, exp_stats, meta = build_chunks("s", docs, previous, 512)
        with TableWriter(tmp_path / f"chunks{n}.parquet", meta, assets_mod.CHUNKS_SCHEMA) as w:
            stats, summary = assets_mod.stream_chunks("s", docs, previous, 512, None, w)
            got = w.commit()
        got_df = read_table(got.path).df
        pd.testing.assert_frame_equal(got_df.astype(object), expected.astype(object), check_dtype=False)
        assert (stats.files_indexed, stats.files_reused, stats.files_rechunked) == \
            (exp_stats.files_indexed, exp_stats.files_reused, exp_stats.files_rechunked)
        assert summary.chunks == len(expected) and summary.tokens == int(expected["n_tokens"].sum())
        assert dict(summary.files_by_language) == expected.groupby("language")["path"].nunique().to_dict()
        assert len(got.row_groups()) > 3
        previous = Table.open(got.path)
    assert stats.files_reused and stats.files_rechunked == 7  # 6 added + 1 modified, the rest reused


def _meta(instance, asset: str) -> dict:
    rec = instance.fetch_materializations(AssetKey(asset), limit=1).records[0]
    return {k: v.value for k, v in rec.asset_materialization.metadata.items()}


@pytest.mark.slow  # Dagster runs (and the golden-recall check loads the model for its queries)
@pytest.mark.parametrize("n_files", [12, 90])
def test_deletions_are_processed_at_every_size(env, tmp_path, monkeypatch, small_groups, n_files):
    """Index a source spanning many row groups and upsert batches (precomputed vectors), delete files in a
    new commit: the points deleted from the store are exactly the chunks removed, and none of the deleted
    files can be found. Then once more with the sync's ledger lost (a killed run): the full diff agrees."""
    from rag_assets.embedding.runners import EmbeddingRunner
    from rag_assets.tables import Tables

    monkeypatch.setenv("RAG_RECALL_THRESHOLD", "0")  # random vectors: the gate measures, it does not judge

    def embed(self, context, texts, hashes, model_key, workdir, progress=None):
        return fake_vectors(list(hashes)), {"texts": len(texts), "device": "precomputed"}

    monkeypatch.setattr(EmbeddingRunner, "embed", embed)
    files = repo_files(n_files)
    repo = make_repo(tmp_path / "big", files)
    env.write_sources({"name": "big", "kind": "git", "url": str(tmp_path / "big"), "branch": "main"})
    env.index("big")
    tables = Tables(env.data_dir)
    name = collection_name("big", "minilm-l6")
    before = set(tables.chunks("big").column("chunk_id").to_pylist())
    assert len(Table.open(tables.chunks_path("big")).row_groups()) > 2
    with env.store() as s:
        assert s.count(name) == len(before)

    for round_, (lost_ledger, deleted) in enumerate([(False, list(files)[::3]), (True, list(files)[1::3])]):
        if lost_ledger:
            with env.store() as s:
                s.set_metadata(name, {sync_mod.LEDGER_KEY: ""})
        commit(repo, {p: None for p in deleted}, f"delete {len(deleted)} files")
        env.index("big")
        after = set(tables.chunks("big").column("chunk_id").to_pylist())
        removed = before - after
        assert removed and not (after - before)
        coll = _meta(env.instance, "qdrant_collection")
        assert coll["deleted"] == len(removed) and coll["upserted"] == 0
        assert coll["diff"] == ("store" if lost_ledger else "ledger")
        with env.store() as s:
            assert s.count(name) == len(after)
            paths = {p["path"] for _, p, _ in s.scroll(name)}
            assert not paths & set(deleted)
            assert {pid for pid, _, _ in s.scroll(name)} == {point_id(c) for c in after}
        before = after


def test_gate_reuses_a_measurement_only_while_nothing_it_depends_on_changed(tmp_path):
    """The golden-recall gate's cached measurement holds for the same key, when few points changed and the
    files its queries cite or hit kept their chunk ids; otherwise it is measured again."""
    from rag_assets.retrieval.quality import REUSE_MAX_CHANGED, _reusable, involved_digest

    df = chunk_frame(200, 3)
    write_table(tmp_path / "chunks.parquet", df, {})
    chunks = Table.open(tmp_path / "chunks.parquet")
    paths = sorted(set(df["path"]))[:3]
    cache = {"key": "k", "points_changed": 100, "paths": paths, "involved": involved_digest(chunks, paths),
             "reports": {"q": {}}, "commit": "c" * 40}
    points = 200
    budget = int(REUSE_MAX_CHANGED * points)
    assert _reusable(cache, "k", {"points_changed": 100}, points, chunks, ["q"])  # nothing changed
    assert _reusable(cache, "k", {"points_changed": 100 + budget}, points, chunks, ["q"])  # elsewhere, few
    assert not _reusable(cache, "k", {"points_changed": 101 + budget}, points, chunks, ["q"])  # too many
    assert not _reusable(cache, "k", {"points_changed": 99}, points, chunks, ["q"])  # a restored store
    assert not _reusable(cache, "other", {"points_changed": 100}, points, chunks, ["q"])  # model, vectors, live...
    assert not _reusable(cache, "k", {"points_changed": 100}, points, chunks, ["q", "new set"])
    assert not _reusable(cache, "k", {"points_changed": 100}, points, None, ["q"])
    # A chunk of a cited file changed: measured again.
    df.loc[df["path"] == paths[1], "chunk_id"] = "f" * 32
    write_table(tmp_path / "chunks.parquet", df, {})
    assert not _reusable(cache, "k", {"points_changed": 101}, points, Table.open(tmp_path / "chunks.parquet"), ["q"])


def test_a_large_edge_write_is_checkpointed_into_bounded_segments(tmp_path, monkeypatch):
    """A write optimizes and flushes every CHECKPOINT_POINTS points and segments stop at SEGMENT_POINTS
    (shrunk here to 300 / 400): the same points, each found by its own vector, across several segments; and a
    later delete + re-upsert of a few points still converges."""
    small_checkpoints(monkeypatch, 300, 400)
    n, dim = 1500, 32
    vecs = unit_vectors(n, dim, seed=7)
    ids = [point_id(f"c{i}") for i in range(n)]
    payloads = [{"path": f"f{i}.py", "text": "x" * 200, "source": "s"} for i in range(n)]
    with open_store(tmp_path / "edge", engine="edge") as store:
        store.ensure_collection("big", dim, indexing_threshold=1)  # index every segment (HNSW) at this size
        store.upsert("big", ids, vecs, payloads)
        store.finalize("big")
        assert store.count("big") == n
        for i in (0, 299, 300, 777, n - 1):
            assert store.query("big", vecs[i], k=1, mode="dense")[0].id == ids[i]
        store.delete("big", ids[:10])
        store.upsert("big", ids[:5], vecs[:5], payloads[:5])
        store.finalize("big")
        assert store.count("big") == n - 5
        assert store.query("big", vecs[3], k=1, mode="dense")[0].id == ids[3]
    current = next(p for p in (tmp_path / "edge" / "qdrant_edge" / "big").iterdir() if p.name.startswith("g0"))
    segments = [p for p in (current / "segments").iterdir() if p.is_dir()]
    assert len(segments) >= 4  # 1,500 points in segments of at most ~400 (one or two without checkpoints)


def test_exact_neighbours_stream_the_embeddings_table_and_agree_with_exact_search(tmp_path, small_groups):
    """The approximate-recall check's ground truth, read 32 rows at a time, is the brute-force top 10 and the
    store's exact search (by point id); the recall measured against it matches the one against the store."""
    from rag_assets.store.quality import approximate_recall, exact_neighbours

    n, dim = 400, 24
    vecs = unit_vectors(n, dim, seed=11)
    chunk_ids = [f"chunk{i}" for i in range(n)]
    write_table(tmp_path / "emb.parquet", pd.DataFrame({"chunk_id": chunk_ids}), {}, vecs)
    emb = Table.open(tmp_path / "emb.parquet")
    assert len(emb.row_groups()) > 10
    queries = vecs[::40] + 0.1 * unit_vectors(10, dim, seed=12)
    truth = exact_neighbours(emb, queries, k=10)
    brute = [{chunk_ids[j] for j in np.argsort(-(vecs @ (q / np.linalg.norm(q))))[:10]} for q in queries]
    assert truth == brute
    assert exact_neighbours(emb, queries, distance="euclid") is None  # those keep the store's exact search

    with open_store(tmp_path / "edge", engine="edge") as store:
        store.ensure_collection("c", dim, indexing_threshold=1)
        store.upsert("c", [point_id(c) for c in chunk_ids], vecs, [{"path": c} for c in chunk_ids])
        store.finalize("c")
        by_point = [{point_id(c) for c in t} for t in truth]
        assert by_point == [{h.id for h in store.query("c", q, k=10, exact=True)} for q in queries]
        ours = approximate_recall(store, "c", queries, None, exact=by_point)[1]
        theirs = approximate_recall(store, "c", queries, None)[1]
        assert ours["recall@10_vs_exact"] == theirs["recall@10_vs_exact"] > 0.5
        assert ours["exact_from"].startswith("the embeddings table") and theirs["exact_from"] == "the store"
