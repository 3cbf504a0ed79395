"""Embedding outside the Dagster process: the Pipes subprocess worker, its plain CLI, and Kaggle.

The subprocess path is exercised for real: a Dagster materialization launches the worker through
PipesSubprocessClient with the real default model, and its vectors must match in-process ones.
Kaggle is faked at the HTTP boundary (a threaded http.server on 127.0.0.1 standing in for
https://www.kaggle.com/api/v1) because it is a remote, credentialed, paid-for-GPU service: these
tests pin our side of the protocol (requests, auth, payloads, polling, errors), not Kaggle itself.
One stand-in test does run the pushed kernel script locally, so the bundled worker is proven to run.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import numpy as np
import pandas as pd
import pytest
from dagster import Output, asset, build_asset_context, instance_for_test, materialize

from rag_assets.embedding.embedder import Embedder
from rag_assets.embedding.kaggle import VECTORS_FILE, KaggleError, KaggleRunner
from rag_assets.embedding.models import get_model
from rag_assets.embedding.runners import EmbeddingRunner
from rag_assets.tables import read_table, write_table

# Dagster's own Pipes internals warn (context.run_id deprecation, preview reader API): not ours.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:.*run_id is deprecated"),
              pytest.mark.filterwarnings("ignore:.*expected_writer_count")]

MODEL = "minilm-l6"
TEXTS = [
    "def add(a, b):\n    return a + b",
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n"
    "    def push(self, x):\n        self.items.append(x)",
    "import os\nprint(os.getcwd())",
    "# Installation\n\nRun `pip install rag-assets` and then `rag-assets index`.",
    "async def fetch(url):\n    async with httpx.AsyncClient() as c:\n        return (await c.get(url)).json()",
    "SELECT id, name FROM users WHERE active = 1 ORDER BY name;",
    "x = 1",
    "fn main() {\n    println!(\"hello\");\n}",
    "def parse(text: str) -> list[str]:\n    \"\"\"Split on commas, strip blanks.\"\"\"\n"
    "    return [t.strip() for t in text.split(',') if t.strip()]",
    "for i in range(10):\n    if i % 2:\n        continue\n    print(i)",
]
HASHES = [f"h{i:02d}" for i in range(len(TEXTS))]


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return Embedder(get_model(MODEL), device="cpu").encode_documents(TEXTS)


# ------------------------------------------------------------------ subprocess through Dagster Pipes
def test_subprocess_worker_through_pipes_in_a_materialization(tmp_path, reference):
    @asset
    def chunk_vectors(context, runner: EmbeddingRunner):
        vectors, meta = runner.embed(context, TEXTS, HASHES, MODEL, tmp_path / "work")
        return Output(vectors, metadata=meta)

    with instance_for_test() as instance:
        result = materialize([chunk_vectors], instance=instance,
                             resources={"runner": EmbeddingRunner(mode="subprocess", device="cpu")})
        assert result.success
        logs = [e.user_message for e in instance.all_logs(result.run_id)]

    vectors = result.output_for_node("chunk_vectors")
    assert vectors.shape == (len(TEXTS), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, reference, atol=1e-4)

    meta = result.asset_materializations_for_node("chunk_vectors")[0].metadata
    assert meta["stats_from"].value == "pipes"  # arrived as a Pipes custom message
    assert meta["texts"].value == len(TEXTS) and meta["texts_per_s"].value > 0
    assert meta["device"].value == "cpu" and meta["model"].value == MODEL and meta["dim"].value == 384
    assert meta["load_seconds"].value > 0 and meta["seconds"].value > 0
    assert any(f"encoding {len(TEXTS)} texts" in m for m in logs)  # worker's context.log, via Pipes
    assert any(f"embedded {len(TEXTS)}/{len(TEXTS)}" in m for m in logs)


def test_in_process_mode_matches(tmp_path, reference):
    vectors, meta = EmbeddingRunner(device="cpu").embed(build_asset_context(), TEXTS, HASHES, MODEL, tmp_path)
    np.testing.assert_allclose(vectors, reference, atol=1e-4)
    assert meta["mode"] == "in_process" and meta["texts"] == len(TEXTS)


# ------------------------------------------------------------------ plain CLI
def test_worker_plain_cli(tmp_path, reference):
    src, dst = tmp_path / "texts.parquet", tmp_path / "out" / "vectors.parquet"
    write_table(src, pd.DataFrame({"content_hash": HASHES, "text": TEXTS}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_PIPES")}
    proc = subprocess.run(
        [sys.executable, "-m", "rag_assets.embedding.worker", "--input", str(src), "--output", str(dst),
         "--model", MODEL, "--batch-size", "4", "--device", "cpu"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    assert stats["texts"] == len(TEXTS) and stats["device"] == "cpu" and stats["texts_per_s"] > 0
    out = read_table(dst)
    assert out.df["content_hash"].tolist() == HASHES
    assert out.meta == stats  # the stats travel in the output too (for runs without Pipes)
    np.testing.assert_allclose(out.vectors, reference, atol=1e-4)


# ------------------------------------------------------------------ Kaggle stand-in
class FakeKaggle:
    """Records every request; scripted kernel statuses; serves (or, with run_script, computes) the output."""

    def __init__(self, root: Path, statuses=("queued", "running", "complete"), output: bytes | None = None,
                 run_script: bool = False, failure: str = "", log: str = ""):
        self.root, self.statuses, self.output = root, list(statuses), output
        self.run_script, self.failure, self.log = run_script, failure, log
        self.requests: list[dict] = []
        self.blob_names: dict[str, str] = {}
        self.uploaded: dict[str, bytes] = {}
        self.datasets: set[str] = set()
        self.pushed: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def _reply(self, code: int, body=None, raw: bytes | None = None):
                data = raw if raw is not None else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                url = urlparse(self.path)
                fake.requests.append({"method": self.command, "path": url.path, "query": parse_qs(url.query),
                                      "auth": self.headers.get("Authorization"), "body": body})
                code, payload, raw = fake.route(self.command, url.path, body)
                self._reply(code, payload, raw)

            do_GET = do_POST = do_PUT = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.base_url = self.url + "/api/v1"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def api_calls(self) -> list[str]:
        return [f"{r['method']} {r['path'].removeprefix('/api/v1')}" for r in self.requests
                if r["path"].startswith("/api/v1")]

    def route(self, method: str, path: str, body: bytes):
        api = path.removeprefix("/api/v1")
        if method == "POST" and api == "/blobs/upload":
            req = json.loads(body)
            token = f"tok{len(self.blob_names)}"
            self.blob_names[token] = req["name"]
            return 200, {"token": token, "createUrl": f"{self.url}/upload/{token}"}, None
        if method == "PUT" and path.startswith("/upload/"):
            self.uploaded[self.blob_names[path.rsplit("/", 1)[1]]] = body
            return 200, {}, None
        if method == "GET" and api.startswith("/datasets/status/"):
            ref = api.removeprefix("/datasets/status/")
            return (200, "ready", None) if ref in self.datasets else (404, {"code": 404}, None)
        if method == "POST" and api == "/datasets/create/new":
            req = json.loads(body)
            self.datasets.add(f"{req['ownerSlug']}/{req['slug']}")
            return 200, {"status": "ok", "ref": f"{req['ownerSlug']}/{req['slug']}"}, None
        if method == "POST" and api.startswith("/datasets/create/version/"):
            return 200, {"status": "ok"}, None
        if method == "POST" and api == "/kernels/push":
            self.pushed.append(json.loads(body))
            if self.run_script:
                self.execute(self.pushed[-1]["text"])
            ref = "/code/" + self.pushed[-1]["slug"]
            return 200, {"ref": ref, "versionNumber": len(self.pushed), "error": ""}, None
        if method == "GET" and api == "/kernels/status":
            status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
            return 200, {"status": status, "failureMessage": self.failure if status == "error" else ""}, None
        if method == "GET" and api == "/kernels/output":
            files = [{"fileName": VECTORS_FILE, "url": f"{self.url}/files/{VECTORS_FILE}"}] if self.output else []
            return 200, {"files": files, "log": self.log}, None
        if method == "GET" and path == f"/files/{VECTORS_FILE}":
            return 200, None, self.output
        return 404, {"code": 404, "message": f"no route {method} {path}"}, None

    def execute(self, script: str) -> None:
        """Run the pushed kernel like Kaggle would: dataset files mounted read-only, outputs collected."""
        inp, work = self.root / "input" / "rag-embed-input", self.root / "working"
        inp.mkdir(parents=True, exist_ok=True)
        work.mkdir(exist_ok=True)
        for name, data in self.uploaded.items():
            (inp / name).write_bytes(data)
        (self.root / "kernel.py").write_text(script)
        env = {**os.environ, "KAGGLE_INPUT_DIR": str(self.root / "input"), "KAGGLE_WORKING_DIR": str(work),
               "CUDA_VISIBLE_DEVICES": ""}
        env = {k: v for k, v in env.items() if not k.startswith("DAGSTER_PIPES")}
        proc = subprocess.run([sys.executable, str(self.root / "kernel.py")], capture_output=True, text=True,
                              env=env, cwd=self.root, timeout=120)
        self.log = json.dumps([{"stream_name": "stderr", "time": 0.1, "data": proc.stderr}])
        if proc.returncode == 0:
            self.output = (work / VECTORS_FILE).read_bytes()
        else:
            self.statuses = ["error"]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def kaggle_creds(monkeypatch, tmp_path):
    monkeypatch.setenv("KAGGLE_USERNAME", "alice")
    monkeypatch.setenv("KAGGLE_KEY", "s3cret")
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle-dir"))


@pytest.fixture
def fake_factory(tmp_path):
    fakes = []

    def make(**kw) -> FakeKaggle:
        fakes.append(FakeKaggle(tmp_path / f"kaggle{len(fakes)}", **kw))
        return fakes[-1]

    yield make
    for f in fakes:
        f.close()


def _precomputed_output(tmp_path: Path, vectors: np.ndarray) -> bytes:
    path = tmp_path / "precomputed.parquet"
    meta = {"texts": len(TEXTS), "texts_per_s": 900.0, "device": "cuda", "model": MODEL, "dim": 384,
            "seconds": 0.01, "load_seconds": 2.0}
    write_table(path, pd.DataFrame({"content_hash": HASHES}), meta=meta, vectors=vectors)
    return path.read_bytes()


def test_kaggle_without_credentials_fails_before_any_work(tmp_path, monkeypatch):
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "empty"))

    def no_http(*a, **kw):
        raise AssertionError("an HTTP request was made")

    monkeypatch.setattr(httpx.Client, "send", no_http)
    work = tmp_path / "work"
    with pytest.raises(KaggleError, match="Kaggle credentials missing") as err:
        EmbeddingRunner(mode="kaggle").embed(build_asset_context(), TEXTS, HASHES, MODEL, work)
    assert "\n" not in str(err.value)
    assert not work.exists()


def test_kaggle_protocol_against_stand_in(tmp_path, kaggle_creds, fake_factory):
    expected = np.random.default_rng(0).standard_normal((len(TEXTS), 384)).astype(np.float32)
    fake = fake_factory(output=_precomputed_output(tmp_path, expected))
    runner = EmbeddingRunner(mode="kaggle", kaggle_base_url=fake.base_url, kaggle_poll_s=0.01,
                             kaggle_model_dataset="alice/minilm-weights")  # no weights upload here
    vectors, meta = runner.embed(build_asset_context(), TEXTS, HASHES, MODEL, tmp_path / "w1")

    np.testing.assert_array_equal(vectors, expected)
    assert meta["device"] == "cuda" and meta["texts_per_s"] == 900.0 and meta["stats_from"] == "output"
    assert fake.api_calls() == [
        "POST /blobs/upload", "GET /datasets/status/alice/rag-embed-input", "POST /datasets/create/new",
        "GET /datasets/status/alice/rag-embed-input", "POST /kernels/push",
        "GET /kernels/status", "GET /kernels/status", "GET /kernels/status", "GET /kernels/output",
    ]
    basic = "Basic " + base64.b64encode(b"alice:s3cret").decode()
    assert all(r["auth"] == basic for r in fake.requests if r["path"].startswith("/api/v1"))
    assert all(r["auth"] is None for r in fake.requests if not r["path"].startswith("/api/v1"))  # signed URLs
    assert fake.requests[-1]["path"] == f"/files/{VECTORS_FILE}"
    status_q = next(r["query"] for r in fake.requests if r["path"].endswith("/kernels/status"))
    assert status_q == {"userName": ["alice"], "kernelSlug": ["rag-embed-worker"]}

    uploaded = tmp_path / "uploaded.parquet"
    uploaded.write_bytes(fake.uploaded["rag_texts.parquet"])
    assert read_table(uploaded).df.to_dict("list") == {"content_hash": HASHES, "text": TEXTS}
    create = json.loads(next(r["body"] for r in fake.requests if r["path"].endswith("/create/new")))
    assert create["isPrivate"] is True and create["files"] == [{"token": "tok0"}]
    push = fake.pushed[0]
    assert push["slug"] == "alice/rag-embed-worker" and push["kernelType"] == "script"
    assert push["enableGpu"] is True and push["enableInternet"] is False and push["isPrivate"] is True
    assert push["datasetDataSources"] == ["alice/rag-embed-input", "alice/minilm-weights"]
    compile(push["text"], "kernel.py", "exec")  # valid Python, carrying the worker
    assert "def _run_under_pipes" in push["text"]

    # A second run versions the existing dataset instead of creating it.
    fake.statuses = ["complete"]
    runner.embed(build_asset_context(), TEXTS, HASHES, MODEL, tmp_path / "w2")
    assert "POST /datasets/create/version/alice/rag-embed-input" in fake.api_calls()


def test_kaggle_pushed_kernel_script_really_embeds(tmp_path, kaggle_creds, fake_factory, reference):
    """The stand-in runs the pushed script (bundled worker + uploaded weights zip) on this machine."""
    fake = fake_factory(run_script=True)
    runner = EmbeddingRunner(mode="kaggle", kaggle_base_url=fake.base_url, kaggle_poll_s=0.01)
    vectors, meta = runner.embed(build_asset_context(), TEXTS, HASHES, MODEL, tmp_path / "w")
    assert set(fake.uploaded) == {"rag_texts.parquet", "rag_model.zip"}
    np.testing.assert_allclose(vectors, reference, atol=1e-4)
    assert meta["device"] == "cpu" and meta["texts"] == len(TEXTS)


def test_kaggle_kernel_error_reports_log_tail(tmp_path, kaggle_creds, fake_factory):
    log = json.dumps([{"stream_name": "stdout", "time": 1.0, "data": "loading model\n"},
                      {"stream_name": "stderr", "time": 2.0, "data": "RuntimeError: CUDA out of memory\n"}])
    fake = fake_factory(statuses=["running", "error"], failure="Kernel exited with code 1", log=log)
    runner = KaggleRunner(base_url=fake.base_url, poll_s=0.01, log=lambda m: None)
    src = tmp_path / "texts.parquet"
    write_table(src, pd.DataFrame({"content_hash": HASHES, "text": TEXTS}))
    with pytest.raises(KaggleError) as err:
        runner.run(src, tmp_path, MODEL)
    msg = str(err.value)
    assert "ended 'error'" in msg and "Kernel exited with code 1" in msg
    assert "RuntimeError: CUDA out of memory" in msg and "loading model" in msg


def test_kaggle_poll_timeout(tmp_path, kaggle_creds, fake_factory):
    fake = fake_factory(statuses=["running"])
    runner = KaggleRunner(base_url=fake.base_url, poll_s=0.02, poll_max_s=0.05, timeout_s=0.3, log=lambda m: None)
    src = tmp_path / "texts.parquet"
    write_table(src, pd.DataFrame({"content_hash": HASHES, "text": TEXTS}))
    with pytest.raises(KaggleError, match=r"kernel alice/rag-embed-worker still 'running' after 0.3s \(timeout\)"):
        runner.run(src, tmp_path, MODEL)
    assert 3 <= fake.api_calls().count("GET /kernels/status") <= 20  # backed off, then gave up
