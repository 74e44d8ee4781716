"""One definition of recall@k and MRR@k: per ranked list and vectorised over a score matrix."""

from __future__ import annotations

import math

import numpy as np
import pytest

from chatda.evaluation.metrics import (
    first_relevant_rank,
    gold_ranks,
    mrr_at,
    recall_at,
    recall_from_ranks,
    rr_from_ranks,
    summarise,
)


def test_per_list_metrics_by_hand() -> None:
    ranked = ["a", "b", "c", "d", "e", "f"]
    assert first_relevant_rank(ranked, {"c", "e"}) == 3
    assert first_relevant_rank(ranked, {"z"}) == math.inf
    assert mrr_at(ranked, {"c", "e"}) == pytest.approx(1 / 3)
    assert mrr_at(ranked, {"f"}, k=5) == 0.0
    assert mrr_at(ranked, {"z"}) == 0.0
    assert [recall_at(ranked, {"c"}, k) for k in (1, 2, 3, 20)] == [0.0, 0.0, 1.0, 1.0]
    assert recall_at(ranked, {"z"}, 20) == 0.0


def test_summarise_skips_queries_without_relevant_items() -> None:
    rankings = [["a", "b"], ["b", "a"], ["x", "y"], ["a"]]
    relevants = [{"a"}, {"a"}, {"a"}, set()]
    out = summarise(rankings, relevants)
    assert out["recall@1"] == round(1 / 3, 4)
    assert out["recall@5"] == round(2 / 3, 4)
    assert out["mrr@10"] == round((1 + 0.5 + 0) / 3, 4)


@pytest.mark.parametrize("seed", range(4))
def test_vectorised_ranks_agree_with_ranked_lists(seed: int) -> None:
    """Training evaluation ranks all passages at once; it must give what the lists give."""
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(200, 60))
    gold = rng.integers(0, 60, size=200)
    ranks = gold_ranks(scores, gold)
    columns = [str(c) for c in range(60)]
    lists = [[columns[c] for c in np.argsort(-row)] for row in scores]
    relevant = [{columns[g]} for g in gold]
    for k in (1, 5, 10, 20):
        assert np.mean(recall_from_ranks(ranks, k)) == pytest.approx(
            np.mean([recall_at(r, rel, k) for r, rel in zip(lists, relevant, strict=True)])
        )
        assert np.mean(rr_from_ranks(ranks, k)) == pytest.approx(
            np.mean([mrr_at(r, rel, k) for r, rel in zip(lists, relevant, strict=True)])
        )


def test_a_tie_does_not_push_the_gold_column_down() -> None:
    scores = np.array([[0.5, 0.9, 0.9, 0.1]])
    assert gold_ranks(scores, [1]).tolist() == gold_ranks(scores, [2]).tolist() == [1]
    assert gold_ranks(scores, [0]).tolist() == [3]
