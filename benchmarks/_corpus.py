"""Real third-party corpora for benchmarks, each unpacked into a git repo (cached under CACHE).

sdist_repo: a PyPI sdist (Python). npm_repo: an npm tarball (JavaScript). debian_repo / gocode_repo /
cargo_repo: source shipped by a Debian -dev package (Go, Rust), installed with apt-get when missing."""

from __future__ import annotations

import fnmatch
import glob
import gzip
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
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


def _git_env() -> dict:
    return {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "bench",
            "GIT_COMMITTER_EMAIL": "b@x"}


def _commit_into(staging: Path, repo: Path, message: str) -> Path:
    """git init + commit everything in staging, then move it to repo (so a half-built repo is never cached)."""
    try:
        env = _git_env()
        for cmd in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", message]):
            subprocess.run(["git", *cmd], cwd=staging, check=True, env=env)
        staging.chmod(0o755)  # mkdtemp makes it 0700
        staging.rename(repo)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return repo


def npm_repo(spec: str = "express@4.21.2") -> Path:
    """`npm pack` the package once, commit its source tree (lib/, index.js, *.md) to a git repo; return the repo path.

    Paths in the repo are relative to the package root (e.g. lib/router/index.js)."""
    name = spec.lstrip("@").replace("/", "-").replace("@", "-")
    repo = CACHE / name
    if (repo / ".git").exists():
        return repo
    dl = CACHE / "npm"
    dl.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(["npm", "pack", "--silent", "--pack-destination", str(dl), spec], check=True,
                         capture_output=True, text=True).stdout
    archive = dl / out.strip().splitlines()[-1]
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=CACHE))
    try:
        with tarfile.open(archive) as tar:
            keep = []
            for m in tar.getmembers():
                rel = m.name.split("/", 1)[1] if "/" in m.name else ""  # npm tarballs have one top dir (package/)
                top_md = rel.endswith(".md") and "/" not in rel
                if m.isfile() and (rel.startswith("lib/") or rel == "index.js" or top_md):
                    m.name = rel
                    keep.append(m)
            tar.extractall(staging, members=keep, filter="data")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return _commit_into(staging, repo, f"{spec} npm package")


def _apt_install(package: str) -> None:
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*sudo, "apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    if subprocess.run(install, env=env).returncode != 0:  # package lists may be missing or stale
        subprocess.run([*sudo, "apt-get", "update", "-q"], env=env, check=True)
        subprocess.run(install, env=env, check=True)


def debian_repo(package: str, src_glob: str, patterns: tuple[str, ...] = ("*",), name: str | None = None) -> Path:
    """Copy the source a Debian package installs (apt-get install once if src_glob matches nothing) into a git repo.

    src_glob: the installed source directory (a glob; the last match in sort order wins, e.g. crate-1.2.3).
    patterns: fnmatch patterns on paths relative to that directory (``*`` also crosses ``/``); symlinks are
    copied as the files they point to. ``/usr/share/doc/<package>/*.md.gz`` (e.g. a README) is added, unzipped,
    at the repo root when the source has no file of that name. Returns the repo path (CACHE / (name or package))."""
    repo = CACHE / (name or package)
    if (repo / ".git").exists():
        return repo
    if not glob.glob(src_glob):
        _apt_install(package)
    matches = sorted(glob.glob(src_glob))
    if not matches:
        raise FileNotFoundError(f"{package} installed, but nothing matches {src_glob}")
    src = Path(matches[-1])
    CACHE.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{repo.name}-", dir=CACHE))
    try:
        n = 0
        for f in sorted(src.rglob("*")):
            rel = f.relative_to(src).as_posix()
            if f.is_file() and any(fnmatch.fnmatch(rel, p) for p in patterns):
                (staging / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, staging / rel)  # follows symlinks: real files in the repo
                n += 1
        if not n:
            raise FileNotFoundError(f"no file under {src} matches {patterns}")
        for doc in sorted(Path("/usr/share/doc", package).glob("*.md.gz")):
            target = staging / doc.name[:-3]
            if not target.exists():
                target.write_bytes(gzip.decompress(doc.read_bytes()))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    version = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True).stdout
    return _commit_into(staging, repo, f"{package} {version or '?'} from {src}")


def gocode_repo(import_path: str = "github.com/gorilla/mux", package: str = "golang-github-gorilla-mux-dev") -> Path:
    """A Go module from Debian's /usr/share/gocode (*.go incl. tests, *.md) in CACHE/<owner>-<name>, e.g. gorilla-mux;
    repo paths like mux.go, route.go."""
    return debian_repo(package, f"/usr/share/gocode/src/{import_path}", ("*.go", "*.md"),
                       name="-".join(import_path.split("/")[-2:]))


def cargo_repo(crate: str = "serde_json", package: str = "librust-serde-json-dev") -> Path:
    """A Rust crate from Debian's /usr/share/cargo/registry (src/, tests/ *.rs, *.md, Cargo.toml)."""
    return debian_repo(package, f"/usr/share/cargo/registry/{crate}-[0-9]*", ("*.rs", "*.md", "Cargo.toml"),
                       name=f"{crate}-debian")
