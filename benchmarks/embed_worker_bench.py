"""Embedding worker (plain CLI, own process) vs the in-process Embedder on the same texts, one run each.

    .venv/bin/python benchmarks/embed_worker_bench.py --n 200
    .venv/bin/python benchmarks/embed_worker_bench.py --n 5000 --device cuda --batch-size 128

texts/s counts encoding only (model load excluded on both sides); "wall" is the whole worker call
(process start + imports + model load + Parquet in/out), i.e. what the subprocess mode costs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rag_assets.embedding.embedder import Embedder  # noqa: E402
from rag_assets.embedding.models import get_model  # noqa: E402
from rag_assets.tables import read_table, write_table  # noqa: E402

WORDS = ["items", "config", "parse", "value", "result", "path", "index", "token", "batch", "cache", "store"]


def code_like(i: int, rng: np.random.Generator) -> str:
    """A function of 2-40 lines, so lengths vary as real chunks do."""
    name = f"{rng.choice(WORDS)}_{rng.choice(WORDS)}_{i}"
    body = [f"    {rng.choice(WORDS)} = {rng.choice(WORDS)}.get('{rng.choice(WORDS)}', {int(rng.integers(100))})"
            for _ in range(int(rng.integers(2, 40)))]
    return f"def {name}({rng.choice(WORDS)}, {rng.choice(WORDS)}=None):\n" + "\n".join(body) + "\n    return result\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--model", default="minilm-l6")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    texts = [code_like(i, rng) for i in range(args.n)]
    hashes = [f"h{i}" for i in range(args.n)]
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "texts.parquet", Path(tmp) / "vectors.parquet"
        write_table(src, pd.DataFrame({"content_hash": hashes, "text": texts}))
        env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_PIPES")}
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "rag_assets.embedding.worker", "--input", str(src), "--output", str(dst),
             "--model", args.model, "--batch-size", str(args.batch_size), "--device", args.device],
            capture_output=True, text=True, env=env, check=True,
        )
        worker_wall = time.perf_counter() - t
        worker = json.loads(proc.stdout.strip().splitlines()[-1])
        worker_vecs = read_table(dst).vectors

    emb = Embedder(get_model(args.model), device=args.device, batch_size=args.batch_size)
    t = time.perf_counter()
    emb.model
    load = time.perf_counter() - t
    t = time.perf_counter()
    vecs = emb.encode_documents(texts)
    secs = time.perf_counter() - t
    inproc_tps = args.n / secs

    print(f"texts: {args.n}  model: {args.model}  device: worker={worker['device']} in-process={emb.device}  "
          f"mean chars: {np.mean([len(x) for x in texts]):.0f}")
    print(f"worker     : {worker['texts_per_s']:.1f} texts/s  encode {worker['seconds']:.2f}s  "
          f"load {worker['load_seconds']:.2f}s  wall {worker_wall:.2f}s")
    print(f"in-process : {inproc_tps:.1f} texts/s  encode {secs:.2f}s  load {load:.2f}s  wall {load + secs:.2f}s")
    print(f"ratio worker/in-process: texts/s {worker['texts_per_s'] / inproc_tps:.2f}  "
          f"wall {worker_wall / (load + secs):.2f}x  max |diff| {np.abs(worker_vecs - vecs).max():.1e}")


if __name__ == "__main__":
    main()
