import subprocess
import threading
import time
from pathlib import Path

import git
import pytest

from rag_assets.sources import git as git_snapshot
from rag_assets.sources.filters import skip_reason_for_content
from rag_assets.sources.git import (
    FileEntry,
    SnapshotError,
    list_files,
    mirror_path,
    read_blobs,
    remote_head,
    sync_mirror,
)
from rag_assets_tests.gitrepo import commit, make_repo, write_symlink

NAME = "demo"


@pytest.fixture
def src(tmp_path):
    return make_repo(tmp_path / "src", {"README.md": "# demo\n", "pkg/a.py": "x = 1\n"})


@pytest.fixture
def mirrors(tmp_path):
    return tmp_path / "mirrors"


def error_of(fn, *args, **kwargs) -> str:
    with pytest.raises(SnapshotError) as exc:
        fn(*args, **kwargs)
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def paths(mirror, sha):
    return {e.path for e in list_files(mirror, sha)}


# --- mirror_path ---------------------------------------------------------------------------


def test_mirror_path(tmp_path):
    assert mirror_path(tmp_path, "demo") == tmp_path / "demo.git"
    odd = mirror_path(tmp_path, "../a b/c")
    assert odd.parent == tmp_path and odd.name.endswith(".git") and "/" not in odd.name
    assert mirror_path(tmp_path, "a/b") != mirror_path(tmp_path, "a_b")  # no collision


# --- sync_mirror ---------------------------------------------------------------------------


def test_clone_local_path(src, mirrors):
    sha = sync_mirror(NAME, src.working_tree_dir, "main", mirrors)
    assert sha == src.head.commit.hexsha
    mirror = mirror_path(mirrors, NAME)
    assert git.Repo(mirror).bare
    assert paths(mirror, sha) == {"README.md", "pkg/a.py"}
    assert not [p for p in mirrors.iterdir() if p != mirror]  # no temp dir left behind


def test_resync_fetches_new_commit(src, mirrors):
    first = sync_mirror(NAME, src.working_tree_dir, "main", mirrors)
    second = commit(src, {"pkg/b.py": "y = 2\n", "README.md": None}, "more")
    assert sync_mirror(NAME, src.working_tree_dir, "main", mirrors) == second != first
    mirror = mirror_path(mirrors, NAME)
    assert paths(mirror, second) == {"pkg/a.py", "pkg/b.py"}
    assert paths(mirror, first) == {"README.md", "pkg/a.py"}  # old snapshot still readable


def test_resync_after_history_rewrite(src, mirrors):
    sync_mirror(NAME, src.working_tree_dir, "main", mirrors)
    src.git.commit("--amend", "-q", "-m", "rewritten")  # like a force-push
    assert sync_mirror(NAME, src.working_tree_dir, "main", mirrors) == src.head.commit.hexsha


def test_uncommitted_changes_are_not_seen(src, mirrors):
    Path(src.working_tree_dir, "dirty.py").write_text("pass\n")
    sha = sync_mirror(NAME, src.working_tree_dir, "main", mirrors)
    assert "dirty.py" not in paths(mirror_path(mirrors, NAME), sha)


