"""Query-time ranking variants, judged on every golden file at once (recall@1/5/10 and MRR@10).

Needs collections that retrieval_bench.py built (it prints their work dirs' data under /tmp):

    python benchmarks/ranking_bench.py --work express=/tmp/rag-retrieval-express-xxxx,click=/tmp/...

Each variant re-ranks the same candidates (dense top 50 and BM25 top 50 from the store): the engine's
own equal-weight RRF (the default search), RRF weighted by the query's shape, and the collapse of a
type outline with its own members. One model load, one run: the figures are comparable.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = {"rag-assets": "rag-assets.jsonl", "click": "click.jsonl", "express": "express.jsonl",
          "gorilla-mux": "gorilla-mux.jsonl", "serde-json": "serde-json.jsonl"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True, help="corpus=workdir,... (retrieval_bench work dirs)")
    args = ap.parse_args()
    work = dict(x.split("=", 1) for x in args.work.split(","))

    from rag_assets.retrieval.evaluate import first_hit_rank, load_queries
    from rag_assets.retrieval.search import Searcher
    from rag_assets.retrieval.ranking import VARIANTS
    from rag_assets.store import open_store

    table: dict[str, dict[str, dict]] = {}
    for corpus, wd in work.items():
        golden = Path(wd) / "repo" / "evals" / GOLDEN[corpus] if corpus == "rag-assets" else ROOT / "evals" / GOLDEN[corpus]
        queries = load_queries(golden)
        with open_store(Path(wd) / "data") as store:
            s = Searcher(store, corpus, model="minilm-l6")
            for name, options in VARIANTS.items():
                results = s.search_many([q["query"] for q in queries], k=10, **options)
                ranks = [first_hit_rank(q, hits) for q, hits in zip(queries, results)]
                n = len(ranks)
                table.setdefault(name, {})[corpus] = {
                    "r1": sum(1 for r in ranks if r and r <= 1) / n, "r10": sum(1 for r in ranks if r) / n,
                    "mrr": sum(1 / r for r in ranks if r) / n}
    corpora = list(work)
    print(f"{'variant':<34}" + "".join(f"{c:>22}" for c in corpora) + f"{'mean':>16}")
    print(f"{'':<34}" + "".join(f"{'R@10  MRR@10':>22}" for _ in corpora) + f"{'R@10  MRR':>16}")
    for name, row in table.items():
        cells = "".join(f"{row[c]['r10']:>14.3f}{row[c]['mrr']:>8.3f}" for c in corpora)
        mean_r = sum(row[c]["r10"] for c in corpora) / len(corpora)
        mean_m = sum(row[c]["mrr"] for c in corpora) / len(corpora)
        print(f"{name:<34}{cells}{mean_r:>8.3f}{mean_m:>8.3f}")


if __name__ == "__main__":
    main()
