"""Chunk sanity, measured: the numbers behind the chunks_are_sane check.

Returns (passed, metadata); None passes on empty input. Plain functions: checks and the alias guard call them.
Exact on every row, streamed: `chunk_quality_batches` reads the table a row group at a time.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

COLUMNS = ["text", "n_tokens", "start_line", "end_line", "blob_sha"]


def chunk_quality(df: pd.DataFrame, max_tokens: int, line_counts: dict[str, int]) -> tuple[bool, dict]:
    """No empty text, all within the token budget, spans 1-based and inside their document."""
    return chunk_quality_batches([df], max_tokens, line_counts)


def chunk_quality_batches(batches: Iterable[pd.DataFrame], max_tokens: int, line_counts: dict[str, int]
                          ) -> tuple[bool, dict]:
    """chunk_quality over a table given as batches of rows (the COLUMNS at least): the same figures."""
    n = empty = over = bad = beyond = 0
    max_seen = 0
    for df in batches:
        if not len(df):
            continue
        n += len(df)
        empty += int((df["text"].str.strip() == "").sum())
        over += int((df["n_tokens"] > max_tokens).sum())
        bad += int(((df["start_line"] < 1) | (df["end_line"] < df["start_line"])).sum())
        n_lines = df["blob_sha"].map(line_counts)
        beyond += int((n_lines.isna() | (df["end_line"] > n_lines)).sum())
        max_seen = max(max_seen, int(df["n_tokens"].max()))
    meta = {"chunks": n, "empty": empty, "over_budget": over, "bad_spans": bad,
            "spans_beyond_document": beyond, "max_tokens": max_seen}
    return n > 0 and empty == over == bad == beyond == 0, meta
