"""Embedding worker: texts Parquet in, vectors Parquet out, in its own process.

Contract (shared by the Dagster subprocess path, Kaggle kernels and benchmarks):
  input  Parquet: columns content_hash, text
  output Parquet: column content_hash (input order) + float32 'vector'; the run stats are also
                  stored in the table meta, so a caller without Pipes (Kaggle) still gets them.

Launched by Dagster Pipes (PipesSubprocessClient) it reads its params from the Pipes extras,
logs through context.log and reports its stats with report_custom_message: the asset that wants
the vectors is materialized by the orchestrator, which attaches the stats to its own output.
Without Pipes it is a plain CLI:

  python -m rag_assets.embedding.worker --input texts.parquet --output vectors.parquet
      [--model minilm-l6] [--batch-size 32] [--device auto] [--model-dir DIR] [--threads N]

and prints the stats as one JSON line on stdout. Imports only a few light modules (embedder, models,
tables, contract, settings; not Dagster), so the Kaggle runner can ship them as the kernel's source
(kaggle._WORKER_MODULES).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
from pathlib import Path

import pandas as pd

from rag_assets.embedding.embedder import Embedder
from rag_assets.embedding.models import DEFAULT_MODEL, get_model
from rag_assets.tables import read_table, write_table

STATS_MESSAGE = "embed_stats"  # key of the Pipes custom message carrying the stats


def run(input_path: str | Path, output_path: str | Path, model: str = DEFAULT_MODEL, batch_size: int = 32,
        device: str = "auto", model_dir: str | None = None, log: logging.Logger | None = None,
        threads: int | None = None) -> dict:
    """Encode the input Parquet's texts and write the vectors Parquet; returns the run stats."""
    log = log or logging.getLogger("rag_assets.embedding.worker")
    texts_df = read_table(Path(input_path)).df
    spec = get_model(model)
    if model_dir:  # weights shipped next to the data (e.g. an offline Kaggle kernel)
        spec = dataclasses.replace(spec, location=str(model_dir))
    embedder = Embedder(spec, device=device, batch_size=batch_size, threads=threads or None)
    texts = texts_df["text"].tolist()
    if texts:
        embedder.model  # load first so 'seconds' measures encoding only
    threads_used = _torch_threads() if texts and embedder.device == "cpu" else None
    log.info(f"encoding {len(texts)} texts with {spec.key} on {embedder.device} "
             f"(batch {batch_size}, {embedder.batch_tokens} tokens/batch"
             f"{f', {threads_used} threads' if threads_used else ''}, model load {embedder.load_seconds:.1f}s)")

    done = 0

    def progress(n: int) -> None:
        nonlocal done
        done += n
        log.info(f"embedded {done}/{len(texts)}")

    t = time.perf_counter()
    vectors = embedder.encode_documents(texts, progress=progress)
    seconds = time.perf_counter() - t
    stats = {
        "texts": len(texts), "texts_per_s": round(len(texts) / seconds, 1) if seconds > 0 else 0.0,
        "device": embedder.device, "model": spec.key, "dim": spec.dim,
        "seconds": round(seconds, 3), "load_seconds": round(embedder.load_seconds, 3),
    }
    if threads_used:
        stats["threads"] = _torch_threads()
    out = pd.DataFrame({"content_hash": texts_df["content_hash"].astype(str)})
    write_table(Path(output_path), out, meta=stats, vectors=vectors)
    return stats


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _pipes_launched() -> bool:
    try:
        from dagster_pipes import PipesEnvVarParamsLoader
    except ImportError:  # e.g. a Kaggle kernel: dagster_pipes is not installed there
        return False
    return PipesEnvVarParamsLoader().is_dagster_pipes_process()


def _run_under_pipes() -> None:
    from dagster_pipes import open_dagster_pipes

    # The context manager reports an exception in here to Dagster before the process exits.
    with open_dagster_pipes() as pipes:
        x = pipes.extras
        stats = run(x["input"], x["output"], x.get("model", DEFAULT_MODEL), int(x.get("batch_size", 32)),
                    x.get("device", "auto"), x.get("model_dir"), log=pipes.log, threads=int(x.get("threads") or 0))
        pipes.report_custom_message({STATS_MESSAGE: stats})


def main(argv: list[str] | None = None) -> None:
    if argv is None and _pipes_launched():
        _run_under_pipes()
        return
    ap = argparse.ArgumentParser(prog="python -m rag_assets.embedding.worker", description=__doc__.splitlines()[0])
    ap.add_argument("--input", required=True, help="Parquet with columns content_hash, text")
    ap.add_argument("--output", required=True, help="vectors Parquet to write")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--device", default="auto", help="auto | cuda | cpu | mps")
    ap.add_argument("--model-dir", default=None, help="local weights folder overriding the registry's")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: auto, the CPUs left idle)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    stats = run(args.input, args.output, args.model, args.batch_size, args.device, args.model_dir, threads=args.threads)
    print(json.dumps(stats), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
