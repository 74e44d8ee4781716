"""Ranking metrics and the latency summary, one definition shared by every evaluation
(``chatda eval``, ``chatda train`` evaluation, the re-index verification, bench/).

Recall@k and MRR@k are both functions of one number per query: the 1-based rank of its first
relevant item (``inf`` when none is ranked). A ranked list gives that rank by position
(:func:`first_relevant_rank`); a score matrix gives it for every query at once
(:func:`gold_ranks`, for training evaluation, where ranking all passages per question in Python
would dominate the run). Both feed the same :func:`recall_from_ranks` and :func:`rr_from_ranks`,
so the two paths cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

CUTOFFS = (1, 5, 20)
RANK_DEPTH = max(*CUTOFFS, 10)
"""The deepest rank any metric here reads (recall@20; MRR and nDCG at 10): a ranking cut at
this depth gives the same numbers as the whole ranking."""


def first_relevant_rank(ranked: Sequence[str], relevant: set[str]) -> float:
    """1-based position of the first relevant item in ``ranked``; ``inf`` when there is none."""
    return next((i for i, item in enumerate(ranked, 1) if item in relevant), math.inf)


def gold_ranks(scores: np.ndarray, gold: Sequence[int]) -> np.ndarray:
    """Each row's 1-based rank of its gold column among all columns, highest score first.

    A column that ties the gold one does not push it down (the gold is ranked first among
    equals), as a stable sort would rank it if the gold came first.
    """
    rows = np.arange(len(gold))
    gold_score = scores[rows, np.asarray(gold)]
    return (scores > gold_score[:, None]).sum(axis=1) + 1


def recall_from_ranks(ranks: np.ndarray | float, k: int) -> np.ndarray:
    """DPR's top-k accuracy per query: 1 when the first relevant item is in the top k."""
    return (np.asarray(ranks) <= k).astype(np.float64)


def rr_from_ranks(ranks: np.ndarray | float, k: int) -> np.ndarray:
    """Reciprocal rank cut at k per query (its mean is MRR@k): 1/rank in the top k, else 0."""
    r = np.asarray(ranks, dtype=np.float64)
    return np.where(r <= k, 1.0 / r, 0.0)


def recall_at(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """DPR's top-k accuracy: 1 when any relevant item is in the top k (top-1 accuracy at k=1)."""
    return float(recall_from_ranks(first_relevant_rank(ranked, relevant), k))


def mrr_at(ranked: Sequence[str], relevant: set[str], k: int = 10) -> float:
    """Reciprocal rank of the first relevant item within the top k; 0 when none is there."""
    return float(rr_from_ranks(first_relevant_rank(ranked, relevant), k))


def ndcg_at(ranked: Sequence[str], relevant: set[str], k: int = 10) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, item in enumerate(ranked[:k]) if item in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg / ideal if ideal else 0.0


def summarise(rankings: list[list[str]], relevants: list[set[str]]) -> dict[str, float]:
    """Mean metrics over the queries that have at least one relevant item."""
    pairs = [(r, rel) for r, rel in zip(rankings, relevants, strict=True) if rel]
    if not pairs:
        return {f"recall@{k}": 0.0 for k in CUTOFFS} | {"mrr@10": 0.0, "ndcg@10": 0.0}
    ranks = np.array([first_relevant_rank(r, rel) for r, rel in pairs])
    out = {f"recall@{k}": float(np.mean(recall_from_ranks(ranks, k))) for k in CUTOFFS}
    out["mrr@10"] = float(np.mean(rr_from_ranks(ranks, 10)))
    out["ndcg@10"] = float(np.mean([ndcg_at(r, rel) for r, rel in pairs]))
    return {k: round(v, 4) for k, v in out.items()}


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float]:
    if not latencies_ms:
        return {"p50": 0.0, "p95": 0.0}
    arr = np.asarray(latencies_ms)
    return {
        "p50": round(float(np.percentile(arr, 50)), 2),
        "p95": round(float(np.percentile(arr, 95)), 2),
    }
