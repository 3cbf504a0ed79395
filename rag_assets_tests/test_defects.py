"""Defects of issue 12, each reproduced: credentials in source URLs, symlinks in docs folders, damaged
catalog/table files, `alias` to a model never indexed, unknown sources and models on `search`."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest

from rag_assets.cli import main
from rag_assets.sources.git import redact_url
from rag_assets.tables import Table, TableError, Tables
from rag_assets_tests.docsite import fast_fetcher
from rag_assets_tests.gitrepo import make_repo

TOKEN = "ghp_s3cr3tT0ken"


# ------------------------------------------------------------------ credentials in URLs
def test_redact_url_hides_passwords_and_bare_tokens():
    assert redact_url(f"https://me:{TOKEN}@git.example.com/a/b.git") == "https://me:***@git.example.com/a/b.git"
    assert redact_url(f"https://{TOKEN}@github.com/a/b.git") == "https://***@github.com/a/b.git"
    assert redact_url("ssh://git@host/a/b.git") == "ssh://git@host/a/b.git"  # ssh's user is no secret
    assert redact_url("git@github.com:a/b.git") == "git@github.com:a/b.git"
    assert redact_url("/srv/repos/a") == "/srv/repos/a"
    assert redact_url(f"fatal: unable to access 'https://u:{TOKEN}@h/x/': 403") == \
        "fatal: unable to access 'https://u:***@h/x/': 403"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_git_repo(tmp_path):
    """A real repository served over HTTP (git's dumb protocol); the server ignores the credentials."""
    make_repo(tmp_path / "work", {"mathutil.py": "def add(a, b):\n    return a + b\n"})
    served = tmp_path / "served"
    served.mkdir()
    subprocess.run(["git", "clone", "-q", "--bare", str(tmp_path / "work"), str(served / "demo.git")], check=True)
    subprocess.run(["git", "--git-dir", str(served / "demo.git"), "update-server-info"], check=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://user:{TOKEN}@127.0.0.1:{server.server_port}/demo.git"
    finally:
        server.shutdown()


@pytest.mark.slow  # runs a Dagster job
def test_credentials_never_reach_metadata_status_or_the_mirror(env, http_git_repo, monkeypatch, capsys):
    from rag_assets.defs.jobs import SNAPSHOT_JOB
    from rag_assets.mcp_server import list_sources
    from rag_assets.service.runs import _execute, register_sources

    env.write_sources({"name": "demo", "kind": "git", "url": http_git_repo, "branch": "main"})
    register_sources(env.instance)
    result = _execute(SNAPSHOT_JOB, "demo", env.instance, False)
    [mat] = result.asset_materializations_for_node("repo_snapshot")
    assert mat.metadata["url"].value == redact_url(http_git_repo) and "user:***@127.0.0.1" in mat.metadata["url"].value
    run_events = " ".join(str(e) for e in env.instance.all_logs(result.run_id))
    assert TOKEN not in run_events

    mirror = env.data_dir / "mirrors" / "demo.git"
    config = subprocess.run(["git", "--git-dir", str(mirror), "config", "--list"], capture_output=True,
                            text=True, check=True).stdout
    remotes = subprocess.run(["git", "--git-dir", str(mirror), "remote", "-v"], capture_output=True,
                             text=True, check=True).stdout
    assert TOKEN not in config and TOKEN not in remotes and "user:***@" in remotes
    assert not any(TOKEN.encode() in p.read_bytes() for p in mirror.rglob("*") if p.is_file() and p.stat().st_size < 1e6)

    assert main(["sources", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["url"] == redact_url(http_git_repo) and row["chunks"] == 1
    assert TOKEN not in json.dumps([s.model_dump() for s in list_sources()])

    # A failing remote: the error (status, MCP, run failure) names it without the token.
    env.write_sources({"name": "demo", "kind": "git", "url": http_git_repo.replace("demo.git", "gone.git")})
    assert main(["sources", "--json"]) == 0
    out = capsys.readouterr().out
    assert TOKEN not in out
    [row] = json.loads(out)
    assert row["error"].startswith("source 'demo': cannot reach repository 'http://user:***@127.0.0.1:")


# ------------------------------------------------------------------ symlinks in docs folders
def test_docs_folder_never_follows_symlinks(tmp_path):
    from rag_assets.sources.docs import discover, download_library

    outside = tmp_path / "outside"
    (outside / "private").mkdir(parents=True)
    (outside / "secret.md").write_text("# Secret\nTOP SECRET password\n")
    (outside / "private" / "keys.md").write_text("# Keys\nTOP SECRET key\n")
    docs = tmp_path / "docs"
    (docs / "guide").mkdir(parents=True)
    (docs / "index.md").write_text("# Index\nHello.\n")
    (docs / "guide" / "start.md").write_text("# Start\nRead me.\n")
    os.symlink(outside / "secret.md", docs / "secret.md")  # a file link
    os.symlink("/etc/passwd", docs / "passwd.txt")  # the reported case
    os.symlink(outside / "private", docs / "private")  # a folder link
    with fast_fetcher() as f:
        disc = discover("lib", str(docs), f)
        assert [p.page_id for p in disc.pages] == ["guide/start.md", "index.md"]
        df, stats = download_library("lib", str(docs), None, f)
    assert sorted(df["page_id"]) == ["guide/start.md", "index.md"]
    assert not df["text"].str.contains("TOP SECRET|root:", regex=True).any()

    # A page swapped for a link after discovery is refused when read, not followed.
    (docs / "index.md").unlink()
    os.symlink(outside / "secret.md", docs / "index.md")
    from rag_assets.sources.docs.discover import read_no_follow  # what the folder reader opens pages with

    with pytest.raises(OSError):
        read_no_follow(docs / "index.md")


# ------------------------------------------------------------------ damaged files
def _two_git_sources(env, tmp_path):
    for name in ("a", "b"):
        make_repo(tmp_path / name, {f"{name}.py": "x = 1\n"})
    env.write_sources(*({"name": n, "kind": "git", "url": str(tmp_path / n)} for n in ("a", "b")))


def test_damaged_alias_table_is_one_line_naming_the_file(env, tmp_path, capsys):
    from rag_assets.store import open_store

    _two_git_sources(env, tmp_path)
    with open_store(env.data_dir) as s:
        s.ensure_collection("a__minilm-l6", dim=4)
        s.upsert("a__minilm-l6", ["00000000-0000-0000-0000-000000000001"], np.ones((1, 4), np.float32),
                 [{"path": "a.py", "text": "x"}])
        s.set_alias("a", "a__minilm-l6")
    aliases = env.data_dir / "qdrant_edge" / "aliases.json"
    aliases.write_text('{"a": "a__minilm-l6",')  # cut short

    assert main(["search", "x", "--source", "a"]) != 0
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(aliases) in err and "not valid JSON" in err
    assert "rag-assets store restore" in err and "rag-assets alias SOURCE MODEL" in err

    assert main(["sources", "--offline", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert all(r["state"].startswith("damaged:") and str(aliases) in r["state"] for r in rows)


def test_damaged_table_names_the_file_and_spares_other_sources(env, tmp_path, capsys):
    _two_git_sources(env, tmp_path)
    tables = Tables(env.data_dir)
    for name in ("a", "b"):
        tables.write("chunks", name, Table(pd.DataFrame({"chunk_id": ["c1"], "text": ["x = 1"]}), {"commit": "f" * 40}))
    damaged = tables.path("chunks", "a")
    damaged.write_bytes(damaged.read_bytes()[:40])  # truncated, as by a full disk

    with pytest.raises(TableError) as e:
        tables.chunks("a")
    msg = str(e.value)
    assert "\n" not in msg and str(damaged) in msg and "rag-assets index a" in msg
    vectors = tables.path("embeddings", "minilm-l6|a")
    vectors.parent.mkdir(parents=True)
    vectors.write_bytes(b"not parquet")
    with pytest.raises(TableError, match="rebuild it: rag-assets index a --model minilm-l6"):
        tables.embeddings("a", "minilm-l6")

    assert main(["sources", "--offline", "--json"]) == 0
    rows = {r["source"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["a"]["state"].startswith("damaged: damaged table") and str(damaged) in rows["a"]["state"]
    assert rows["b"]["chunks"] == 1 and rows["b"]["state"] == "not indexed"


# ------------------------------------------------------------------ alias and search messages
@pytest.mark.slow  # runs a Dagster job
def test_alias_to_a_model_never_indexed_says_how_to_build_it(env, tmp_path, monkeypatch, capsys):
    from rag_assets.service.runs import register_sources

    make_repo(tmp_path / "demo", {"a.py": "x = 1\n"})
    env.write_sources({"name": "demo", "kind": "git", "url": str(tmp_path / "demo")})
    register_sources(env.instance)
    monkeypatch.setenv("DAGSTER_HOME", env.instance.root_directory)
    assert main(["alias", "demo", "mpnet-base"]) != 0
    err = capsys.readouterr().err.strip().splitlines()[-1]  # above it: Dagster's own run log
    assert err.startswith("rag-assets alias: error: run ") and "fails its checks" not in err
    assert "source 'demo' is not indexed with model 'mpnet-base'" in err
    assert "rag-assets index demo --model mpnet-base" in err


def test_search_names_unknown_sources_and_models(env, tmp_path, capsys):
    _two_git_sources(env, tmp_path)
    assert main(["search", "x", "--source", "nope"]) != 0
    err = capsys.readouterr().err
    assert "unknown source 'nope' (known sources: a, b)" in err and "rag-assets index" not in err
    assert main(["search", "x", "--source", "a", "--model", "nope"]) != 0
    assert "unknown embedding model 'nope' (known: minilm-l6, mpnet-base" in capsys.readouterr().err
    assert main(["search", "x", "--source", "a"]) != 0
    assert "source 'a' is not indexed with its live model (run: rag-assets index a)" in capsys.readouterr().err
