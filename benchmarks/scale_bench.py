"""Scale: how each indexing step's wall time and peak memory grow with the repository, up to ~half a
million chunks, and what a one-file commit costs on a ~50k-chunk source.

Corpus: Django's sdist (PyPI `django==5.1`, ~4,700 indexable files, ~54k chunks) made into a git repo
(benchmarks/_corpus.py), then written with `git fast-import` into one bare repo per size:
- 10 %, 30 %, 100 % of Django's files (a fixed hash-based subset; 10 % is inside 30 %);
- ~200k and ~500k chunks: 4 and 10 copies of the whole tree (`copy1/...`); copy i appends i blank lines
  to each text file, so every copy has its own blobs (git reads, line counts) and its own chunks.

Vectors are NOT computed by the model (CPU encoding does ~20 texts/s here: 54k chunks would take 45 min,
500k seven hours). The `embedder` resource is replaced by a precomputed-vector runner: each text's vector
is a deterministic unit vector picked by its content hash (two of 65,536 pooled vectors near a random
24-dimensional subspace, summed and normalised: low intrinsic dimension, as real embeddings have).
Everything else is the real code path: the Dagster assets and asset checks, the
Parquet IO manager, the Qdrant Edge store (upsert, HNSW build in finalize), search. The golden-recall
check still loads the real model for its queries (their recall on random vectors is meaningless: the
benchmark sets RAG_RECALL_THRESHOLD=0 so the gate measures time, not quality).

Every step runs as its own Dagster run in a fresh Python process; its peak RSS is that process's VmHWM
(reset after imports with /proc/self/clear_refs, so it is the peak during the step, imports included in
the baseline). Steps per size: cold (snapshot, chunks, golden_queries, embeddings, qdrant_collection,
each asset check, collection_alias), search p50/p95, a no-op run (same commit: must embed 0 and upsert 0),
and a one-file commit (one Python function appended to one file).

`--dagster` measures the one-file commit through `rag-assets index` (service.runs.index_source, in
process, both jobs, with all checks) on 100 % Django: the cold index with precomputed vectors, then a
one-file commit embedded by the real model (loaded before the timing; its load time is reported apart),
broken down step by step from the Dagster event log.

    .venv/bin/python benchmarks/scale_bench.py --label after                 # every size (~1 h here)
    .venv/bin/python benchmarks/scale_bench.py --label after --sizes 0.1,0.3
    .venv/bin/python benchmarks/scale_bench.py --label after --dagster       # the one-file commit only
    .venv/bin/python benchmarks/scale_bench.py --render                      # results/scale.md from .json

Results accumulate in benchmarks/results/scale.json under the label (`before` was measured with the
tree before the streaming changes: PYTHONPATH pointing at a copy of it); scale.md is rendered from it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

RESULTS = HERE / "results"
JSON_OUT, MD_OUT = RESULTS / "scale.json", RESULTS / "scale.md"
SPEC = "django==5.1"
SOURCE, MODEL = "bench", "minilm-l6"
CHANGED_FILE = "django/utils/text.py"  # the one-file commit appends a function here (copy 0)
DIM = 384


# ---------------------------------------------------------------- memory
def _status(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB -> MiB
    return 0.0


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0): the next peak is this step's."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


# ---------------------------------------------------------------- corpus
def _git(*args: str, cwd: Path | None = None, input: bytes | None = None) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, input=input, check=True, capture_output=True).stdout


def _django_blobs() -> list[tuple[str, str, bytes]]:
    from _corpus import sdist_repo

    src = sdist_repo(SPEC)
    entries = []
    for line in _git("ls-files", "-s", "-z", cwd=src).split(b"\0"):
        if line:
            meta, path = line.split(b"\t", 1)
            mode, sha, _ = meta.split()
            entries.append((path.decode(), mode.decode(), sha.decode()))
    proc = subprocess.run(["git", "cat-file", "--batch"], cwd=src, check=True, capture_output=True,
                          input="".join(f"{sha}\n" for _, _, sha in entries).encode())
    out, pos, blobs = proc.stdout, 0, []
    for path, mode, _ in entries:
        header_end = out.index(b"\n", pos)
        size = int(out[pos:header_end].split()[2])
        blobs.append((path, mode, out[header_end + 1: header_end + 1 + size]))
        pos = header_end + 1 + size + 1
    return blobs


def _keep(path: str, fraction: float) -> bool:
    return int(hashlib.sha1(path.encode()).hexdigest()[:8], 16) % 1000 < fraction * 1000


def _data(payload: bytes) -> bytes:
    return b"data %d\n" % len(payload) + payload + b"\n"


def _fast_import(repo: Path, stream: bytes) -> None:
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=stream, check=True)


_TS = [1_700_000_000]


def _commit_header(message: str, parent: bool) -> bytes:
    _TS[0] += 60
    head = b"commit refs/heads/main\ncommitter bench <b@x> %d +0000\n" % _TS[0] + _data(message.encode())
    return head + (b"from refs/heads/main^0\n" if parent else b"")


def build_corpus(repo: Path, fraction: float, copies: int) -> dict:
    """A bare repo with the Django subset (fraction of files) or `copies` copies of the whole tree."""
    blobs = _django_blobs()
    repo.mkdir(parents=True)
    _git("init", "-q", "--bare", "-b", "main", str(repo))
    parts, files, size = [_commit_header(f"{SPEC} x{copies} f{fraction}", False)], 0, 0
    for i in range(copies):
        for path, mode, content in blobs:
            if copies == 1 and not _keep(path, fraction):
                continue
            if mode == "160000":
                continue
            if i and mode != "120000" and b"\0" not in content[:8000]:
                content = content + b"\n" * i  # distinct blobs per copy, same text
            parts.append(f"M {mode} inline {f'copy{i}/' if i else ''}{path}\n".encode() + _data(content))
            files, size = files + 1, size + len(content)
    _fast_import(repo, b"".join(parts))
    return {"tracked_files": files, "bytes": size}


def commit_change(repo: Path, message: str, modify: dict[str, bytes] | None = None,
                  delete: list[str] | None = None) -> str:
    parts = [_commit_header(message, True)]
    parts += [f"M 100644 inline {p}\n".encode() + _data(c) for p, c in (modify or {}).items()]
    parts += [f"D {p}\n".encode() for p in (delete or [])]
    _fast_import(repo, b"".join(parts))
    return _git("rev-parse", "main", cwd=repo).decode().strip()


def read_blob(repo: Path, path: str) -> bytes:
    return _git("show", f"main:{path}", cwd=repo)


# A one-file commit appends a function. Odd commits: no docstring (most edits: the mined golden queries stay
# the same). Even commits: a documented one, which may enter the golden queries mined from docstrings.
ADDED_FUNCTION = b'''

def scale_bench_added_{n}(value):
    return str(value).strip().lower() + "{n}"
'''
ADDED_DOCUMENTED = b'''

def scale_bench_documented_{n}(value):
    """Added by the scale benchmark's one-file commit {n}: normalise a value for comparison."""
    return str(value).strip().lower()
