"""Small crash-safe file helpers for the Edge engine's own catalog (aliases, collection config)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Iterator

from rag_assets.store.base import StoreError


def read_json(path: Path, default: dict | None = None,
              fix: str = "restore the store from a snapshot (rag-assets store restore FILE)") -> dict | None:
    """The file's JSON object; `default` when it does not exist; StoreError naming the file when damaged."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return default
    except (ValueError, UnicodeDecodeError) as e:
        raise StoreError(f"damaged store file {path} (not valid JSON: {' '.join(str(e).split())}); {fix}") from None
    if not isinstance(data, dict):
        raise StoreError(f"damaged store file {path} (expected a JSON object, got {type(data).__name__}); {fix}")
    return data


def write_json_atomic(path: Path, data: dict) -> None:
    """Readers see the old or the new file, never a half-written one: tmp + fsync + os.replace."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    # fsync the folder so the rename itself survives a power cut.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Blocking exclusive flock for short read-modify-write sections shared between processes."""
    with open(path, "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
