"""Test helper: small real git repositories in temp dirs, via gitpython.

Identity and signing are set in the repo's own config, so commits work on a machine
with no global git identity (and ignore a global `commit.gpgsign`).
"""

from __future__ import annotations

import os
from pathlib import Path

import git

_IDENTITY = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.com",
}


def make_repo(path, files: dict[str, str | bytes], branch: str = "main",
              message: str = "init") -> git.Repo:
    """A new non-bare repo at `path` on `branch`, with one commit holding `files`."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    repo = git.Repo.init(path)
    # Works on any git version, unlike `init --initial-branch`.
    repo.git.symbolic_ref("HEAD", f"refs/heads/{branch}")
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", _IDENTITY["GIT_AUTHOR_NAME"])
        cfg.set_value("user", "email", _IDENTITY["GIT_AUTHOR_EMAIL"])
        cfg.set_value("commit", "gpgsign", "false")
        cfg.set_value("core", "autocrlf", "false")  # bytes in == bytes committed
    commit(repo, files, message)
    return repo


def commit(repo: git.Repo, files: dict[str, str | bytes | None], message: str) -> str:
    """Write `files` (None deletes), stage everything in the work tree, commit; return sha.

    Stages with `add -A`, so files created by hand (e.g. `os.symlink`) are committed too.
    Always creates a commit, even with no change.
    """
    root = Path(repo.working_tree_dir)
    for rel, content in files.items():
        target = root / rel
        if content is None:
            target.unlink()
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    repo.git.add("-A")
    with repo.git.custom_environment(**_IDENTITY):
        repo.git.commit("-q", "--no-verify", "--allow-empty", "-m", message)
    return repo.head.commit.hexsha


def write_symlink(repo: git.Repo, rel: str, target: str) -> None:
    """Create a symlink in the work tree (committed by the next `commit`)."""
    link = Path(repo.working_tree_dir) / rel
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, link)
