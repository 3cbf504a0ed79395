"""Exact and near-duplicate detection over page texts.

Exact: sha256 of the normalized text. Near: MinHash over 5-word shingles with LSH banding to
find candidates, then the true Jaccard of the shingle sets (kept as sorted uint32 arrays, so
memory stays ~4 bytes a shingle) against the threshold. The canonical page of a group is the
one with the shortest URL, ties broken by discovery order.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zlib
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"\w+")
_PRIME = np.uint64((1 << 31) - 1)  # x, a < 2**31 so a*x + b < 2**63: no uint64 overflow
_NUM_PERM, _BANDS = 128, 16  # 16 bands x 8 rows: P(candidate) 0.9999 at J=0.9, 0.06 at J=0.5


def normalize(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split())


def content_hash(text: str) -> str:
    return hashlib.sha256(normalize(text).encode("utf-8")).hexdigest()


def shingles(text: str, k: int = 5) -> np.ndarray:
    """Sorted unique 32-bit hashes of k-word shingles (one shingle for texts shorter than k)."""
    words = _WORD.findall(unicodedata.normalize("NFKC", text).lower())
    if not words:
        return np.zeros(0, dtype=np.uint32)
    ids = np.array([zlib.crc32(w.encode()) for w in words], dtype=np.uint64)
    k = min(k, len(ids))
    # Polynomial rolling combination of k word hashes, vectorized, wrapped to 32 bits.
    h = np.zeros(len(ids) - k + 1, dtype=np.uint64)
    for j in range(k):
        h = (h * np.uint64(1_000_003) + ids[j:len(ids) - k + 1 + j]) & np.uint64(0xFFFFFFFF)
    return np.unique(h.astype(np.uint32))


_rng = np.random.default_rng(20240601)  # fixed: signatures must be comparable across runs
_A = _rng.integers(1, (1 << 31) - 1, _NUM_PERM, dtype=np.uint64)
_B = _rng.integers(0, (1 << 31) - 1, _NUM_PERM, dtype=np.uint64)


def minhash(sh: np.ndarray) -> np.ndarray:
    sig = np.full(_NUM_PERM, _PRIME, dtype=np.uint64)
    x = sh.astype(np.uint64) % _PRIME  # universal hashing (a*x + b) mod p, one (a, b) per permutation
    for start in range(0, len(x), 4096):  # blocks bound the (n x 128) temporary
        block = (np.outer(x[start:start + 4096], _A) + _B) % _PRIME
        sig = np.minimum(sig, block.min(axis=0))
    return sig


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    if not len(a) and not len(b):
        return 1.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


def find_duplicates(urls: Sequence[str], texts: Sequence[str], threshold: float = 0.9) -> dict[int, int]:
    """Map index of each duplicate page -> index of its canonical page. Empty texts never match."""
    n = len(texts)
    rank = sorted(range(n), key=lambda i: (len(urls[i]), i))  # canonical preference order
    dup: dict[int, int] = {}
    by_hash: dict[str, int] = {}
    for i in rank:
        if not texts[i].strip():
            continue
        h = content_hash(texts[i])
        if h in by_hash:
            dup[i] = by_hash[h]
        else:
            by_hash[h] = i
    rows = _NUM_PERM // _BANDS
    buckets: dict[tuple, list[int]] = {}
    sets: dict[int, np.ndarray] = {}
    for i in rank:
        if i in dup or not texts[i].strip():
            continue
        sh = sets[i] = shingles(texts[i])
        sig = minhash(sh)
        cands: set[int] = set()
        keys = [(b, sig[b * rows:(b + 1) * rows].tobytes()) for b in range(_BANDS)]
        for key in keys:
            cands.update(buckets.get(key, ()))
        best = min((c for c in cands if jaccard(sh, sets[c]) >= threshold),
                   key=lambda c: (len(urls[c]), c), default=None)
        if best is not None:
            dup[i] = best
            continue
        for key in keys:
            buckets.setdefault(key, []).append(i)
    return dup
