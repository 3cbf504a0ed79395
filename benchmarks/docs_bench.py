"""Docs download throughput against a local threaded site: cold run, then all-unchanged (304s).

    .venv/bin/python benchmarks/docs_bench.py                 # 1,000 pages, no rate limit
    .venv/bin/python benchmarks/docs_bench.py --rps default   # with FetcherConfig's per-host rate limit

Concurrency (max_workers, per_host_concurrency) is the Fetcher's default. The per-host rate
limit is off by default here, since with it on the run only measures the limit itself.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rag_assets.sources.docs import Fetcher, FetcherConfig, download_library  # noqa: E402
from rag_assets_tests.docsite import DocSite  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=1000)
    ap.add_argument("--rps", default="0", help="per-host requests/s: a number, 0 = unlimited, or 'default'")
    args = ap.parse_args()
    rps = FetcherConfig().per_host_rps if args.rps == "default" else float(args.rps)
    cfg = FetcherConfig(per_host_rps=rps)
    print(f"pages={args.pages} max_workers={cfg.max_workers} per_host_concurrency={cfg.per_host_concurrency} "
          f"per_host_rps={rps or 'unlimited'}")
    with DocSite(generated=args.pages) as site:
        previous = None
        for label in ("cold", "unchanged"):
            with Fetcher(cfg) as fetcher:  # a fresh client each run, as in a new Dagster run
                t0 = time.perf_counter()
                df, stats = download_library("bench", site.url("/gen-sitemap.xml"), previous, fetcher)
                dt = time.perf_counter() - t0
            full = sum(v for k, v in site.full.items() if k.startswith("/gen/"))
            print(f"{label:9s} {args.pages / dt:8.1f} pages/s  {dt:6.2f}s  fetched={stats.fetched} "
                  f"not_modified={stats.not_modified} duplicates={stats.duplicates} failed={stats.failed} "
                  f"bodies_served={full} MB={stats.bytes / 1e6:.1f}")
            previous = df
            site.reset_counters()


if __name__ == "__main__":
    main()
