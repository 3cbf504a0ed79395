"""Source kinds behind one reader interface: every command works for every kind.

Two bugs this layout fixed by construction: `index --dry-run` on a docs source failed with "kind 'docs'
is not a git source", and `sources` reported an indexed docs source as "head unknown (remote
unreachable)" because it asked git for the head of every source.
"""

from __future__ import annotations

import json

import dagster as dg
import pandas as pd
import pytest

from rag_assets.cli import main
from rag_assets.defs import assets
from rag_assets.defs.resources import RagSettings
from rag_assets.sources.readers import READERS, reader_for
from rag_assets.tables import Table
from rag_assets_tests.gitrepo import make_repo
from rag_assets_tests.test_pipeline import MATH

GUIDE = """# Install

Run the installer and point it at your data folder.

## Proxy settings

Set the proxy list; requests fail over to the next proxy after three retries with backoff.
"""


@pytest.fixture
def docs_source(env, tmp_path):
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "guide.md").write_text(GUIDE)
    env.write_sources({"name": "manual", "kind": "docs", "url": str(folder)})
    return folder


def test_every_kind_in_sources_yaml_has_a_reader():
    assert set(READERS) == {"git", "docs"}
    assert {r.table for r in READERS.values()} == {"repo_snapshot", "doc_pages"}


def test_dry_run_of_a_docs_source(env, docs_source, capsys, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", env.instance.root_directory)
    assert main(["index", "manual", "--dry-run"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "source 'manual' (docs)" in out and "files: 1 to index" in out
    assert "chunks: 2 " in out and "to embed with minilm-l6: 2 chunks (0 already embedded)" in out
    assert "markdown" in out  # per-language counts


@pytest.mark.slow
def test_sources_reports_an_indexed_docs_source_as_indexed(env, docs_source, capsys, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", env.instance.root_directory)
    env.index("manual")
    assert main(["sources", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["kind"] == "docs" and row["head_commit"] is None and "error" not in row
    assert row["state"] == "indexed" and row["points"] == row["chunks"] == 2


def test_git_source_assets_run_directly_with_build_asset_context(env, tmp_path):
    """The fetch and chunk assets as plain functions, the way Dagster's own examples test assets."""
    make_repo(tmp_path / "demo", {"mathutil.py": MATH})
    env.write_sources({"name": "demo", "kind": "git", "url": str(tmp_path / "demo")})
    settings = RagSettings(data_dir=str(env.data_dir), sources_file=str(env.sources_file))
    context = dg.build_asset_context(partition_key="demo")

    snapshot = assets.repo_snapshot(context, settings=settings)
    assert snapshot.metadata["files"].value == 1 and len(snapshot.value.df) == 1
    skipped = assets.doc_pages(dg.build_asset_context(partition_key="demo"), settings=settings, docs_fetcher=None)
    assert skipped.value.meta == {"kind": "git", "not_applicable": True} and skipped.value.df.empty

    table = assets.chunks(context, settings=settings, repo_snapshot=snapshot.value,
                          doc_pages=Table(pd.DataFrame(), {}))
    symbols = set(table.df["symbol"])
    assert {"fibonacci", "hypotenuse"} <= symbols
    fib = table.df[table.df["symbol"] == "fibonacci"].iloc[0]
    assert (fib["path"], fib["kind"], fib["start_line"], fib["end_line"]) == ("mathutil.py", "function", 11, 16)
    assert fib["signature"].startswith("def fibonacci(")


def test_a_reader_is_chosen_by_kind_only(env, docs_source):
    from rag_assets.sources.config import get_source

    source = get_source("manual", str(env.sources_file))
    assert reader_for(source).table == "doc_pages" and reader_for(source).head(source) is None