'''


OTHER_FILE = "tests/utils_tests/test_text.py"  # commit 3 of the Dagster run changes a test module instead


def changed_file(repo: Path, n: int = 1) -> str:
    """CHANGED_FILE when the corpus has it (OTHER_FILE for commit 3), else its first Python file under django/."""
    paths = _git("ls-tree", "-r", "--name-only", "main", cwd=repo).decode().splitlines()
    wanted = OTHER_FILE if n == 3 else CHANGED_FILE
    return wanted if wanted in paths else next(p for p in paths if p.startswith("django/") and p.endswith(".py"))


def one_file_change(repo: Path, n: int) -> str:
    path = changed_file(repo, n)
    text = read_blob(repo, path) + (ADDED_DOCUMENTED if n % 2 == 0 else ADDED_FUNCTION).replace(b"{n}", str(n).encode())
    return commit_change(repo, f"one-file change {n}", modify={path: text})


# ---------------------------------------------------------------- precomputed vectors
_POOL = None


def fake_vectors(hashes: list[str]):
    """Deterministic unit vectors by content hash (no model): pool[a] + pool[b] / 2, normalised, where the
    65,536 pooled vectors lie near a random 24-dimensional subspace (+30 % isotropic noise). Real embeddings
    have a low intrinsic dimension too; fully random 384-d vectors would make HNSW (and its recall check)
    look far worse than on real vectors."""
    import numpy as np

    global _POOL
    if _POOL is None:
        rng = np.random.default_rng(12345)
        basis = rng.standard_normal((DIM, 24), dtype=np.float32) / np.float32(np.sqrt(24))
        _POOL = rng.standard_normal((65536, 24), dtype=np.float32) @ basis.T
        _POOL += np.float32(0.3) * rng.standard_normal((65536, DIM), dtype=np.float32)
    if not hashes:
        return np.zeros((0, DIM), np.float32)
    ints = np.array([int(h[:16], 16) for h in hashes], dtype=np.uint64)
    a, b = (ints & np.uint64(0xFFFF)).astype(np.int64), ((ints >> np.uint64(16)) & np.uint64(0xFFFF)).astype(np.int64)
    v = _POOL[a] + 0.5 * _POOL[b]
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v.astype(np.float32)


def _fake_runner_class():
    from rag_assets.embedding.runners import EmbeddingRunner

    class PrecomputedVectors(EmbeddingRunner):
        """The embedder resource, with precomputed vectors instead of the model (see the module doc)."""

        def embed(self, context, texts, content_hashes, model_key, workdir, progress=None):
            t = time.perf_counter()
            vectors = fake_vectors(list(content_hashes))
            if progress:
                progress(len(texts))
            secs = time.perf_counter() - t
            return vectors, {"texts": len(texts), "texts_per_s": round(len(texts) / max(secs, 1e-9), 1),
                             "device": "precomputed", "model": model_key, "dim": DIM, "seconds": round(secs, 3),
                             "load_seconds": 0.0}

    return PrecomputedVectors


# ---------------------------------------------------------------- one step, in this (fresh) process
ASSET_STEPS = {
    "snapshot": (("repo_snapshot", "doc_pages"), "source"),
    "chunks": (("chunks",), "source"),
    "golden_queries": (("golden_queries",), "source"),
    "embeddings": (("embeddings",), "model"),
    "qdrant_collection": (("qdrant_collection",), "model"),
    "collection_alias": (("collection_alias",), "model"),
}
CHECK_STEPS = {
    "check_chunks_are_sane": ("chunks_are_sane", "source"),
    "check_vectors_are_sane": ("vectors_are_sane", "model"),
    "check_points_match_chunks": ("points_match_chunks", "model"),
    "check_golden_recall": ("golden_recall", "model"),
    "check_approximate_search_recall": ("approximate_search_recall", "model"),
}


def _timed_store_methods(timings: dict) -> None:
    """Time the store's methods (diff = ids, upsert, delete, finalize) inside the sync."""
    from rag_assets.store.edge_store import EdgeStore

    for name in ("ids", "upsert", "delete", "finalize", "count", "get_vectors", "query", "scroll"):
        orig = getattr(EdgeStore, name)

        def wrapper(self, *a, __orig=orig, __name=name, **kw):
            t = time.perf_counter()
            try:
                return __orig(self, *a, **kw)
            finally:
                timings[__name] = timings.get(__name, 0.0) + time.perf_counter() - t

        setattr(EdgeStore, name, wrapper)


def run_step(step: str) -> dict:
    import dagster as dg

    from rag_assets.defs import assets as A
    from rag_assets.defs import checks as C
    from rag_assets.defs.partitions import source_model_key, source_model_partitions, source_partitions
    from rag_assets.definitions import defs

    store_timings: dict = {}
    _timed_store_methods(store_timings)
    resources = dict(defs.resources)
    resources["embedder"] = _fake_runner_class()()
    all_assets = [A.repo_snapshot, A.doc_pages, A.chunks, A.embeddings, A.qdrant_collection, A.collection_alias,
                  A.golden_queries]
    all_checks = [C.chunks_are_sane, C.vectors_are_sane, C.points_match_chunks, C.golden_recall,
                  C.approximate_search_recall]
    if step in ASSET_STEPS:
        names, dim = ASSET_STEPS[step]
        selection = dg.AssetSelection.assets(*names).without_checks()
    else:
        check_name, dim = CHECK_STEPS[step]
        selection = dg.AssetSelection.checks(next(c for c in all_checks if check_name in
                                                  {k.name for k in c.check_keys}))
    pdef = source_partitions if dim == "source" else source_model_partitions
    job = dg.define_asset_job(f"bench_{step}", selection=selection, partitions_def=pdef)
    d = dg.Definitions(assets=all_assets, asset_checks=all_checks, jobs=[job], resources=resources)
    job_def = d.resolve_job_def(job.name)
    instance = dg.DagsterInstance.get()
    key = SOURCE if dim == "source" else source_model_key(SOURCE, MODEL)
    base = _status("VmRSS")
    reset_ok = reset_peak()
    t0 = time.perf_counter()
    if step in ASSET_STEPS:
        result = job_def.execute_in_process(partition_key=key, instance=instance, raise_on_error=False)
    else:  # a checks-only selection has no asset partitions to validate a key against: tag the run
        tags = {"dagster/partition": str(key)}
        if dim == "model":
            tags.update({f"dagster/partition/{k}": v for k, v in key.keys_by_dimension.items()})
        result = job_def.execute_in_process(tags=tags, instance=instance, raise_on_error=False)
    wall = time.perf_counter() - t0
    out = {"step": step, "ok": result.success, "seconds": round(wall, 3), "peak_rss_mb": round(_status("VmHWM"), 1),
           "base_rss_mb": round(base, 1), "peak_reset": reset_ok}
    out["step_seconds"] = _breakdown(instance, [result.run_id])
    for e in result.all_events:
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            ev = e.event_specific_data
            out["check"] = {"name": ev.check_name, "passed": ev.passed,
                            "metadata": {k: _plain(v.value) for k, v in ev.metadata.items()}}
    if step in ASSET_STEPS:
        meta = {}
        for name in ASSET_STEPS[step][0]:
            for m in result.asset_materializations_for_node(name):
                meta.update({k: _plain(v.value) for k, v in m.metadata.items() if k != "preview"})
        out["metadata"] = meta
    if not result.success:
        for e in result.all_events:
            if e.event_type == dg.DagsterEventType.STEP_FAILURE:
                err = e.event_specific_data.error
                while err.cause is not None:
                    err = err.cause
                out["error"] = err.message.strip().splitlines()[-1][:300]
    out["store_seconds"] = {k: round(v, 3) for k, v in store_timings.items()}
    return out


def _plain(v):
    if isinstance(v, (int, float, str, bool)) or v is None:
        return v
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return str(v)[:300]


def run_search(n_queries: int = 200) -> dict:
    """Search latency at this size: dense (HNSW) and hybrid (dense + BM25) store queries, k=10."""
    import numpy as np
    import pyarrow.parquet as pq

    from rag_assets.contract import collection_name, point_id
    from rag_assets.defs.resources import VectorStoreResource
    from rag_assets.store.sparse import encode_query
    from rag_assets.tables import Tables
    from rag_assets import settings

    tables = Tables(settings.current().data_dir)
    chunks = pq.read_table(tables.chunks_path(SOURCE), columns=["chunk_id", "symbol", "path"])
    rng = np.random.default_rng(0)
    rows = rng.choice(chunks.num_rows, min(n_queries, chunks.num_rows), replace=False)
    ids = [point_id(chunks.column("chunk_id")[int(i)].as_py()) for i in rows]
    words = [(chunks.column("symbol")[int(i)].as_py() or chunks.column("path")[int(i)].as_py()).replace(".", " ")
             for i in rows]
    base = _status("VmRSS")
    reset_peak()
    out: dict = {"step": "search", "queries": len(ids), "base_rss_mb": round(base, 1)}
    with VectorStoreResource().open() as s:
        name = collection_name(SOURCE, MODEL)
        t0 = time.perf_counter()
        s.count(name)
        out["open_seconds"] = round(time.perf_counter() - t0, 3)
        vecs = s.get_vectors(name, ids)
        queries = np.stack([vecs[i] for i in ids]) + rng.normal(0, 0.05, (len(ids), DIM)).astype(np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        for mode in ("dense", "hybrid"):
            lat = []
            for q, w in zip(queries, words):
                t = time.perf_counter()
                s.query(name, q, k=10, mode=mode, sparse_vector=encode_query(w) if mode == "hybrid" else None)
                lat.append((time.perf_counter() - t) * 1000)
            out[f"{mode}_p50_ms"] = round(float(np.percentile(lat, 50)), 2)
            out[f"{mode}_p95_ms"] = round(float(np.percentile(lat, 95)), 2)
    out["peak_rss_mb"] = round(_status("VmHWM"), 1)
    out["seconds"] = round(sum(out.get(f"{m}_p50_ms", 0) for m in ("dense",)) / 1000, 3)
    out["ok"] = True
    return out


def child_main(step: str) -> None:
    import logging

    logging.getLogger("dagster").setLevel(logging.WARNING)
    out = run_search() if step == "search" else run_step(step)
    print("SCALE_BENCH_RESULT " + json.dumps(out), flush=True)


# ---------------------------------------------------------------- the orchestration (parent)
def _env(work: Path) -> dict:
    env = {**os.environ, "RAG_DATA_DIR": str(work / "data"), "RAG_SOURCES": str(work / "sources.yaml"),
           "DAGSTER_HOME": str(work / "dagster_home"), "RAG_RECALL_THRESHOLD": "0", "RAG_STORE_ENGINE": "edge",
           "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("QDRANT_URL", None)
    env.pop("RAG_MODEL", None)
    return env


def spawn(work: Path, step: str, timeout: int = 7200) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "_step", step], env=_env(work), capture_output=True, text=True,
                          timeout=timeout)
    total = time.perf_counter() - t0
    line = next((ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith("SCALE_BENCH_RESULT ")), None)
    if line is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        return {"step": step, "ok": False, "error": " | ".join(tail)[:500], "process_seconds": round(total, 2)}
    out = json.loads(line[len("SCALE_BENCH_RESULT "):])
    out["process_seconds"] = round(total, 2)
    return out


def _show(prefix: str, r: dict) -> None:
    extra = ""
    m = r.get("metadata", {})
    for k in ("chunks", "embedded", "reused", "upserted", "deleted", "files_rechunked"):
        if k in m:
            extra += f" {k}={m[k]}"
    if "check" in r:
        extra += f" passed={r['check']['passed']}"
    if r["step"] == "search":
        extra += f" dense p50/p95 {r.get('dense_p50_ms')}/{r.get('dense_p95_ms')} ms hybrid {r.get('hybrid_p50_ms')}/{r.get('hybrid_p95_ms')} ms"
    if r.get("store_seconds"):
        extra += " store " + ",".join(f"{k}={v}" for k, v in r["store_seconds"].items() if v >= 0.01)
    print(f"  {prefix:<8} {r['step']:<34} {'ok ' if r.get('ok') else 'FAIL'} {r.get('seconds', 0):8.2f} s "
          f"peak {r.get('peak_rss_mb', 0):7.0f} MiB (base {r.get('base_rss_mb', 0):4.0f}){extra}"
          + (f"  ERROR {r['error']}" if r.get("error") else ""), flush=True)


COLD = ["snapshot", "chunks", "golden_queries", "check_chunks_are_sane", "embeddings", "check_vectors_are_sane",
        "qdrant_collection", "check_points_match_chunks", "check_golden_recall", "check_approximate_search_recall",
        "collection_alias"]
INCREMENTAL = ["snapshot", "chunks", "golden_queries", "check_chunks_are_sane", "embeddings", "check_vectors_are_sane",
               "qdrant_collection", "check_points_match_chunks", "check_golden_recall",
               "check_approximate_search_recall", "collection_alias"]


def parse_size(s: str) -> tuple[str, float, int]:
    """'0.1' -> 10 % of the files; '200000' -> enough copies for at least ~200k chunks (54.3k per copy)."""
    v = float(s)
    if v <= 1:
        return f"{round(v * 100)}%", v, 1
    copies = max(1, math.ceil(v / 54_341))
    return f"{copies}x", 1.0, copies


def bench_size(label_size: str, fraction: float, copies: int, root: Path, phases: list[str]) -> dict:
    work = root / label_size.replace("%", "pct")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    t0 = time.perf_counter()
    corpus = build_corpus(work / "repo.git", fraction, copies)
    corpus["build_seconds"] = round(time.perf_counter() - t0, 1)
    import yaml

    (work / "sources.yaml").write_text(yaml.safe_dump({"sources": [
        {"name": SOURCE, "kind": "git", "url": str(work / "repo.git"), "branch": "main"}]}))
    (work / "dagster_home").mkdir()
    (work / "dagster_home" / "dagster.yaml").write_text("")
    subprocess.run([sys.executable, "-c", "import dagster as dg; dg.DagsterInstance.get().add_dynamic_partitions("
                    f"'source', [{SOURCE!r}])"], env=_env(work), check=True, capture_output=True)
    print(f"[{label_size}] corpus: {corpus}", flush=True)
    tree = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=Path(__import__("rag_assets").__file__).parent,
                          capture_output=True, text=True).stdout.strip()
    out: dict = {"size": label_size, "fraction": fraction, "copies": copies, "corpus": corpus, "phases": {},
                 "tree": tree}  # the commit of the code measured (each step imports it afresh)

    def phase(name: str, steps: list[str]) -> None:
        rows = []
        for step in steps:
            r = spawn(work, step)
            _show(name, r)
            rows.append(r)
        out["phases"][name] = rows

    phase("cold", COLD)
    if "search" in phases:
        phase("search", ["search"])
    if "noop" in phases:
        phase("noop", INCREMENTAL)
    if "one_file" in phases:
        one_file_change(work / "repo.git", 1)
        phase("one_file", INCREMENTAL)
    m = next(r for r in out["phases"]["cold"] if r["step"] == "chunks").get("metadata", {})
    out["files"], out["chunks"], out["tokens"] = m.get("files_indexed"), m.get("chunks"), m.get("tokens")
    out["disk_mb"] = {p.name: round(sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) / 2**20, 1)
                      for p in (work / "data").iterdir() if p.is_dir()}
    if not os.environ.get("SCALE_BENCH_KEEP"):
        shutil.rmtree(work, ignore_errors=True)
    return out


# ---------------------------------------------------------------- the one-file commit through `rag-assets index`
def dagster_one_file(root: Path, commits: int = 3) -> dict:
    """Cold index (precomputed vectors) then `commits` one-file commits (real model), all through index_source."""
    work = root / "dagster"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    corpus = build_corpus(work / "repo.git", 1.0, 1)
    import yaml

    (work / "sources.yaml").write_text(yaml.safe_dump({"sources": [
        {"name": SOURCE, "kind": "git", "url": str(work / "repo.git"), "branch": "main"}]}))
    (work / "dagster_home").mkdir()
    (work / "dagster_home" / "dagster.yaml").write_text("")
    proc = subprocess.run([sys.executable, __file__, "_dagster", str(commits)], env=_env(work), capture_output=True,
                          text=True, timeout=7200)
    line = next((ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith("SCALE_BENCH_RESULT ")), None)
    if line is None:
        raise RuntimeError((proc.stderr or proc.stdout)[-3000:])
    out = json.loads(line[len("SCALE_BENCH_RESULT "):])
    out["corpus"] = corpus
    shutil.rmtree(work, ignore_errors=True)
    return out


def _breakdown(instance, run_ids: list[str]) -> dict:
    """Seconds per part of the runs, from the event log: run start (until the first step starts), each step,
    and the rest (between steps, run end)."""
    import dagster as dg

    parts: dict[str, float] = {}
    for run_id in run_ids:
        records = instance.all_logs(run_id)
        events = [(r.timestamp, r.dagster_event) for r in records if r.dagster_event is not None]
        t_first = min(t for t, _ in events)
        t_last = max(t for t, _ in events)
        starts, steps = {}, 0.0
        first_step = None
        for t, e in events:
            if e.event_type == dg.DagsterEventType.STEP_START:
                starts[e.step_key] = t
                first_step = t if first_step is None else min(first_step, t)
            elif e.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE,
                                  dg.DagsterEventType.STEP_SKIPPED) and e.step_key in starts:
                d = t - starts[e.step_key]
                parts[e.step_key] = parts.get(e.step_key, 0.0) + d
                steps += d
        parts["(run start: until the first step)"] = parts.get("(run start: until the first step)", 0.0) + \
            ((first_step or t_last) - t_first)
        parts["(between steps and run end)"] = parts.get("(between steps and run end)", 0.0) + \
            (t_last - (first_step or t_last)) - steps
    return {k: round(v, 3) for k, v in parts.items()}


def _sync_metadata(instance, run_ids: list[str]) -> dict:
    """qdrant_collection's own timings (diff, upsert, finalize) from its materialization in these runs."""
    import dagster as dg

    for run_id in run_ids:
        for r in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
            m = r.dagster_event.event_specific_data.materialization
            if m.asset_key == dg.AssetKey("qdrant_collection"):
                return {k: m.metadata[k].value for k in ("seconds", "diff", "diff_seconds", "delete_seconds",
                                                         "upsert_seconds", "finalize_seconds") if k in m.metadata}
    return {}


def dagster_child(commits: int) -> None:
    import logging

    import dagster as dg

    logging.getLogger("dagster").setLevel(logging.WARNING)
    from rag_assets.embedding.embedder import Embedder
    from rag_assets.embedding.models import get_model
    from rag_assets.embedding.runners import EmbeddingRunner
    from rag_assets.service.runs import index_source

    instance = dg.DagsterInstance.get()
    store_timings: dict = {}
    _timed_store_methods(store_timings)
    real_embed = EmbeddingRunner.embed
    fake = _fake_runner_class().embed
    EmbeddingRunner.embed = fake  # the cold index: precomputed vectors
    t0 = time.perf_counter()
    summary = index_source(SOURCE, MODEL, instance=instance)
    cold = time.perf_counter() - t0
    EmbeddingRunner.embed = real_embed  # from here on: the real model
    t0 = time.perf_counter()
    emb = Embedder(get_model(MODEL))
    emb.encode_documents(["warm up"])
    emb.encode_queries(["warm up"])  # the query encoder too (an ONNX one where installed): what the gate uses
    load = time.perf_counter() - t0
    from rag_assets.retrieval.search import Searcher  # noqa: F401  (query encoder import, as the gate does)

    repo = Path(os.environ["RAG_SOURCES"]).parent / "repo.git"
    out = {"cold_seconds": round(cold, 2), "cold_summary": summary, "model_load_seconds": round(load, 2), "commits": []}

    def run_once(label: str) -> dict:
        before = {r.run_id for r in instance.get_runs()}
        reset_peak()
        store_timings.clear()
        t, started = time.perf_counter(), time.time()
        s = index_source(SOURCE, MODEL, instance=instance)
        wall = time.perf_counter() - t
        new = [r.run_id for r in instance.get_runs() if r.run_id not in before]
        # Searchable once qdrant_collection published its generation (its step succeeded): the checks and
        # the alias step after it do not hold searches back (the alias already points at this collection).
        published = [r.timestamp for run_id in new for r in instance.all_logs(run_id)
                     if r.dagster_event is not None and r.dagster_event.step_key == "qdrant_collection"
                     and r.dagster_event.event_type == dg.DagsterEventType.STEP_SUCCESS]
        measured = {}
        for check in ("golden_recall", "approximate_search_recall"):
            key = dg.AssetCheckKey(dg.AssetKey("qdrant_collection"), check)
            for rec in instance.event_log_storage.get_latest_asset_check_execution_by_key([key]).values():
                m = rec.event.dagster_event.event_specific_data.metadata if rec.event else {}
                measured[check] = str(m["measured"].value)[:60] if "measured" in m else "now"
        return {"label": label, "seconds": round(wall, 3), "summary": s, "peak_rss_mb": round(_status("VmHWM"), 1),
                "searchable_seconds": round(min(published) - started, 3) if published else None,
                "store_seconds": {k: round(v, 3) for k, v in store_timings.items()},
                "sync": _sync_metadata(instance, new),
                "breakdown": _breakdown(instance, new), "measured": measured}

    # A first unchanged run warms the query encoder and Dagster's code paths once (a long-lived
    # process does that once too); then the measured runs.
    out["warm_noop"] = run_once("no-op (warm-up)")
    for n in range(1, commits + 1):
        one_file_change(repo, n)
        what = "a documented function" if n % 2 == 0 else "an undocumented function"
        out["commits"].append(run_once(f"commit {n}: {what} in {changed_file(repo, n)}"))
    out["noop"] = run_once("no-op")
    print("SCALE_BENCH_RESULT " + json.dumps(out), flush=True)


# ---------------------------------------------------------------- results
def load_results() -> dict:
    return json.loads(JSON_OUT.read_text()) if JSON_OUT.exists() else {}


def save_results(results: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    JSON_OUT.write_text(json.dumps(results, indent=1) + "\n")
    MD_OUT.write_text(render(results))


def _fmt_s(r: dict | None) -> str:
    return "-" if r is None else (f"{r['seconds']:.2f}" + ("" if r.get("ok", True) else " FAIL"))


def render(results: dict) -> str:
    lines = ["# Scale benchmark (benchmarks/scale_bench.py)", "",
             "Written by the script; figures from one machine (2 shared cores), so compare ratios within a run.",
             "Corpus: Django 5.1 sdist as a git repo; 10/30/100 % of its files, then 4 and 10 copies of the whole tree.",
             "**Vectors are precomputed** (deterministic unit vectors by content hash, near a random 24-d subspace) at every size: no "
             "model encodes chunks here. Every other step is the real code: each step is its own Dagster run in a "
             "fresh process; peak RSS is that process's VmHWM during the step (imports included). "
             "The golden-recall check loads the real model for its queries (RAG_RECALL_THRESHOLD=0: timing only).", ""]
    for label, res in results.items():
        if label.startswith("_"):
            continue
        sizes = res.get("sizes", [])
        if sizes:
            lines += [f"## {label}: growth per step", "", f"_{res.get('note', '')}_", ""]
            header = "| phase | step | " + " | ".join(f"{s['size']} s / MiB" for s in sizes) + " |"
            lines += ["| size | | " + " | ".join(
                f"{s['size']}: {s.get('files')} files, {s.get('chunks')} chunks, {s.get('tokens')} tokens"
                + (f" (code at {s['tree']})" if s.get("tree") else "") for s in sizes) + " |", "|---|---|" + "---|" * len(sizes), header.replace("| phase | step |", "| phase | step |")]
            phases = []
            for s in sizes:
                for ph, rows in s["phases"].items():
                    for r in rows:
                        if (ph, r["step"]) not in phases:
                            phases.append((ph, r["step"]))
            for ph, step in phases:
                cells = []
                for s in sizes:
                    r = next((x for x in s["phases"].get(ph, []) if x["step"] == step), None)
                    if r is None:
                        cells.append("-")
                    elif step == "search":
                        cells.append(f"dense p50/p95 {r.get('dense_p50_ms')}/{r.get('dense_p95_ms')} ms, hybrid "
                                     f"{r.get('hybrid_p50_ms')}/{r.get('hybrid_p95_ms')} ms / {r.get('peak_rss_mb', 0):.0f}")
                    else:
                        extra = ""
                        m = r.get("metadata", {})
                        if step == "embeddings":
                            extra = f" (emb {m.get('embedded')})"
                        if step == "qdrant_collection":
                            st = r.get("store_seconds", {})
                            extra = (f" (+{m.get('upserted')} -{m.get('deleted')}; ids {st.get('ids', 0):.2f}, upsert "
                                     f"{st.get('upsert', 0):.2f}, finalize {st.get('finalize', 0):.2f})")
                        if "check" in r:
                            reason = str(r["check"].get("metadata", {}).get("reason", ""))
                            extra = "" if r["check"]["passed"] else (
                                " (WARN, not measured: no golden queries, as every docstring is in each copy)"
                                if "no golden queries" in reason else " (failed)")
                        cells.append(f"{_fmt_s(r)} / {r.get('peak_rss_mb', 0):.0f}{extra}")
                lines.append(f"| {ph} | {step} | " + " | ".join(cells) + " |")
            peak = [max((r.get("peak_rss_mb", 0) for rows in s["phases"].values() for r in rows), default=0) for s in sizes]
            lines.append("| all | **max peak RSS** | " + " | ".join(f"**{p:.0f} MiB**" for p in peak) + " |")
            lines += [""]
            if res.get("first_10x_run"):
                f = res["first_10x_run"]
                lines += [f"An earlier 10x run (code at {f['tree']}) peaked at {f['max_peak_rss_mb']:.0f} MiB in "
                          f"{f['where']}.", ""]
        d = res.get("dagster")
        if d:
            lines += [f"## {label}: a one-file commit through `rag-assets index` (100 % Django, "
                      f"{d.get('cold_summary', '')[:160]})", "",
                      *([f"Code at {d['tree']}.", ""] if d.get("tree") else []),
                      f"Model load (once per process, not in the figures): {d.get('model_load_seconds')} s. "
                      f"Cold index with precomputed vectors: {d.get('cold_seconds')} s.", ""]
            runs = d["commits"] + [d["noop"]]
            keys = []
            for r in runs:
                for k in r["breakdown"]:
                    if k not in keys:
                        keys.append(k)
            lines += ["| part | " + " | ".join(r["label"] for r in runs) + " |", "|---|" + "---|" * len(runs)]
            for k in keys:
                lines.append(f"| {k} | " + " | ".join(f"{r['breakdown'].get(k, 0):.3f}" for r in runs) + " |")
            lines.append("| **searchable (index start to qdrant_collection published)** | " + " | ".join(
                f"**{r['searchable_seconds']:.2f}**" if r.get("searchable_seconds") is not None else "-" for r in runs)
                + " |")
            lines.append("| **total (index_source wall)** | " + " | ".join(f"**{r['seconds']:.2f}**" for r in runs) + " |")
            lines.append("| peak RSS MiB | " + " | ".join(f"{r['peak_rss_mb']:.0f}" for r in runs) + " |")
            lines.append("| qdrant_collection: sync / diff / upsert / finalize s | " + " | ".join(
                "{seconds} / {diff_seconds} / {upsert_seconds} / {finalize_seconds}".format(**r["sync"])
                if r.get("sync", {}).get("seconds") is not None else "-" for r in runs) + " |")
            lines.append("| store calls s | " + " | ".join(", ".join(f"{k} {v:.2f}" for k, v in r.get(
                "store_seconds", {}).items() if v >= 0.01) or "-" for r in runs) + " |")
            for check in ("golden_recall", "approximate_search_recall"):
                lines.append(f"| {check} measured | " + " | ".join(
                    r.get("measured", {}).get(check, "now") for r in runs) + " |")
            lines += ["", "Summaries: " + "; ".join(f"{r['label']}: {r['summary']}" for r in runs), ""]
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "_step":
        return child_main(sys.argv[2])
    if len(sys.argv) > 2 and sys.argv[1] == "_dagster":
        return dagster_child(int(sys.argv[2]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--label", default="after", help="results key: before | after | anything")
    ap.add_argument("--note", default="", help="a line saved with the results (what tree was measured)")
    ap.add_argument("--sizes", default="0.1,0.3,1.0,200000,500000")
    ap.add_argument("--phases", default="search,noop,one_file")
    ap.add_argument("--dagster", action="store_true", help="only the one-file commit through rag-assets index")
    ap.add_argument("--commits", type=int, default=3)
    ap.add_argument("--render", action="store_true")
    ap.add_argument("--work", default=None, help="scratch dir (default: a temp dir)")
    args = ap.parse_args()
    results = load_results()
    if args.render:
        MD_OUT.write_text(render(results))
        return
    root = Path(args.work or tempfile.mkdtemp(prefix="scale-bench-"))
    entry = results.setdefault(args.label, {})
    entry["note"] = args.note or entry.get("note", "")
    entry["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    if args.dagster:
        entry["dagster"] = dagster_one_file(root, args.commits)
        save_results(results)
        print(render({args.label: {"dagster": entry["dagster"]}}))
        return
    sizes = entry.setdefault("sizes", [])
    for s in args.sizes.split(","):
        label_size, fraction, copies = parse_size(s)
        res = bench_size(label_size, fraction, copies, root, args.phases.split(","))
        sizes[:] = [x for x in sizes if x["size"] != label_size] + [res]
        sizes.sort(key=lambda x: (x["copies"], x["fraction"]))
        save_results(results)
    print(MD_OUT.read_text())


if __name__ == "__main__":
    main()
