"""Chunk sanity, measured: the numbers behind the chunks_are_sane check.

Returns (passed, metadata); None passes on empty input. Plain functions: checks and the alias guard call them.
"""

from __future__ import annotations

import pandas as pd


def chunk_quality(df: pd.DataFrame, max_tokens: int, line_counts: dict[str, int]) -> tuple[bool, dict]:
    """No empty text, all within the token budget, spans 1-based and inside their document."""
    empty = int((df["text"].str.strip() == "").sum())
    over = int((df["n_tokens"] > max_tokens).sum())
    bad = int(((df["start_line"] < 1) | (df["end_line"] < df["start_line"])).sum())
    n_lines = df["blob_sha"].map(line_counts)
    beyond = int((n_lines.isna() | (df["end_line"] > n_lines)).sum()) if len(df) else 0
    meta = {"chunks": len(df), "empty": empty, "over_budget": over, "bad_spans": bad,
            "spans_beyond_document": beyond, "max_tokens": int(df["n_tokens"].max()) if len(df) else 0}
    return len(df) > 0 and empty == over == bad == beyond == 0, meta
