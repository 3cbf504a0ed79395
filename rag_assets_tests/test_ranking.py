"""Score fusion of the dense and BM25 lists (pure: hits in, hits out)."""

from rag_assets.retrieval.ranking import score_fusion
from rag_assets.retrieval.search import Hit


def _hit(cid: str, score: float) -> Hit:
    return Hit(path=f"{cid}.py", start_line=1, end_line=2, symbol=cid, score=score, source="s", commit="c",
               text="", language="python", kind="function", chunk_id=cid)


def test_a_bm25_standout_beats_a_flat_dense_list():
    filler = [f"x{i}" for i in range(10)]
    dense = [_hit("a", 0.60), _hit("b", 0.59), _hit("c", 0.58)] + [_hit(x, 0.2) for x in filler]
    sparse = [_hit("c", 30.0), _hit("a", 3.0), _hit("b", 2.9)] + [_hit(x, 1.0) for x in filler]
    # RRF would put a first (ranks 1 and 2 against c's 3 and 1); the scores say c stands far out in BM25
    # and is as close as b in dense.
    assert [h.chunk_id for h in score_fusion(dense, sparse, k=3)] == ["c", "a", "b"]


def test_points_in_one_list_only_and_empty_lists():
    fused = score_fusion([_hit("a", 0.9), _hit("b", 0.1)], [], k=5)
    assert [h.chunk_id for h in fused] == ["a", "b"] and fused[0].score == 0.5
    assert score_fusion([], [], k=5) == []
    only_sparse = score_fusion([_hit("a", 0.9)], [_hit("z", 5.0), _hit("a", 1.0)], k=1)
    assert [h.chunk_id for h in only_sparse] == ["a"]  # 0.5 (dense) + 0 (lowest BM25) vs z: 0.5


def test_k_limits_and_scores_are_fused_values():
    fused = score_fusion([_hit(c, 1 - i / 10) for i, c in enumerate("abcdef")], [_hit("f", 9.0), _hit("a", 1.0)], k=2)
    assert len(fused) == 2 and all(0 <= h.score <= 1 for h in fused)
