"""A full disk: one line that says so, never a bus error, and nothing indexed lost.

Edge memory-maps its files; writing a page of a sparse file on a full disk kills the process with SIGBUS
and no message. The test makes a real full disk: a small tmpfs mounted for it (needs root, as CI has), a
store on it, and a filler file that leaves 2 MB free. Each step runs in a child process, so a bus error
shows as a signal exit code instead of killing pytest.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from rag_assets.store import open_store

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96M", "tmpfs", str(disk)], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {out.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _child(data_dir: Path, code: str, cli: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAG_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO_ROOT)}
    env.pop("QDRANT_URL", None)
    args = [sys.executable, "-m", "rag_assets.cli", *code.split()] if cli else [sys.executable, "-c", textwrap.dedent(f"""
        import sys, numpy as np
        from rag_assets.store import StoreError, open_store
        try:
            with open_store({str(data_dir)!r}) as s:
    {textwrap.indent(textwrap.dedent(code), ' ' * 12)}
        except StoreError as e:
            print(e, file=sys.stderr)
            sys.exit(1)
    """)]
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)


def test_full_disk_is_one_line_and_loses_nothing(small_disk):
    data = small_disk / "data"
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((200, 8)).astype(np.float32)
    ids = [f"00000000-0000-0000-0000-{i:012d}" for i in range(200)]
    with open_store(data) as s:
        s.ensure_collection("code", 8, sparse=False)
        s.upsert("code", ids, vectors, [{"source": "code", "path": f"f{i}.py"} for i in range(200)])
        s.finalize("code")
        s.set_alias("src", "code")
    filler = small_disk / "filler"
    with open(filler, "wb") as f:  # leave 2 MB
        free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
        f.write(b"\0" * (free - 2 * 2**20))

    search = _child(data, "print(len(s.query('src', np.ones(8, dtype=np.float32), k=3)))")
    write = _child(data, "s.delete('code', [" + repr(ids[0]) + "])")
    listing = _child(data, "collections", cli=True)
    for out in (search, write):
        assert out.returncode == 1, (out.returncode, out.stderr)  # not -7 (SIGBUS)
        err = out.stderr.strip()
        assert "\n" not in err and "no space left on the device of" in err and "MB free" in err, err
    assert listing.returncode == 0 and "code" in listing.stdout, listing.stdout + listing.stderr  # needs no room

    filler.unlink()
    ok = _child(data, "print(s.count('src'), len(s.query('src', np.ones(8, dtype=np.float32), k=3)))")
    assert ok.stdout.split() == ["200", "3"], ok.stdout + ok.stderr