def test_relative_path_url(src, mirrors, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert sync_mirror(NAME, "src", "main", mirrors) == src.head.commit.hexsha
    new = commit(src, {"c.txt": "c\n"}, "c")
    assert sync_mirror(NAME, "./src", "main", mirrors) == new  # fetch runs elsewhere


def test_file_url(src, mirrors):
    url = Path(src.working_tree_dir).as_uri()
    assert url.startswith("file://")
    assert sync_mirror(NAME, url, "main", mirrors) == src.head.commit.hexsha
    new = commit(src, {"c.txt": "c\n"}, "c")
    assert sync_mirror(NAME, url, "main", mirrors) == new


def test_clone_from_bare_repo_and_other_branch(src, mirrors, tmp_path):
    src.git.checkout("-q", "-b", "dev")
    dev = commit(src, {"dev.txt": "d\n"}, "dev")
    bare = git.Repo.clone_from(src.working_tree_dir, tmp_path / "bare.git", bare=True)
    assert sync_mirror(NAME, bare.git_dir, "dev", mirrors) == dev


def test_nonexistent_local_path(mirrors, tmp_path):
    missing = tmp_path / "nope"
    msg = error_of(sync_mirror, NAME, str(missing), "main", mirrors)
    assert msg.startswith(f"source '{NAME}': ") and str(missing) in msg
    assert "does not exist" in msg
    msg = error_of(sync_mirror, NAME, missing.as_uri(), "main", mirrors)
    assert msg.startswith(f"source '{NAME}': ") and "does not exist" in msg
    assert not mirrors.exists() or not any(mirrors.iterdir())


def test_plain_directory_is_not_a_repo(mirrors, tmp_path):
    plain = tmp_path / "plain"
    (plain / "sub").mkdir(parents=True)
    (plain / "a.py").write_text("x = 1\n")
    msg = error_of(sync_mirror, NAME, str(plain), "main", mirrors)
    assert msg.startswith(f"source '{NAME}': ") and str(plain) in msg
    assert "not a git repository" in msg


def test_subdirectory_of_a_repo_is_not_a_repo(src, mirrors):
    # git must not walk up to the enclosing repository.
    sub = Path(src.working_tree_dir, "pkg")
    msg = error_of(sync_mirror, NAME, str(sub), "main", mirrors)
    assert "not a git repository" in msg


def test_unreachable_url_fails_fast(mirrors):
    url = "http://127.0.0.1:9/nope.git"
    start = time.monotonic()
    msg = error_of(sync_mirror, NAME, url, "main", mirrors, timeout_s=30)
    assert time.monotonic() - start < 20
    assert msg.startswith(f"source '{NAME}': ") and url in msg
    assert not mirror_path(mirrors, NAME).exists()


def test_unresolvable_ssh_url_fails_fast(mirrors):
    start = time.monotonic()
    msg = error_of(sync_mirror, NAME, "git@host.invalid:org/repo.git", "main", mirrors,
                   timeout_s=30)
    assert time.monotonic() - start < 25
    assert msg.startswith(f"source '{NAME}': ") and "host.invalid" in msg


def test_timeout_kills_git(mirrors):
    # A server that accepts the connection and never answers: only the timeout saves us.
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    try:
        start = time.monotonic()
        msg = error_of(sync_mirror, NAME, f"http://127.0.0.1:{port}/r.git", "main", mirrors,
                       timeout_s=2)
        assert time.monotonic() - start < 10
        assert "timed out after 2s" in msg
    finally:
        server.close()


def test_credentials_are_redacted(mirrors):
    msg = error_of(sync_mirror, NAME, "http://user:s3cret@127.0.0.1:9/r.git", "main", mirrors)
    assert "s3cret" not in msg and "user:***@" in msg


def test_failed_fetch_keeps_old_mirror(src, mirrors, tmp_path):
    good = src.working_tree_dir
    sha = sync_mirror(NAME, good, "main", mirrors)
    mirror = mirror_path(mirrors, NAME)

    msg = error_of(sync_mirror, NAME, "http://127.0.0.1:9/nope.git", "main", mirrors)
    assert msg.startswith(f"source '{NAME}': ")
    gone = tmp_path / "moved"
    Path(good).rename(gone)  # the source disappears
    error_of(sync_mirror, NAME, good, "main", mirrors)

    # Still intact and usable.
    assert git.Repo(mirror).commit("refs/heads/main").hexsha == sha
    entries = list_files(mirror, sha)
    assert dict(read_blobs(mirror, [e.blob_sha for e in entries]))
    gone.rename(good)
    assert sync_mirror(NAME, good, "main", mirrors) == sha


def test_unknown_branch(src, mirrors):
    src.git.branch("feature-x")
    msg = error_of(sync_mirror, NAME, src.working_tree_dir, "nope", mirrors)
    assert msg.startswith(f"source '{NAME}': ")
    assert "'nope'" in msg and "main" in msg and "feature-x" in msg
    assert not mirror_path(mirrors, NAME).exists()


def test_unknown_branch_on_existing_mirror(src, mirrors):
    sha = sync_mirror(NAME, src.working_tree_dir, "main", mirrors)
    msg = error_of(sync_mirror, NAME, src.working_tree_dir, "gone", mirrors)
    assert "'gone'" in msg
    assert git.Repo(mirror_path(mirrors, NAME)).commit("main").hexsha == sha


def test_empty_repo(mirrors, tmp_path):
    empty = git.Repo.init(tmp_path / "empty")
    msg = error_of(sync_mirror, NAME, empty.working_tree_dir, "main", mirrors)
    assert msg.startswith(f"source '{NAME}': ") and "no commits" in msg and "'main'" in msg


def test_invalid_leftover_at_mirror_path_is_replaced(src, mirrors):
    junk = mirror_path(mirrors, NAME)
    junk.mkdir(parents=True)
    (junk / "garbage").write_text("?")
    assert sync_mirror(NAME, src.working_tree_dir, "main", mirrors) == src.head.commit.hexsha
    assert git.Repo(junk).bare


def test_concurrent_first_syncs(src, mirrors):
    results, errors = [], []

    def run():
        try:
            results.append(sync_mirror(NAME, src.working_tree_dir, "main", mirrors))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results == [src.head.commit.hexsha] * 4
    assert [p.name for p in mirrors.iterdir()] == [f"{NAME}.git"]


# --- remote_head ---------------------------------------------------------------------------


def test_remote_head(src):
    assert remote_head(src.working_tree_dir, "main") == src.head.commit.hexsha
    assert remote_head(Path(src.working_tree_dir).as_uri(), "main") == src.head.commit.hexsha
    new = commit(src, {"n.txt": "n\n"}, "n")
    assert remote_head(src.working_tree_dir, "refs/heads/main") == new


def test_remote_head_errors(src, tmp_path):
    bad = str(tmp_path / "missing")
    msg = error_of(remote_head, bad, "main", source_name="s1")
    assert msg.startswith("source 's1': ") and bad in msg
    msg = error_of(remote_head, bad, "main")  # defaults to naming the source by its url
    assert msg.startswith(f"source '{bad}': ")
    msg = error_of(remote_head, src.working_tree_dir, "dev", source_name="s1")
    assert msg.startswith("source 's1': ") and "'dev'" in msg
    msg = error_of(remote_head, "http://127.0.0.1:9/x.git", "main", source_name="s1")
    assert msg.startswith("source 's1': ")


# --- list_files ----------------------------------------------------------------------------


@pytest.fixture
def mixed(tmp_path, mirrors):
    """A repo with one file of each kind; returns (mirror, commit sha)."""
    files = {
        "README.md": "# hi\n",
        "src/app.py": "print('hi')\n",
        "src/pkg/util.py": "def f():\n    return 1\n",
        "src/gen/out.py": "generated = True\n",
        "docs/guide.md": "guide\n",
        "docs/img/logo.png": b"\x89PNG\r\n\x1a\n\x00\x00",
        "data/blob.dat": b"abc\x00def" * 10,
        "data/big.txt": "x" * 1_000_001,
        "data/latin1.txt": "café\n".encode("latin-1"),
        "data/empty.txt": "",
        "data/blank.txt": "  \n\n",
        ".env": "TOKEN=abc\n",
        ".env.example": "TOKEN=\n",
        "keys/id_rsa": "-----BEGIN OPENSSH PRIVATE KEY-----\n",
        "keys/id_rsa.pub": "ssh-ed25519 AAAA\n",
        "node_modules/x.js": "module.exports = 1\n",
        "web/app.min.js": "var a=1;\n",
    }
    repo = make_repo(tmp_path / "mixed", files)
    write_symlink(repo, "passwd_link", "/etc/passwd")
    write_symlink(repo, "src/alias.py", "app.py")
    sha = commit(repo, {}, "links")
    # A submodule entry (gitlink), added straight to the index.
    sub = make_repo(tmp_path / "sub", {"s.txt": "s\n"})
    repo.git.update_index("--add", "--cacheinfo", f"160000,{sub.head.commit.hexsha},vendor_sub")
    repo.git.commit("-q", "-m", "submodule")  # not commit(): `add -A` would drop the gitlink
    sha = repo.head.commit.hexsha
    assert sync_mirror(NAME, repo.working_tree_dir, "main", mirrors) == sha
    return mirror_path(mirrors, NAME), sha


def test_list_files_skip_reasons(mixed):
    mirror, sha = mixed
    entries = list_files(mirror, sha)
    assert all(isinstance(e, FileEntry) for e in entries)
    assert {e.path: e.skip for e in entries} == {
        "README.md": None,
        "src/app.py": None,
        "src/pkg/util.py": None,
        "src/gen/out.py": None,
        "docs/guide.md": None,
        "docs/img/logo.png": "binary",
        # Content-based reasons come later, from the blob: here they are still candidates.
        "data/blob.dat": None,
        "data/big.txt": "too_large",
        "data/latin1.txt": None,
        "data/empty.txt": None,
        "data/blank.txt": None,
        ".env": "secret",
        ".env.example": None,
        "keys/id_rsa": "secret",
        "keys/id_rsa.pub": None,
        "node_modules/x.js": "vendored",
        "web/app.min.js": "vendored",
        "passwd_link": "symlink",
        "src/alias.py": "symlink",
        "vendor_sub": "submodule",
    }
    by_path = {e.path: e for e in entries}
    assert by_path["data/big.txt"].size == 1_000_001
    assert by_path["README.md"].size == len("# hi\n")
    assert by_path["vendor_sub"].size == 0


def test_content_reasons_via_read_blobs(mixed):
    mirror, sha = mixed
    todo = {e.blob_sha: e.path for e in list_files(mirror, sha) if e.skip is None}
    reasons = {todo[s]: skip_reason_for_content(data) for s, data in read_blobs(mirror, todo)}
    assert {p: r for p, r in reasons.items() if r} == {
        "data/blob.dat": "binary",
        "data/latin1.txt": "not_utf8",
        "data/empty.txt": "empty",
        "data/blank.txt": "empty",
    }


def test_symlink_target_is_not_read(mixed):
    mirror, sha = mixed
    link = next(e for e in list_files(mirror, sha) if e.path == "passwd_link")
    # The blob of a symlink is its target path, never the target's content.
    assert dict(read_blobs(mirror, [link.blob_sha]))[link.blob_sha] == b"/etc/passwd"


def test_list_files_include_exclude(mixed):
    mirror, sha = mixed

    def indexed(include=(), exclude=(), **kw):
        return {e.path for e in list_files(mirror, sha, include, exclude, **kw) if e.skip is None}

    assert indexed(["**/*.py"]) == {"src/app.py", "src/pkg/util.py", "src/gen/out.py"}
    assert indexed(["**/*.py"], ["src/gen/**"]) == {"src/app.py", "src/pkg/util.py"}
    assert indexed(["*.md"]) == {"README.md"}
    assert indexed(["**/*.md"]) == {"README.md", "docs/guide.md"}
    assert indexed(["docs/**"]) == {"docs/guide.md"}
    assert indexed(["src/*.py"]) == {"src/app.py"}
    assert indexed(exclude=["data/**", "src/**", "**/*.md"]) == {".env.example",
                                                                 "keys/id_rsa.pub"}
    assert indexed(max_bytes=10) == {"README.md", "docs/guide.md", ".env.example",
                                     "data/latin1.txt", "data/empty.txt", "data/blank.txt"}

    entries = {e.path: e.skip for e in list_files(mirror, sha, ["src/**"], ["src/gen/**"])}
    assert entries["README.md"] == "not_included"
    assert entries["src/gen/out.py"] == "excluded"
    assert entries["src/alias.py"] == "symlink"


def test_list_files_odd_names(tmp_path, mirrors):
    repo = make_repo(tmp_path / "r", {"sp ace/tab\tname.py": "a\n", "ünï/ćødé.py": "b\n",
                                      "quote\"d.py": "c\n"})
    raw = Path(repo.working_tree_dir, b"bad\xffname.txt".decode("utf-8", "surrogateescape"))
    raw.write_bytes(b"x\n")
    sha = commit(repo, {}, "odd")
    sync_mirror(NAME, repo.working_tree_dir, "main", mirrors)
    entries = {e.path: e.skip for e in list_files(mirror_path(mirrors, NAME), sha)}
    assert entries.pop("bad\ufffdname.txt") == "not_utf8"
    assert entries == {"sp ace/tab\tname.py": None, "ünï/ćødé.py": None, "quote\"d.py": None}


def test_list_files_errors(src, mirrors, tmp_path):
    sync_mirror(NAME, src.working_tree_dir, "main", mirrors)
    mirror = mirror_path(mirrors, NAME)
    msg = error_of(list_files, mirror, "0" * 40)
    assert msg.startswith(f"source '{NAME}': ") and "0" * 40 in msg
    assert error_of(list_files, mirror, "--output=x").startswith(f"source '{NAME}': ")
    msg = error_of(list_files, tmp_path / "nowhere.git", "main", source_name="other")
    assert msg.startswith("source 'other': ")


def test_list_files_uses_one_subprocess(mixed, monkeypatch):
    mirror, sha = mixed
    calls = []
    real = subprocess.Popen

    def spy(*a, **kw):
        calls.append(a[0])
        return real(*a, **kw)

    monkeypatch.setattr(git_snapshot.subprocess, "Popen", spy)
    entries = list_files(mirror, sha)
    assert len(calls) == 1
    list(read_blobs(mirror, [e.blob_sha for e in entries if e.skip is None]))
    assert len(calls) == 2


# --- read_blobs ----------------------------------------------------------------------------


def test_read_blobs_streams_matching_content(tmp_path, mirrors):
    files = {f"f{i:03}.txt": f"file {i}\n" * (i + 1) for i in range(300)}
    files["big.bin"] = bytes(range(256)) * 8000  # 2 MB: larger than any pipe buffer
    files["dup1.txt"] = files["dup2.txt"] = "same\n"
    repo = make_repo(tmp_path / "r", files)
    sha = sync_mirror(NAME, repo.working_tree_dir, "main", mirrors)
    mirror = mirror_path(mirrors, NAME)
    entries = list_files(mirror, sha, max_bytes=10_000_000)
    by_path = {e.path: e for e in entries}
    assert by_path["dup1.txt"].blob_sha == by_path["dup2.txt"].blob_sha  # content-addressed

    shas = [e.blob_sha for e in entries]
    got = list(read_blobs(mirror, iter(shas)))  # any iterable, consumed lazily
    assert [s for s, _ in got] == shas  # same order, duplicates included
    content = {s: d for s, d in got}
    for path, expected in files.items():
        want = expected.encode() if isinstance(expected, str) else expected
        assert content[by_path[path].blob_sha] == want


def test_read_blobs_early_stop_and_errors(src, mirrors):
    sha = sync_mirror(NAME, src.working_tree_dir, "main", mirrors)
    mirror = mirror_path(mirrors, NAME)
    shas = [e.blob_sha for e in list_files(mirror, sha)]
    gen = read_blobs(mirror, shas)
    assert next(gen)[0] == shas[0]
    gen.close()  # stops git cleanly

    msg = error_of(lambda: list(read_blobs(mirror, ["f" * 40])))
    assert msg.startswith(f"source '{NAME}': ") and "f" * 40 in msg and "missing" in msg
    msg = error_of(lambda: list(read_blobs(mirror, ["HEAD:README.md"])))
    assert "invalid blob sha" in msg
    tree = src.head.commit.tree.hexsha  # a tree, not a blob
    assert "tree" in error_of(lambda: list(read_blobs(mirror, [tree])))
    assert list(read_blobs(mirror, [])) == []
