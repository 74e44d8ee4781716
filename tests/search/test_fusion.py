"""Fusion arithmetic on hand-made rankings: every number below is worked out by hand."""

from __future__ import annotations

import pytest

from chatda.search.fusion import normalize_max, normalize_minmax, ranked, rrf, weighted


def test_rrf_sums_weighted_reciprocal_ranks() -> None:
    fused = rrf({"dense": ["a", "b", "c"], "bm25": ["b", "d"]}, {"dense": 1.0, "bm25": 1.0}, k=1)
    assert fused == pytest.approx({"a": 1 / 2, "b": 1 / 3 + 1 / 2, "c": 1 / 4, "d": 1 / 3})
    assert [doc for doc, _ in ranked(fused)] == ["b", "a", "d", "c"]


def test_rrf_weights_decide_between_two_first_places() -> None:
    rankings = {"dense": ["a", "b"], "bm25": ["b", "a"]}
    assert ranked(rrf(rankings, {"dense": 1.0, "bm25": 0.6}))[0][0] == "a"
    assert ranked(rrf(rankings, {"dense": 0.6, "bm25": 1.0}))[0][0] == "b"


def test_rrf_equal_weights_let_the_weaker_leg_pull_a_document_up() -> None:
    """The case behind explicit weights: dense has the answer first, BM25 ranks a lexical
    decoy first and the answer fourth; with equal weights the decoy wins (k=1 for round
    numbers), with the dense leg weighted higher the answer stays on top."""
    rankings = {"dense": ["answer", "x", "decoy"], "bm25": ["decoy", "y", "z", "answer"]}
    equal = rrf(rankings, {"dense": 1.0, "bm25": 1.0}, k=1)
    assert equal["decoy"] == pytest.approx(1 / 4 + 1 / 2)
    assert equal["answer"] == pytest.approx(1 / 2 + 1 / 5)
    assert ranked(equal)[0][0] == "decoy"
    assert ranked(rrf(rankings, {"dense": 1.0, "bm25": 0.5}, k=1))[0][0] == "answer"


def test_rrf_keeps_the_first_rank_of_a_repeated_id() -> None:
    assert rrf({"dense": ["a", "a", "b"]}, {"dense": 1.0}, k=1) == pytest.approx(
        {"a": 1 / 2, "b": 1 / 4}
    )


def test_rrf_zero_weight_leg_contributes_nothing() -> None:
    fused = rrf({"dense": ["a"], "bm25": ["b"]}, {"dense": 1.0, "bm25": 0.0}, k=1)
    assert fused == {"a": 0.5, "b": 0.0}


@pytest.mark.parametrize(
    ("weights", "k"),
    [
        ({"dense": 1.0}, 60.0),
        ({"dense": 1.0, "bm25": -1.0}, 60.0),
        ({"dense": 1.0, "bm25": 1.0}, 0.0),
    ],
)
def test_rrf_rejects_missing_or_negative_weights_and_bad_k(
    weights: dict[str, float], k: float
) -> None:
    with pytest.raises(ValueError):
        rrf({"dense": ["a"], "bm25": ["b"]}, weights, k)


def test_minmax_normalisation() -> None:
    assert normalize_minmax({"a": 12.0, "b": 8.0, "c": 4.0}) == {"a": 1.0, "b": 0.5, "c": 0.0}
    assert normalize_minmax({"a": 3.0, "b": 3.0}) == {"a": 1.0, "b": 1.0}
    assert normalize_minmax({}) == {}


def test_max_normalisation_keeps_absolute_gaps_and_clips_negatives() -> None:
    assert normalize_max({"a": 10.0, "b": 9.0, "c": -1.0}) == {"a": 1.0, "b": 0.9, "c": 0.0}
    assert normalize_max({"a": -1.0, "b": 0.0}) == {"a": 0.0, "b": 0.0}
    assert normalize_max({}) == {}


def test_weighted_minmax_by_hand() -> None:
    scores = {
        "dense": {"a": 0.90, "b": 0.80, "c": 0.70},  # → 1, 0.5, 0
        "bm25": {"b": 12.0, "c": 8.0, "d": 4.0},  # → 1, 0.5, 0
    }
    fused = weighted(scores, {"dense": 0.6, "bm25": 0.4}, "minmax")
    assert fused == pytest.approx({"a": 0.6, "b": 0.3 + 0.4, "c": 0.2, "d": 0.0})
    assert [doc for doc, _ in ranked(fused)] == ["b", "a", "c", "d"]


def test_weighted_max_by_hand() -> None:
    scores = {"dense": {"a": 0.9, "b": 0.45}, "bm25": {"b": 10.0, "c": 5.0}}
    fused = weighted(scores, {"dense": 0.5, "bm25": 0.5}, "max")
    assert fused == pytest.approx({"a": 0.5, "b": 0.25 + 0.5, "c": 0.25})


def test_weighted_single_leg_ranks_by_that_leg() -> None:
    fused = weighted({"bm25": {"a": 1.0, "b": 3.0}}, {"dense": 0.7, "bm25": 0.3})
    assert [doc for doc, _ in ranked(fused)] == ["b", "a"]


def test_ranked_breaks_ties_by_id() -> None:
    assert ranked({"b": 1.0, "a": 1.0, "c": 2.0}) == [("c", 2.0), ("a", 1.0), ("b", 1.0)]
