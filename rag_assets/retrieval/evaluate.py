"""recall@k and MRR@10 against a golden query file (JSON lines, see README: query file contract)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from rag_assets.retrieval.search import Hit, Searcher

REQUIRED = ("id", "query", "path", "start_line", "end_line", "kind")
KS = (1, 5, 10)


class QueryFileError(ValueError):
    pass


def load_queries(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise QueryFileError(f"{path}: query file not found")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            q = json.loads(line)
        except json.JSONDecodeError as e:
            raise QueryFileError(f"{path}:{n}: not valid JSON ({e.msg})") from None
        missing = [f for f in REQUIRED if f not in q] if isinstance(q, dict) else list(REQUIRED)
        if missing:
            raise QueryFileError(f"{path}:{n}: missing field(s) {', '.join(missing)}")
        if not (isinstance(q["start_line"], int) and isinstance(q["end_line"], int) and 1 <= q["start_line"] <= q["end_line"]):
            raise QueryFileError(f"{path}:{n}: start_line/end_line must be integers with 1 <= start <= end")
        out.append(q)
    if not out:
        raise QueryFileError(f"{path}: no queries")
    return out


def check_query_paths(queries: list[dict], paths, source: str, queries_file: str | Path = "the query file",
                      examples: int = 3) -> str | None:
    """A query whose `path` is not in the indexed source can never be hit: it scores 0 whatever the search
    does (a query file for another source, or paths relative to another root). None when every path is
    there; a one-line warning when some are not; QueryFileError when none is."""
    known = set(paths)
    missing = [q for q in queries if q["path"] not in known]
    if not missing:
        return None
    shown = list(dict.fromkeys(q["path"] for q in missing))
    eg = ", ".join(shown[:examples]) + (", ..." if len(shown) > examples else "")
    if len(missing) == len(queries):
        near = f"; the source has e.g. {', '.join(sorted(known)[:examples])}" if known else ""
        raise QueryFileError(f"{queries_file}: none of the {len(queries)} query paths is in source '{source}' "
                             f"(e.g. {eg}){near}: is the file for another source, or are its paths relative to "
                             "another folder?")
    return (f"{len(missing)} of {len(queries)} queries in {queries_file} name a path that is not in source '{source}' "
            f"(e.g. {eg}); they count as misses")


def is_hit(q: dict, h: Hit) -> bool:
    return h.path == q["path"] and h.start_line <= q["end_line"] and h.end_line >= q["start_line"]


def first_hit_rank(q: dict, hits: list[Hit]) -> int | None:
    return next((i + 1 for i, h in enumerate(hits) if is_hit(q, h)), None)


def _summary(ranks: list[int | None]) -> dict:
    n = len(ranks)
    out = {f"recall@{k}": round(sum(1 for r in ranks if r and r <= k) / n, 4) for k in KS}
    out["mrr@10"] = round(sum(1 / r for r in ranks if r and r <= 10) / n, 4)
    out["n"] = n
    return out


def evaluate(searcher: Searcher, queries: list[dict], k: int = 10, **search_kw) -> dict:
    results = searcher.search_many([q["query"] for q in queries], k=max(k, 10), **search_kw)
    ranks = [first_hit_rank(q, hits) for q, hits in zip(queries, results)]
    by_kind: dict[str, list] = defaultdict(list)
    for q, r in zip(queries, ranks):
        by_kind[q["kind"]].append(r)
    return {
        "overall": _summary(ranks),
        "by_kind": {kind: _summary(rs) for kind, rs in sorted(by_kind.items())},
        "misses": [q["id"] for q, r in zip(queries, ranks) if r is None],
    }
