"""Snapshot a git source: a bare mirror per source, and the files of one commit.

Only what is committed on the branch is seen (uncommitted changes of a local checkout are
not), so a snapshot is fully identified by its commit sha. Everything goes through the
`git` CLI with prompts disabled and timeouts, so a bad URL fails fast instead of hanging.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from rag_assets.sources.filters import skip_reason_for_path


class SnapshotError(RuntimeError):
    """One-line message, always starting with "source '<name>': "."""


@dataclass(frozen=True)
class FileEntry:
    path: str  # repo-relative, forward slashes
    blob_sha: str  # git blob id: same sha => same content
    size: int
    skip: str | None  # None = index it; else one of filters.SKIP_REASONS


_SHA_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # sha1 or sha256 repositories
# Inherited variables that would point git at some other repository (e.g. inside a hook).
_REPO_ENV_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
                  "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_COMMON_DIR")


# --- public API --------------------------------------------------------------------------


def mirror_path(mirror_root: Path, source_name: str) -> Path:
    """`<root>/<name>.git`; names that are not filesystem-safe get a hash to stay unique."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", source_name).strip("._") or "source"
    if safe != source_name:
        safe += "-" + hashlib.sha1(source_name.encode()).hexdigest()[:8]
    return Path(mirror_root) / f"{safe}.git"


def sync_mirror(source_name: str, url: str, branch: str, mirror_root: Path, *,
                timeout_s: float = 120) -> str:
    """Bring the bare mirror of `url`'s `branch` up to date; return the branch's commit sha."""
    git = _Git(source_name, timeout_s)
    url = _normalize_url(source_name, url)
    branch = _strip_heads(branch)
    # ls-remote first: clean errors for unknown branch / empty repo, before touching the mirror.
    _branch_head(git, url, branch)
    ref = f"refs/heads/{branch}"
    mirror = mirror_path(Path(mirror_root), source_name)
    if _is_bare_repo(mirror):
        # Fetching into the live mirror is safe: objects are only added and the ref is
        # updated atomically at the end, so a failed fetch leaves the old state usable.
        git.run(["--git-dir", str(mirror), *_net_config(timeout_s), "fetch", "--no-tags",
                 "--no-write-fetch-head", "--", url, f"+{ref}:{ref}"],
                what=f"cannot fetch branch '{branch}' from {_redact(url)}")
    else:
        _fresh_clone(git, url, branch, mirror)
    _scrub_remote(git, mirror, url)
    out = git.run(["--git-dir", str(mirror), "rev-parse", "--verify", f"{ref}^{{commit}}"],
                  what=f"mirror {mirror} has no branch '{branch}'")
    return out.decode().strip()


def _scrub_remote(git: _Git, mirror: Path, url: str) -> None:
    """`git clone` stores its URL as remote.origin.url, credentials included; we always fetch with the URL
    on the command line, so the mirror keeps only the redacted URL (also fixing mirrors made before)."""
    git.run(["--git-dir", str(mirror), "config", "remote.origin.url", redact_url(url)],
            what=f"cannot update the remote URL in {mirror}")


def remote_head(url: str, branch: str, *, timeout_s: float = 30,
                source_name: str | None = None) -> str:
    """Commit sha of `branch` at `url` via `git ls-remote` (cheap change detection)."""
    name = source_name or url
    return _branch_head(_Git(name, timeout_s), _normalize_url(name, url), _strip_heads(branch))


def list_files(mirror: Path, commit: str, include: Sequence[str] = (),
               exclude: Sequence[str] = (), *, max_bytes: int = 1_000_000,
               source_name: str | None = None) -> list[FileEntry]:
    """Every entry of the commit's tree, recursively, with its skip reason (or None).

    One `git ls-tree` call; content-based skips (binary, not_utf8, empty) are left for the
    reader of the blobs (see filters.skip_reason_for_content).
    """
    mirror = Path(mirror)
    git = _Git(source_name or _name_of(mirror), timeout_s=300)
    if commit.startswith("-"):
        raise git.error(f"invalid commit {commit!r}")
    out = git.run(["--git-dir", str(mirror), "ls-tree", "-r", "-l", "-z", "--full-tree",
                   commit], what=f"cannot list tree of commit {commit} in {mirror}")
    entries = []
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        mode, _type, sha, size = meta.decode().split()
        try:
            path, path_ok = raw_path.decode("utf-8"), True
        except UnicodeDecodeError:  # keep it listed, but a non-UTF-8 name is not indexed
            path, path_ok = raw_path.decode("utf-8", "replace"), False
        nbytes = int(size) if size.isdigit() else 0  # "-" for submodules
        skip = skip_reason_for_path(path, mode, nbytes, include, exclude, max_bytes)
        if skip is None and not path_ok:
            skip = "not_utf8"
        entries.append(FileEntry(path, sha, nbytes, skip))
    return entries


