"""Exact and near-duplicate detection; canonical = shortest URL, then discovery order."""

from __future__ import annotations

import random

from rag_assets.sources.docs.dedupe import content_hash, find_duplicates, jaccard, minhash, shingles

_VOCAB = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi".split()


def _doc(seed: int, n: int = 400) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(_VOCAB) for _ in range(n)]


def test_content_hash_ignores_whitespace_only():
    assert content_hash("a  b\n\nc ") == content_hash("a b c")
    assert content_hash("a b c") != content_hash("a b C")


def test_exact_duplicates_keep_shortest_url():
    dups = find_duplicates(["https://d.dev/guide/index.html", "https://d.dev/guide", "https://d.dev/other"],
                           ["same text here", "same  text\nhere", "different text"])
    assert dups == {0: 1}


def test_near_duplicates_over_threshold_only():
    base = _doc(1)
    near = list(base)
    near[200] = "changed"  # one word in 400: Jaccard ~0.98
    far = list(base)
    for i in range(0, 400, 25):
        far[i] = "changed"  # one word in 25: Jaccard ~0.7
    texts = [" ".join(t) for t in (base, near, far, _doc(2))]
    assert jaccard(shingles(texts[0]), shingles(texts[1])) > 0.95
    assert jaccard(shingles(texts[0]), shingles(texts[2])) < 0.8
    assert find_duplicates(["/a", "/b", "/c", "/d"], texts) == {1: 0}
    # Discovery order breaks URL-length ties; the canonical is never itself a duplicate.
    assert find_duplicates(["/x2", "/x1"], [texts[1], texts[0]]) == {1: 0}


def test_empty_texts_are_never_duplicates():
    assert find_duplicates(["/a", "/b", "/c"], ["", " \n", "text"]) == {}


def test_minhash_is_deterministic_and_estimates_jaccard():
    a, b = shingles(" ".join(_doc(3))), shingles(" ".join(_doc(3)[:300]))
    sa, sb = minhash(a), minhash(b)
    assert (minhash(a) == sa).all()
    assert abs((sa == sb).mean() - jaccard(a, b)) < 0.15
