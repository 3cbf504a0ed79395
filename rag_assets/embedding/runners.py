"""Where the embedding compute runs: in the Dagster process, a Pipes subprocess, or a Kaggle kernel.

All out-of-process modes share one contract (see embedding/worker.py): a texts Parquet goes in, a vectors
Parquet comes out, with the run stats in its meta. Under Pipes the stats also arrive as a custom
message, and the worker's logs land in the Dagster event log.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from dagster import ConfigurableResource, PipesSubprocessClient

from rag_assets import settings

from rag_assets.embedding.worker import STATS_MESSAGE
from rag_assets.embedding.embedder import Embedder
from rag_assets.embedding.kaggle import DEFAULT_BASE_URL, TEXTS_FILE, VECTORS_FILE, KaggleRunner
from rag_assets.embedding.models import get_model, model_path
from rag_assets.tables import read_table, write_table

MODES = ("in_process", "subprocess", "kaggle")


class EmbeddingRunner(ConfigurableResource):
    mode: str | None = None  # in_process | subprocess | kaggle; unset: RAG_EMBED_MODE, else in_process
    device: str = "auto"  # auto: CUDA when present (fp16 there)
    batch_size: int = 32
    threads: int = 0  # torch CPU threads; 0: auto (the CPUs other processes leave idle, see embedder.auto_threads)
    kaggle_base_url: str = DEFAULT_BASE_URL
    kaggle_dataset_slug: str = "rag-embed-input"
    kaggle_kernel_slug: str = "rag-embed-worker"
    kaggle_model_dataset: str = ""  # "owner/slug" holding the weights; empty: upload them each run
    kaggle_timeout_s: float = 3600
    kaggle_poll_s: float = 10
    progress_bar: bool = False  # a terminal bar for in-process runs (the CLI turns it on)

    @property
    def effective_mode(self) -> str:
        return self.mode or settings.current().embed_mode

    def embed(self, context, texts: list[str], content_hashes: list[str], model_key: str,
              workdir: Path, progress=None) -> tuple[np.ndarray, dict]:
        """Vectors for texts (input order) and the run's stats: texts, texts_per_s, device, model, dim,
        seconds, load_seconds (+ wall_seconds for the whole call, mode)."""
        mode = self.effective_mode
        if mode not in MODES:
            raise ValueError(f"unknown embedding mode '{mode}' (known: {', '.join(MODES)})")
        if len(texts) != len(content_hashes):
            raise ValueError(f"{len(texts)} texts for {len(content_hashes)} content hashes")
        spec = get_model(model_key)
        t = time.perf_counter()
        if mode == "in_process":
            vectors, stats = self._in_process(context, texts, spec, progress)
        else:
            # Kaggle credentials are checked before anything is written.
            kaggle = self._kaggle(context) if mode == "kaggle" else None
            workdir = Path(workdir)
            workdir.mkdir(parents=True, exist_ok=True)
            src, dst = workdir / TEXTS_FILE, workdir / VECTORS_FILE
            write_table(src, pd.DataFrame({"content_hash": content_hashes, "text": texts}))
            if kaggle is not None:
                kaggle.run(src, workdir, spec.key, self.batch_size, model_dir=Path(model_path(spec)))
                reported = {}
            else:
                reported = self._subprocess(context, src, dst, spec.key)
            out = read_table(dst)
            if out.df["content_hash"].tolist() != list(content_hashes):
                raise RuntimeError(f"embedding worker returned rows out of order or incomplete ({dst})")
            # Pipes' report wins; the output's meta is the fallback (Kaggle has no Pipes channel).
            vectors = out.vectors
            stats = {**out.meta, **reported, "stats_from": "pipes" if reported else "output"}
        stats.update(mode=mode, wall_seconds=round(time.perf_counter() - t, 3))
        return vectors, stats

    def _in_process(self, context, texts: list[str], spec, progress=None) -> tuple[np.ndarray, dict]:
        emb = Embedder(spec, device=self.device, batch_size=self.batch_size, threads=self.threads or None)
        if texts:
            emb.model  # load outside the timed part, as the worker does
        t = time.perf_counter()
        vectors = emb.encode_documents(texts, progress=progress)
        secs = time.perf_counter() - t
        stats = {"texts": len(texts), "texts_per_s": round(len(texts) / secs, 1) if secs > 0 else 0.0,
                 "device": emb.device, "model": spec.key, "dim": spec.dim, "seconds": round(secs, 3),
                 "load_seconds": round(emb.load_seconds, 3)}
        if texts and emb.device == "cpu":
            import torch

            stats["threads"] = torch.get_num_threads()
        context.log.info(f"embedded {len(texts)} texts in process: {stats['texts_per_s']} texts/s on {emb.device}")
        return vectors, stats

    def _subprocess(self, context, src: Path, dst: Path, model_key: str) -> dict:
        extras = {"input": str(src), "output": str(dst), "model": model_key,
                  "batch_size": self.batch_size, "device": self.device, "threads": self.threads}
        # Same interpreter as Dagster, so the child imports this very checkout of rag_assets.
        client = PipesSubprocessClient(env={"TOKENIZERS_PARALLELISM": "false"})
        invocation = client.run(context=context, extras=extras,
                                command=[sys.executable, "-m", "rag_assets.embedding.worker"])
        msgs = [m[STATS_MESSAGE] for m in invocation.get_custom_messages()
                if isinstance(m, dict) and STATS_MESSAGE in m]
        return msgs[-1] if msgs else {}

    def _kaggle(self, context) -> KaggleRunner:
        return KaggleRunner(
            base_url=self.kaggle_base_url, dataset_slug=self.kaggle_dataset_slug,
            kernel_slug=self.kaggle_kernel_slug, model_dataset=self.kaggle_model_dataset,
            timeout_s=self.kaggle_timeout_s, poll_s=self.kaggle_poll_s, log=context.log.info,
        )