def read_blobs(mirror: Path, shas: Iterable[str], *,
               source_name: str | None = None) -> Iterator[tuple[str, bytes]]:
    """Yield (sha, content) for each sha, in order, through ONE `git cat-file --batch`.

    Request/response per blob: `--batch` flushes after each object, so there is no pipe
    deadlock and only one blob is held in memory at a time.
    """
    mirror = Path(mirror)
    git = _Git(source_name or _name_of(mirror), timeout_s=30)
    if not _is_bare_repo(mirror):
        raise git.error(f"mirror {mirror} is not a git repository")
    try:
        proc = subprocess.Popen(["git", "--git-dir", str(mirror), "cat-file", "--batch"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env=_git_env(timeout_s=30))
    except FileNotFoundError:
        raise git.error("git executable not found on PATH") from None
    assert proc.stdin and proc.stdout
    try:
        for sha in shas:
            if not _SHA_RE.fullmatch(sha):  # anything else would be a rev expression to git
                raise git.error(f"invalid blob sha {sha!r}")
            proc.stdin.write(sha.encode() + b"\n")
            proc.stdin.flush()
            header = proc.stdout.readline().split()
            if len(header) != 3 or header[1] != b"blob":
                what = b" ".join(header[1:]).decode(errors="replace") or "no answer from git"
                raise git.error(f"cannot read blob {sha} from {mirror}: {what}")
            data = proc.stdout.read(int(header[2]))
            proc.stdout.read(1)  # the newline after each object
            yield sha, data
    finally:
        # Runs also when the consumer stops early (generator closed): don't leak git.
        proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


# --- internals ---------------------------------------------------------------------------


class _Git:
    """Runs git for one source; every failure becomes a one-line SnapshotError."""

    def __init__(self, source_name: str, timeout_s: float):
        self.source_name = source_name
        self.timeout_s = timeout_s

    def error(self, msg: str) -> SnapshotError:
        return SnapshotError(f"source '{self.source_name}': {' '.join(msg.split())}")

    def run(self, args: list[str], *, what: str) -> bytes:
        try:
            # Own session so a timeout can kill git *and* its helpers (git-remote-https,
            # ssh) that would otherwise keep the pipes open and block us anyway.
            proc = subprocess.Popen(["git", *args], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env=_git_env(self.timeout_s), start_new_session=True)
        except FileNotFoundError:
            raise self.error("git executable not found on PATH") from None
        try:
            out, err = proc.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):  # it may have just exited
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise self.error(f"{what}: timed out after {self.timeout_s:g}s") from None
        if proc.returncode != 0:
            raise self.error(f"{what}: {_summarize(err)}")
        return out


def _git_env(timeout_s: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _REPO_ENV_VARS}
    env.update(
        GIT_TERMINAL_PROMPT="0",  # never ask for a username/password on a TTY
        GIT_ASKPASS="echo",  # ... nor through a GUI helper: empty answers, auth fails
        SSH_ASKPASS="echo",
        LC_ALL="C",  # English, parseable error messages
    )
    # BatchMode: ssh fails instead of prompting for passwords / host-key confirmation.
    # Keep a user-provided GIT_SSH_COMMAND (custom keys): it is their responsibility.
    env.setdefault("GIT_SSH_COMMAND",
                   f"ssh -o BatchMode=yes -o ConnectTimeout={max(1, int(min(timeout_s, 30)))}")
    return env


def _net_config(timeout_s: float) -> list[str]:
    # Abort an HTTP transfer that stalls below 1 KB/s, rather than waiting for the timeout.
    stall = max(5, int(min(timeout_s, 60)))
    return ["-c", "http.lowSpeedLimit=1000", "-c", f"http.lowSpeedTime={stall}"]


def _branch_head(git: _Git, url: str, branch: str) -> str:
    """sha of refs/heads/<branch> at url; errors name the branch and what is available."""
    where = _redact(url)
    out = git.run([*_net_config(git.timeout_s), "ls-remote", "--heads", "--", url],
                  what=_unreachable_message(url))
    heads = {}
    for line in out.decode(errors="replace").splitlines():
        sha, _, ref = line.partition("\t")
        heads[ref.removeprefix("refs/heads/")] = sha
    if branch in heads:
        return heads[branch]
    if not heads:
        raise git.error(f"repository {where} has no commits (empty repository), "
                        f"so branch '{branch}' does not exist")
    names = sorted(heads)
    listed = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
    raise git.error(f"branch '{branch}' not found in {where}; available branches: {listed}")


