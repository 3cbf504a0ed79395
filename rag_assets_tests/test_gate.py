"""The recall gate relative to what is live, golden queries mined per source, and the alias guard.

Pure tests of gate.decide and mining; then real Dagster runs (real git repos, the real MiniLM model, the
embedded store): a worse candidate is refused although it clears the absolute floor, `--force` moves the
alias anyway and says so, the weekly re-embed cannot move the alias to a worse collection, and a source
with no queries file is gated on its mined queries (and fails on an empty collection).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from dagster import AssetCheckKey, AssetKey, build_schedule_context

from rag_assets.chunking import chunk_file
from rag_assets.retrieval.gate import decide
from rag_assets.retrieval.mining import (
    QUERY_COLUMNS, first_sentence, load_cache, mine_queries, mine_table, name_tokens, save_cache, strip_name,
)
from rag_assets.tables import Table, write_table
from rag_assets_tests.gitrepo import make_repo
from rag_assets_tests.test_pipeline import MATH, SHOP


# ------------------------------------------------------------------ gate.decide (pure)
def _report(r10: float, mrr: float, n: int = 20, by_kind: dict | None = None, misses=()) -> dict:
    return {"overall": {"recall@1": round(mrr * 0.8, 4), "recall@5": r10, "recall@10": r10, "mrr@10": mrr, "n": n},
            "by_kind": by_kind or {}, "misses": list(misses)}


def _kind(r10: float, mrr: float, n: int) -> dict:
    return {"recall@1": mrr, "recall@5": r10, "recall@10": r10, "mrr@10": mrr, "n": n}


def test_gate_refuses_a_candidate_below_live_in_one_line():
    ok, reason, meta = decide(_report(0.612, 0.60), _report(0.853, 0.60), candidate_name="mpnet-base",
                              live_name="minilm-l6", tolerance=0.01, floor=0.5)
    assert not ok
    assert reason == "mpnet-base recall@10 0.612 < live minilm-l6 0.853 - 0.01 (-0.241)"
    assert "\n" not in reason
    assert (meta["passed_floor"], meta["passed_live"]) == (True, False)
    assert (meta["recall@10"], meta["live_recall@10"], meta["delta_recall@10"]) == (0.612, 0.853, -0.241)


def test_gate_names_every_measure_that_fell():
    ok, reason, _ = decide(_report(0.80, 0.40), _report(0.85, 0.55), candidate_name="b", live_name="a",
                           tolerance=0.01, floor=0.5)
    assert not ok and reason == ("b recall@10 0.800 < live a 0.850 - 0.01 (-0.050); "
                                 "b mrr@10 0.400 < live a 0.550 - 0.01 (-0.150)")
    ok, reason, _ = decide(_report(0.85, 0.50), _report(0.85, 0.55), candidate_name="b", live_name="a",
                           tolerance=0.01, floor=0.5)
    assert not ok and reason.startswith("b mrr@10 0.500 < live a 0.550") and "recall" not in reason


def test_gate_passes_within_tolerance_and_when_better():
    assert decide(_report(0.845, 0.555), _report(0.853, 0.564), candidate_name="b", live_name="a",
                  tolerance=0.01, floor=0.5).passed
    assert decide(_report(0.84, 0.55), _report(0.85, 0.56), candidate_name="b", live_name="a",
                  tolerance=0.01, floor=0.5).passed  # exactly live - tolerance
    assert not decide(_report(0.84, 0.55), _report(0.85, 0.56), candidate_name="b", live_name="a",
                      tolerance=0.0, floor=0.5).passed
    ok, reason, meta = decide(_report(0.95, 0.7), _report(0.85, 0.56), candidate_name="b", live_name="a",
                              tolerance=0.01, floor=0.5)
    assert ok and reason.startswith("b recall@10 0.950, mrr@10 0.700 >= live a 0.850, 0.560")
    assert meta["delta_mrr@10"] == 0.14


def test_gate_without_a_live_collection_applies_only_the_floor():
    ok, reason, meta = decide(_report(0.6, 0.1), None, candidate_name="b", tolerance=0.01, floor=0.5)
    assert ok and "no other live collection" in reason and meta["live"] == "none"
    assert "live_recall@10" not in meta
    ok, reason, meta = decide(_report(0.4, 0.9), None, candidate_name="b", tolerance=0.01, floor=0.5)
    assert not ok and reason == "b recall@10 0.400 < floor 0.5" and not meta["passed_floor"]


def test_gate_floor_still_applies_when_better_than_live():
    ok, reason, meta = decide(_report(0.45, 0.4), _report(0.30, 0.2), candidate_name="b", live_name="a",
                              tolerance=0.01, floor=0.5)
    assert not ok and reason == "b recall@10 0.450 < floor 0.5"
    assert (meta["passed_floor"], meta["passed_live"]) == (False, True)


def test_gate_fails_on_no_queries_and_rejects_different_query_sets():
    ok, reason, _ = decide(_report(0.0, 0.0, n=0), None, candidate_name="b", tolerance=0.01, floor=0.5)
    assert not ok and "no golden queries" in reason
    with pytest.raises(ValueError, match="different query sets"):
        decide(_report(0.9, 0.9, n=10), _report(0.9, 0.9, n=12), candidate_name="b", live_name="a")


def test_gate_metadata_shows_both_collections_per_kind():
    cand = _report(0.7, 0.5, n=30, by_kind={"code": _kind(0.6, 0.4, 20), "docs": _kind(0.9, 0.7, 10)}, misses=["q1"])
    live = _report(0.8, 0.6, n=30, by_kind={"code": _kind(0.8, 0.6, 20), "docs": _kind(0.8, 0.6, 10)}, misses=["q2"])
    _, _, meta = decide(cand, live, candidate_name="mpnet-base", live_name="minilm-l6", tolerance=0.01, floor=0.5)
    assert meta["by_kind"]["code"] == {"n": 20, "recall@10": 0.6, "mrr@10": 0.4, "live_recall@10": 0.8,
                                       "live_mrr@10": 0.6}
    table = meta["comparison"].splitlines()
    assert table[0] == ("| kind | n | mpnet-base R@10 | live minilm-l6 R@10 | Δ | mpnet-base MRR@10 | "
                        "live minilm-l6 MRR@10 | Δ |")
    assert table[2] == "| overall | 30 | 0.700 | 0.800 | -0.100 | 0.500 | 0.600 | -0.100 |"
    assert table[3] == "| code | 20 | 0.600 | 0.800 | -0.200 | 0.400 | 0.600 | -0.200 |"
    assert table[4] == "| docs | 10 | 0.900 | 0.800 | +0.100 | 0.700 | 0.600 | +0.100 |"
    assert (meta["misses"], meta["live_misses"], meta["threshold"], meta["tolerance"]) == ("q1", "q2", 0.5, 0.01)


# ------------------------------------------------------------------ mining (pure, over real chunker output)
def _chunks(files: dict[str, str]) -> pd.DataFrame:
    rows = []
    for path, text in files.items():
        for i, c in enumerate(chunk_file(path, text)):
            rows.append({"chunk_id": f"{path}#{i}", "path": path, "kind": c.kind, "symbol": c.symbol,
                         "signature": c.signature, "start_line": c.start_line, "end_line": c.end_line,
                         "text": c.text, "language": c.language, "part": c.part})
    return pd.DataFrame(rows)


GEO = '''"""Geometry."""


class Circle:
    """A round shape described by the length of its radius."""

    def area(self) -> float:
        """How much flat space the shape covers, in square units."""
        return 3.14159 * self.r ** 2

    def grow(self, by: float) -> None:
        """Grow."""
        self.r += by


def circle_area(radius: float) -> float:
    """Circle area for a given radius, computed with pi times radius squared."""
    return 3.14159 * radius ** 2


def disk_area(radius: float) -> float:
    """Circle area for a given radius, computed with pi times radius squared."""
    return 3.14159 * radius ** 2
'''

GO = '''package store

// OpenStore opens the key value database found in the given folder and locks it.
func OpenStore(dir string) (*Store, error) {
	return nil, nil
}
'''

TS = '''/**
 * Formats a calendar date as an ISO string in the local time zone.
 * @param d the date
 */
export function formatDate(d: Date): string {
  return d.toISOString();
}
'''


def test_mining_recipe_docstring_first_sentence_without_the_name():
    q, stats = mine_queries(_chunks({"geo.py": GEO, "store.go": GO, "fmt.ts": TS, "mathutil.py": MATH}))
    assert list(q.columns) == QUERY_COLUMNS
    got = {r.symbol: (r.query, r.kind, r.start_line, r.end_line) for r in q.itertuples()}
    # method: its own name ("area") is taken out, the class's words stay
    assert got["Circle.area"] == ("How much flat space the shape covers, in square units", "method", 7, 9)
    assert got["Circle"][0] == "A round shape described by the length of its radius"
    assert got["OpenStore"][0] == "the key value database found in the given folder and locks it"  # "opens" too
    assert got["formatDate"][0] == "a calendar as an ISO string in the local time zone"  # "Formats", "date": its name
    assert got["hypotenuse"][0] == "Length of the of a right triangle with legs a and b"
    assert got["fibonacci"][0] == "The n-th number, computed iteratively"
    assert "Circle.grow" not in got  # "Grow." is too short
    # circle_area and disk_area share their docstring: ambiguous, both dropped
    assert "circle_area" not in got and "disk_area" not in got
    assert stats.as_dict()["with_doc"] > stats.as_dict()["long_enough"] >= stats.as_dict()["kept"] == len(q)
    assert (q["recipe"] == "docstring").all()


def test_mining_prefers_functions_caps_and_is_deterministic():
    adjs = ["red", "green", "blue", "late", "early", "small", "large", "quiet", "loud", "fresh"]
    nouns = ["invoice", "customer", "shipment", "ledger", "report", "catalog", "payment", "order"]
    funcs = {f"pkg/m{i}.py": "".join(
        f'def job_{i}_{j}(x):\n    """Run the {adjs[i]} batch of {nouns[j]} rows for every tenant."""\n'
        f"    return x\n\n\n" for j in range(8)) for i in range(10)}
    classes = {"pkg/shapes.py": "".join(f'class Shape{i}:\n    """A {adjs[i]} figure that we draw on the canvas."""\n'
                                        f"    sides = {i}\n\n\n" for i in range(5))}
    tests = {"tests/test_m.py": 'def test_runs():\n    """The nightly batch runs for every tenant account."""\n'}
    chunks = _chunks({**funcs, **classes, **tests})
    a, _ = mine_queries(chunks, cap=50, seed=0)
    b, _ = mine_queries(chunks.sample(frac=1, random_state=3), cap=50, seed=0)  # row order does not matter
    assert len(a) == 50 and set(a["kind"]) == {"function"}  # 80 functions: no class, no test code gets in
    assert a.equals(b)
    c, _ = mine_queries(chunks, cap=50, seed=1)
    assert set(c["id"]) != set(a["id"])  # the seed picks the sample
    small, _ = mine_queries(chunks, cap=84, seed=0)
    assert sorted(small["kind"].value_counts().items()) == [("class", 4), ("function", 80)]
    assert not small["path"].str.startswith("tests/").any()  # test code comes last


def test_mining_targets_the_whole_span_of_a_split_definition():
    body = "".join(f"    total += {i} * value  # step {i} of the long computation\n" for i in range(300))
    text = f'def long_sum(value):\n    """Add the value many times over in one long computation loop."""\n' \
           f"    total = 0\n{body}    return total\n"
    chunks = _chunks({"big.py": text})
    assert chunks["part"].max() > 1
    q, _ = mine_queries(chunks)
    [row] = q.itertuples()
    assert (row.start_line, row.end_line) == (1, text.count("\n"))


def _hashed(chunks: pd.DataFrame) -> pd.DataFrame:
    """Chunk ids as the chunker makes them: a hash of path, lines and text (what the mining cache keys on)."""
    key = chunks["path"] + ":" + chunks["start_line"].astype(str) + ":" + chunks["end_line"].astype(str) + ":" + \
        chunks["text"]
    return chunks.assign(chunk_id=[hashlib.sha256(k.encode()).hexdigest()[:32] for k in key])


def test_mining_streams_a_parquet_table_and_reparses_only_changed_definitions(tmp_path):
    files = {"geo.py": GEO, "store.go": GO, "fmt.ts": TS, "mathutil.py": MATH}
    before = _hashed(_chunks(files))
    write_table(tmp_path / "a.parquet", before)
    q1, s1, cache = mine_table(Table.open(tmp_path / "a.parquet"))
    assert q1.equals(mine_queries(before)[0]) and s1.parsed == s1.definitions > 0
    save_cache(tmp_path / "cache.parquet", cache)

    # one docstring edited: only that definition is parsed again, and the result is what a cold mining gives
    files["store.go"] = GO.replace("opens the key value database", "opens the embedded key value database")
    after = _hashed(_chunks(files))
    write_table(tmp_path / "b.parquet", after)
    q2, s2, cache2 = mine_table(Table.open(tmp_path / "b.parquet"), cache=load_cache(tmp_path / "cache.parquet"))
    cold, cold_stats, _ = mine_table(Table.open(tmp_path / "b.parquet"))
    assert q2.equals(cold) and s2.as_dict() == cold_stats.as_dict()
    assert s2.parsed == 1
    assert "the embedded key value database" in q2.loc[q2["symbol"] == "OpenStore", "query"].iloc[0]

    # the cache is keyed by chunk id and symbol: a stale entry under another symbol is not used
    stale = cache2.assign(symbol=cache2["symbol"] + "_old", query="a stale query")
    q3, s3, _ = mine_table(Table.open(tmp_path / "b.parquet"), cache=stale)
    assert q3.equals(cold) and s3.parsed == s3.definitions
    # a cache from another recipe version is ignored
    save_cache(tmp_path / "cache.parquet", cache2)
    assert load_cache(tmp_path / "cache.parquet") is not None
    write_table(tmp_path / "cache.parquet", cache2, {"version": "0", "recipe": "docstring"})
    assert load_cache(tmp_path / "cache.parquet") is None and load_cache(tmp_path / "missing.parquet") is None


def test_mining_helpers():
    assert name_tokens("ShoppingCart.total_price") == {"total_price", "total", "price"}
    assert name_tokens("Parser::parseHTTPHeader") >= {"parsehttpheader", "parse", "http", "header"}
    assert strip_name("Sum of all item prices, see `total_price()`.", name_tokens("Cart.total_price")) == \
        "Sum of all item see"
    assert first_sentence("Load it, e.g. from disk. Then more.\n\nArgs:\n  x") == "Load it, e.g. from disk"
    assert first_sentence("Opens the box\nand returns the items.\n@param x") == "Opens the box and returns the items"
    assert mine_queries(pd.DataFrame(columns=["chunk_id", "path", "kind", "symbol", "signature", "start_line",
                                              "end_line", "text", "language"]))[0].empty


# ------------------------------------------------------------------ real runs
TEXT = '''"""String helpers."""


def slugify(title: str) -> str:
    """Turn a title into a lowercase URL fragment joined by hyphens."""
    return "-".join(title.lower().split())


def count_vowels(word: str) -> int:
    """How many of the letters a, e, i, o and u appear in the word."""
    return sum(ch in "aeiou" for ch in word.lower())


def reverse_words(sentence: str) -> str:
    """Put the words of a sentence in the opposite order."""
    return " ".join(reversed(sentence.split()))


def is_palindrome(text: str) -> bool:
    """True when the text reads the same forwards and backwards, ignoring case."""
    t = text.lower()
    return t == t[::-1]


def truncate(text: str, width: int) -> str:
    """Cut the text to at most width characters, ending with an ellipsis when shortened."""
    return text if len(text) <= width else text[: width - 1] + "..."
'''

UNITS = '''"""Unit conversions."""


def celsius_to_fahrenheit(c: float) -> float:
    """Convert a temperature from the metric scale to the one used in the United States."""
    return c * 9 / 5 + 32


def km_to_miles(km: float) -> float:
    """Convert a road distance from kilometres into miles."""
    return km * 0.621371


def seconds_to_clock(s: int) -> str:
    """Format a number of seconds as hours, minutes and seconds separated by colons."""
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
'''

FILES = {"mathutil.py": MATH, "shop.py": SHOP, "textutil.py": TEXT, "units.py": UNITS}  # 16 chunks
GOLDEN = [  # paraphrases: few words shared with the code, so the dense vectors matter
    ("fib", "fibonacci number computed in a loop", "mathutil.py", "fibonacci"),
    ("tri", "length of the long side of a right triangle", "mathutil.py", "hypotenuse"),
    ("cart", "add up what everything in the basket costs", "shop.py", "ShoppingCart.total_price"),
    ("slug", "make a web address piece out of a heading", "textutil.py", "slugify"),
    ("pal", "check whether a string is the same read backwards", "textutil.py", "is_palindrome"),
    ("vowels", "number of vowels in a word", "textutil.py", "count_vowels"),
    ("temp", "degrees celsius to fahrenheit", "units.py", "celsius_to_fahrenheit"),
    ("clock", "show a duration as hh:mm:ss", "units.py", "seconds_to_clock"),
]


def _span(path: str, symbol: str) -> tuple[int, int]:
    [c] = [c for c in chunk_file(path, FILES[path]) if c.symbol == symbol]
    return c.start_line, c.end_line


@pytest.fixture
def demo(env, tmp_path):
    """A 16-chunk repo with a hand-written golden file (8 queries), indexed with MiniLM: the live collection."""
    make_repo(tmp_path / "demo", FILES)
    queries = tmp_path / "golden.jsonl"
    queries.write_text("".join(json.dumps({"id": i, "query": q, "path": p, "start_line": _span(p, sym)[0],
                                           "end_line": _span(p, sym)[1], "kind": "code", "symbol": sym}) + "\n"
                               for i, q, p, sym in GOLDEN))
    env.queries = queries
    env.write_sources({"name": "demo", "kind": "git", "url": str(tmp_path / "demo"), "queries": str(queries)})
    env.index("demo", "minilm-l6")
    assert _alias(env) == "demo__minilm-l6"
    return env


def _alias(env) -> str:
    with env.store() as s:
        return s.resolve_alias("demo")


def _check(env, name: str = "golden_recall"):
    rec = env.instance.event_log_storage.get_asset_check_execution_history(
        AssetCheckKey(AssetKey("qdrant_collection"), name), limit=1)[0]
    return rec.event.dagster_event.event_specific_data


def _materialization(env, asset: str) -> dict:
    m = env.instance.fetch_materializations(AssetKey(asset), limit=1).records[0].asset_materialization
    return {k: v.value for k, v in m.metadata.items()}


def _worse_copy(env, src_model: str, dst_model: str, seed: int | None = 7) -> None:
    """Build `demo × dst_model`'s collection from `src_model`'s points through the store API, no model run:
    the same ids, payloads and BM25 vectors, but the dense vectors permuted among the points (a worse
    candidate). Its metadata keeps src_model, so queries are encoded as its vectors were."""
    from rag_assets.contract import collection_name, embedding_text
    from rag_assets.store.sparse import encode_documents

    src, dst = collection_name("demo", src_model), collection_name("demo", dst_model)
    with env.store() as s:
        rows = list(s.scroll(src, with_vectors=True))
        ids, payloads = [r[0] for r in rows], [r[1] for r in rows]
        vectors = np.stack([r[2] for r in rows])
        if seed is not None:  # None: an exact copy (as good as the source collection)
            vectors = vectors[np.random.default_rng(seed).permutation(len(rows))]
        s.ensure_collection(dst, vectors.shape[1], "cosine", sparse=True)
        s.upsert(dst, ids, vectors, payloads, sparse=encode_documents(
            [embedding_text(p["path"], p["symbol"], p["text"], p.get("signature") or "") for p in payloads]))
        s.set_metadata(dst, s.get_metadata(src))
        s.finalize(dst)


LIVE_FELL = r"mpnet-base (recall@10|mrr@10) \d\.\d{3} < live minilm-l6 \d\.\d{3} - 0\.01 \(-\d\.\d{3}\)"


@pytest.mark.slow
def test_worse_candidate_is_refused_above_the_floor_and_force_moves_it(demo, monkeypatch, capsys):
    from rag_assets.cli import main
    from rag_assets.retrieval.quality import query_sets, recall_gate
    from rag_assets.service.runs import RunFailed, promote

    env = demo
    # The first index: the hand-written file gates; the mined set is measured beside it.
    ev = _check(env)
    meta = {k: v.value for k, v in ev.metadata.items()}
    assert ev.passed and meta["query_set"] == f"hand-written {env.queries}" and meta["n"] == len(GOLDEN)
    assert meta["live"] == "none" and meta["mined_n"] > 0 and meta["mined_query_set"].startswith("mined (docstring) @ ")
    print(f"\nlive minilm-l6: hand-written recall@10 {meta['recall@10']} mrr@10 {meta['mrr@10']}; "
          f"mined (n={meta['mined_n']}) recall@10 {meta['mined_recall@10']} mrr@10 {meta['mined_mrr@10']}")

    _worse_copy(env, "minilm-l6", "mpnet-base")
    with env.store() as s:  # the same measure the guard takes: above the floor, below the live collection
        ok, reason, m = recall_gate(s, "demo", "mpnet-base", query_sets(str(env.queries), None, None),
                                    floor=0.5, tolerance=0.01)
    print(f"worse candidate: {reason}")
    assert ok is False and m["passed_floor"] and not m["passed_live"] and m["recall@10"] >= 0.5
    assert m["live_collection"] == "demo__minilm-l6"

    # A switch to it (or a rollback to it) is refused, with the measure that fell in one line.
    with pytest.raises(RunFailed, match=f"alias 'demo' stays on demo__minilm-l6: demo__mpnet-base fails its checks: "
                                        f"{LIVE_FELL}"):
        promote("demo", "mpnet-base", instance=env.instance)
    assert _alias(env) == "demo__minilm-l6"

    # --force moves it anyway, and the materialization says so.
    monkeypatch.setenv("DAGSTER_HOME", env.instance.root_directory)
    assert main(["alias", "demo", "mpnet-base", "--force"]) == 0
    assert _alias(env) == "demo__mpnet-base"
    m = _materialization(env, "collection_alias")
    assert m["forced"] is True and m["gate_overridden"] is True and m["previous"] == "demo__minilm-l6"
    assert m["golden_live_collection"] == "demo__minilm-l6" and m["golden_passed_floor"] is True

    # Going back to the better collection passes the same comparison, unforced.
    promote("demo", "minilm-l6", instance=env.instance)
    assert _alias(env) == "demo__minilm-l6"
    m = _materialization(env, "collection_alias")
    assert m["forced"] is False and m["gate_overridden"] is False and m["golden_passed_live"] is True

    # --force never overrides the absolute floor.
    monkeypatch.setenv("RAG_RECALL_THRESHOLD", "1.01")
    capsys.readouterr()
    assert main(["alias", "demo", "mpnet-base", "--force"]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]  # the one-line error (Dagster's run log is above it)
    assert last.startswith("rag-assets alias: error: run ")
    assert "demo__mpnet-base fails its checks: mpnet-base recall@10 1.000 < floor 1.01" in last
    assert _alias(env) == "demo__minilm-l6"


@pytest.mark.slow
def test_weekly_reembed_cannot_move_the_alias_to_a_worse_collection(demo):
    """The schedule re-embeds each source with the model its alias points at when it ticks. Its run can target
    a collection that is not live by the time it runs (the run waited in the queue while the alias moved;
    or the store could not be read at the tick and the default model was taken). That candidate is gated
    against the live collection like any other, so a worse re-embed leaves the alias where it is."""
    from rag_assets.defs import schedules
    from rag_assets.defs.resources import RagSettings, VectorStoreResource
    from rag_assets.definitions import defs
    from rag_assets.service.runs import promote

    env = demo
    res = {"settings": RagSettings(), "store": VectorStoreResource()}
    when = dt.datetime(2026, 11, 22, 4, tzinfo=dt.timezone.utc)
    job = defs.resolve_job_def("embed_and_upsert")

    # The usual week: the live model's collection, re-embedded in place (it IS the live one: the floor applies).
    [req] = schedules.weekly_reembed(build_schedule_context(instance=env.instance, scheduled_execution_time=when,
                                                            resources=res))
    assert req.partition_key == "minilm-l6|demo"
    assert req.run_config == {"ops": {"embeddings": {"config": {"force": True}}}}
    assert job.execute_in_process(partition_key=req.partition_key, run_config=req.run_config, instance=env.instance,
                                  raise_on_error=False).success
    assert _alias(env) == "demo__minilm-l6" and _check(env).passed
    assert _materialization(env, "embeddings")["forced"] is True

    # Next week's tick asks for minilm-l6 again; before its run starts, the alias moves to another collection
    # (here one as good as minilm's, built from its points).
    [req] = schedules.weekly_reembed(build_schedule_context(
        instance=env.instance, scheduled_execution_time=when + dt.timedelta(days=7), resources=res))
    assert req.partition_key == "minilm-l6|demo"
    _worse_copy(env, "minilm-l6", "mpnet-base", seed=None)
    promote("demo", "mpnet-base", instance=env.instance)
    assert _alias(env) == "demo__mpnet-base"

    # ...and the encoder of that run is broken: its vectors come out permuted among the texts. A forced
    # re-embed rewrites every point (store/sync.py), so the collection it writes is worse.
    from unittest import mock

    import numpy as np

    from rag_assets.embedding.runners import EmbeddingRunner

    real_embed = EmbeddingRunner.embed

    def shuffled(self, *args, **kwargs):
        vectors, stats = real_embed(self, *args, **kwargs)
        return vectors[np.random.default_rng(0).permutation(len(vectors))], stats

    with mock.patch.object(EmbeddingRunner, "embed", shuffled):
        result = job.execute_in_process(partition_key=req.partition_key, run_config=req.run_config,
                                        instance=env.instance, raise_on_error=False)
    assert not result.success and not result.asset_materializations_for_node("collection_alias")
    assert _alias(env) == "demo__mpnet-base"  # the alias never moved to the worse collection
    ev = _check(env)
    meta = {k: v.value for k, v in ev.metadata.items()}
    print(f"\nweekly re-embed of a collection that is no longer live: {ev.description}")
    assert not ev.passed and ev.description.startswith("minilm-l6 ") and "< live mpnet-base" in ev.description
    assert meta["passed_floor"] and meta["recall@10"] >= 0.5 and meta["live_collection"] == "demo__mpnet-base"


@pytest.mark.slow
def test_source_without_queries_file_is_gated_on_mined_queries_and_fails_empty(env, tmp_path):
    import dagster as dg

    from rag_assets.contract import collection_name
    from rag_assets.definitions import defs

    repo = make_repo(tmp_path / "demo", FILES)
    env.write_sources({"name": "demo", "kind": "git", "url": str(tmp_path / "demo")})  # no queries file
    env.index("demo", "minilm-l6")

    mined = _materialization(env, "golden_queries")
    from rag_assets.tables import Tables

    gq = Tables(env.data_dir).golden_queries("demo")
    assert gq.meta["commit"] == mined["commit"] == repo.head.commit.hexsha and gq.meta["recipe"] == "docstring"
    assert mined["queries"] == len(gq.df) >= 10 and mined["gates"].startswith("yes")
    assert set(gq.df["kind"]) <= {"function", "method", "class"}

    ev = _check(env)
    meta = {k: v.value for k, v in ev.metadata.items()}
    print(f"\nmined queries (n={meta['n']}) on minilm-l6: recall@1 {meta['recall@1']} recall@5 {meta['recall@5']} "
          f"recall@10 {meta['recall@10']} mrr@10 {meta['mrr@10']}")
    assert ev.passed and ev.severity == dg.AssetCheckSeverity.ERROR  # a real check, not a warning
    assert meta["query_set"] == f"mined (docstring) @ {repo.head.commit.hexsha[:12]}" and meta["n"] == len(gq.df)
    assert meta["recall@10"] >= 0.5

    # An emptied collection fails the check (it does not warn, and does not pass).
    with env.store() as s:
        name = collection_name("demo", "minilm-l6")
        s.delete(name, sorted(s.ids(name)))
        assert s.count(name) == 0
    job = defs.resolve_job_def("embed_and_upsert")  # the check's op alone, as the UI's "Execute check" runs it
    op = next(n.name for n in job.graph.node_defs if "golden_recall" in n.name)
    result = job.execute_in_process(partition_key="minilm-l6|demo", instance=env.instance, raise_on_error=False,
                                    op_selection=[op])
    [ev] = result.get_asset_check_evaluations()
    assert not ev.passed and ev.severity == dg.AssetCheckSeverity.ERROR
    assert ev.description == "collection demo__minilm-l6 is empty (0 points)"
