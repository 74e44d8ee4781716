"""Ranking metrics, one definition shared by every evaluation (intents, documents, training)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

CUTOFFS = (1, 5, 20)


def recall_at(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """DPR's top-k accuracy: 1 when any relevant item is in the top k (top-1 accuracy at k=1)."""
    return 1.0 if relevant & set(ranked[:k]) else 0.0


def mrr_at(ranked: Sequence[str], relevant: set[str], k: int = 10) -> float:
    for i, item in enumerate(ranked[:k]):
        if item in relevant:
            return 1.0 / (i + 1)
    return 0.0


def ndcg_at(ranked: Sequence[str], relevant: set[str], k: int = 10) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, item in enumerate(ranked[:k]) if item in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg / ideal if ideal else 0.0


def summarise(rankings: list[list[str]], relevants: list[set[str]]) -> dict[str, float]:
    """Mean metrics over the queries that have at least one relevant item."""
    pairs = [(r, rel) for r, rel in zip(rankings, relevants, strict=True) if rel]
    if not pairs:
        return {f"recall@{k}": 0.0 for k in CUTOFFS} | {"mrr@10": 0.0, "ndcg@10": 0.0}
    out = {
        f"recall@{k}": float(np.mean([recall_at(r, rel, k) for r, rel in pairs])) for k in CUTOFFS
    }
    out["mrr@10"] = float(np.mean([mrr_at(r, rel) for r, rel in pairs]))
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