def _fresh_clone(git: _Git, url: str, branch: str, mirror: Path) -> None:
    """Clone into a temp dir next to the mirror, then rename into place.

    Readers never see a half-written mirror, and a concurrent sync of the same source
    simply loses the rename race and uses the winner's mirror.
    """
    mirror.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{mirror.name}.tmp-", dir=mirror.parent))
    try:
        # A local source is cloned with hardlinks (fast, no pack); objects are immutable.
        git.run([*_net_config(git.timeout_s), "clone", "--bare", "--single-branch",
                 "--no-tags", "--branch", branch, "--", url, str(tmp)],
                what=f"cannot clone branch '{branch}' from {_redact(url)}")
        if mirror.exists() and not _is_bare_repo(mirror):
            # Leftover that is not a repository (nothing usable in it): replace it.
            shutil.rmtree(mirror, ignore_errors=True)
        try:
            tmp.rename(mirror)
        except OSError:
            if not _is_bare_repo(mirror):  # not a lost race: a real failure
                raise git.error(f"cannot move new mirror into place at {mirror}") from None
            # Lost the race to another sync: theirs is as fresh; fetch to be sure.
            git.run(["--git-dir", str(mirror), *_net_config(git.timeout_s), "fetch",
                     "--no-tags", "--no-write-fetch-head", "--", url,
                     f"+refs/heads/{branch}:refs/heads/{branch}"],
                    what=f"cannot fetch branch '{branch}' from {_redact(url)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _is_bare_repo(path: Path) -> bool:
    # Checked by files, not `git -C`: that would walk up and find an enclosing repository.
    return (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir()


def _local_path(url: str) -> Path | None:
    """The filesystem path a git URL refers to, or None for a network URL."""
    if url.startswith("file://"):
        return Path(unquote(urlsplit(url).path))
    if "://" in url:
        return None
    # git's rule: `host:path` (a colon before any slash) is scp-like ssh, not a path.
    colon, slash = url.find(":"), url.find("/")
    if colon > 0 and (slash < 0 or colon < slash):
        return None
    return Path(url)


def _normalize_url(source_name: str, url: str) -> str:
    """Check a local source exists and make its path absolute (fetch runs from the mirror)."""
    path = _local_path(url)
    if path is None:
        return url
    if not path.exists():
        via = f" (url {url!r})" if str(path) != url else ""
        raise SnapshotError(f"source '{source_name}': local path '{path}' does not exist{via}")
    return url if url.startswith("file://") else str(path.resolve())


def _unreachable_message(url: str) -> str:
    path = _local_path(url)
    if path is not None:
        return f"local path '{path}' is not a git repository (or cannot be read)"
    return f"cannot reach repository {_redact(url)}"


def _strip_heads(branch: str) -> str:
    return branch.removeprefix("refs/heads/")


def _redact(url: str) -> str:
    """Hide a password/token embedded in a URL before it lands in a message (quoted)."""
    return "'" + redact_url(url) + "'"


# scheme://userinfo@ : the userinfo runs to the last "@" before the path.
_USERINFO_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^/\s'\"]*)@")


def _redact_match(m: re.Match) -> str:
    scheme, info = m.group(1), m.group(2)
    user, sep, _ = info.partition(":")
    if sep:  # user:password -> user:***
        return f"{scheme}{user}:***@"
    if scheme.lower().startswith(("http", "ftp")):  # a bare token as the user name (https://TOKEN@host)
        return f"{scheme}***@"
    return m.group(0)  # ssh://git@host: the user is not a secret


def redact_url(url: str) -> str:
    """`url` with any password or token replaced by ***: `https://u:tok@h/r.git` -> `https://u:***@h/r.git`,
    `https://tok@h/r.git` -> `https://***@h/r.git`. What run metadata, status and the mirror's config show."""
    return _USERINFO_RE.sub(_redact_match, url) if isinstance(url, str) else url


def _summarize(stderr: bytes) -> str:
    """The useful part of git's stderr, on one line."""
    lines = [ln.strip() for ln in stderr.decode(errors="replace").splitlines() if ln.strip()]
    key = [ln for ln in lines if ln.startswith(("fatal:", "error:", "ssh:", "remote:"))]
    key = key or lines[-1:]
    text = " | ".join(redact_url(ln) for ln in key)
    return (text[:400] + "...") if len(text) > 400 else (text or "git failed")


def _name_of(mirror: Path) -> str:
    return mirror.name.removesuffix(".git")
