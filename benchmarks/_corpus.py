"""A real third-party corpus for benchmarks: a PyPI sdist unpacked into a git repo (cached)."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

CACHE = Path(os.environ.get("RAG_BENCH_CACHE", Path.home() / ".cache" / "rag-assets" / "bench"))


def sdist_repo(spec: str = "click==8.1.7") -> Path:
    """Download the sdist once, unpack it, commit it to a git repo; return the repo path."""
    name = spec.replace("==", "-")
    repo = CACHE / name
    if (repo / ".git").exists():
        return repo
    dl = CACHE / "sdists"
    dl.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                    "-d", str(dl), spec], check=True)
    archive = next(p for p in dl.iterdir() if p.name.lower().startswith(spec.split("==")[0].lower()) and p.suffix == ".gz")
    with tarfile.open(archive) as tar:
        top = tar.getnames()[0].split("/")[0]
        tar.extractall(CACHE, filter="data")
    (CACHE / top).rename(repo)
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "bench",
           "GIT_COMMITTER_EMAIL": "b@x"}
    for cmd in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", f"{spec} sdist"]):
        subprocess.run(["git", *cmd], cwd=repo, check=True, env=env)
    return repo


def commit_all(repo: Path, message: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "bench",
           "GIT_COMMITTER_EMAIL": "b@x"}
    subprocess.run(["git", "commit", "-qam", message], cwd=repo, check=True, env=env)
