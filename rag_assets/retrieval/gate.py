"""The promotion gate: may a candidate collection replace the live one behind a source's alias?

Pure (no Dagster, no store): two eval reports in (`evaluate.evaluate`'s {"overall", "by_kind", "misses"},
measured in the same run on the same queries), a decision out.

The rule. The candidate passes when
- it answered at least one golden query (n > 0), and
- its recall@10 >= `floor` (the absolute floor, RAG_RECALL_THRESHOLD), and
- when there is a live collection other than the candidate: its recall@10 and its MRR@10 are each
  >= the live collection's minus `tolerance` (RAG_GATE_TOLERANCE).
A failed gate says in one line which measure fell and by how much.
"""

from __future__ import annotations

from typing import NamedTuple

MEASURES = ("recall@10", "mrr@10")  # the compared measures (recall@10 is also the floor's measure)
REPORTED = ("recall@1", "recall@5", "recall@10", "mrr@10", "n")
_EPS = 1e-9  # reports are rounded to 4 places: equal figures must compare equal


class GateDecision(NamedTuple):
    passed: bool
    reason: str  # one line
    metadata: dict  # plain values; "comparison" is a Markdown table, "by_kind" a JSON-able dict


def _fmt(x: float) -> str:
    return f"{x:.3f}"


def _comparison_table(candidate: dict, live: dict | None, cand: str, live_name: str | None) -> str:
    kinds = ["overall", *sorted(set(candidate.get("by_kind", {})) | set((live or {}).get("by_kind", {})))]
    head = ["kind", "n", f"{cand} R@10"]
    if live is not None:
        head += [f"live {live_name} R@10", "Δ"]
    head += [f"{cand} MRR@10"]
    if live is not None:
        head += [f"live {live_name} MRR@10", "Δ"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for kind in kinds:
        c = candidate["overall"] if kind == "overall" else candidate.get("by_kind", {}).get(kind)
        lv = None if live is None else (live["overall"] if kind == "overall" else live.get("by_kind", {}).get(kind))
        cells = [kind, str((c or lv or {}).get("n", 0))]
        for m in MEASURES:
            cells.append(_fmt(c[m]) if c else "–")
            if live is not None:
                cells.append(_fmt(lv[m]) if lv else "–")
                cells.append(f"{c[m] - lv[m]:+.3f}" if c and lv else "–")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def decide(candidate: dict, live: dict | None, *, candidate_name: str, live_name: str | None = None,
           tolerance: float = 0.01, floor: float = 0.5) -> GateDecision:
    """Gate `candidate` (an eval report) against `live` (the live collection's report on the same queries,
    or None when there is no live collection or the live one IS the candidate: then only the floor applies).
    """
    co = candidate["overall"]
    lo = live["overall"] if live is not None else None
    live_label = live_name or "live"
    if lo is not None and lo["n"] != co["n"]:
        raise ValueError(f"candidate and live were measured on different query sets (n={co['n']} vs {lo['n']})")

    meta: dict = {key: co[key] for key in REPORTED}
    meta.update({"candidate": candidate_name, "live": live_name if lo is not None else "none",
                 "threshold": floor, "tolerance": tolerance})
    if lo is not None:
        meta.update({f"live_{key}": lo[key] for key in REPORTED if key != "n"})
        meta.update({f"delta_{m}": round(co[m] - lo[m], 4) for m in MEASURES})
    meta["by_kind"] = {
        kind: {"n": rep["n"], **{m: rep[m] for m in MEASURES},
               **({f"live_{m}": live["by_kind"][kind][m] for m in MEASURES}
                  if lo is not None and kind in live.get("by_kind", {}) else {})}
        for kind, rep in candidate.get("by_kind", {}).items()
    }
    meta["comparison"] = _comparison_table(candidate, live, candidate_name, live_name)
    meta["misses"] = ", ".join(map(str, candidate.get("misses", [])[:20])) or "none"
    if lo is not None:
        meta["live_misses"] = ", ".join(map(str, live.get("misses", [])[:20])) or "none"

    if co["n"] == 0:
        meta.update(passed_floor=False, passed_live=lo is None)
        return GateDecision(False, f"{candidate_name}: no golden queries were measured", meta)

    failures = []
    r = co["recall@10"]
    passed_floor = r >= floor - _EPS
    if not passed_floor:
        failures.append(f"{candidate_name} recall@10 {_fmt(r)} < floor {floor:g}")
    passed_live = True
    if lo is not None:
        for m in MEASURES:
            if co[m] < lo[m] - tolerance - _EPS:
                passed_live = False
                failures.append(f"{candidate_name} {m} {_fmt(co[m])} < live {live_label} {_fmt(lo[m])} - {tolerance:g} "
                                f"({co[m] - lo[m]:+.3f})")
    meta.update(passed_floor=passed_floor, passed_live=passed_live)
    if failures:
        return GateDecision(False, "; ".join(failures), meta)
    if lo is None:
        return GateDecision(True, f"{candidate_name} recall@10 {_fmt(r)} >= floor {floor:g} (no other live collection "
                                  f"to compare with)", meta)
    return GateDecision(True, f"{candidate_name} recall@10 {_fmt(r)}, mrr@10 {_fmt(co['mrr@10'])} >= live {live_label} "
                              f"{_fmt(lo['recall@10'])}, {_fmt(lo['mrr@10'])} - {tolerance:g}; floor {floor:g}", meta)
