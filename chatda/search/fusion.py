"""Rank fusion: several legs' rankings of one query merged into one, as pure functions.

Kept free of Milvus and HTTP so the arithmetic can be checked on hand-made rankings. A leg is
named by a string ("dense", "bm25"); a document by its id. Every weight is explicit: an
equal-weight fusion lets the weaker leg drag the better one down, so profiles say how much
each leg counts (docs/search.md has the measurements behind the defaults).

* Weighted RRF: ``score(d) = Σ_leg w_leg / (k + rank_leg(d))`` with 1-based ranks. Only ranks
  matter, so legs with incomparable scores (cosine vs BM25) combine without calibration.
* Weighted linear: ``score(d) = Σ_leg w_leg · norm_leg(s_leg(d))``. ``minmax`` maps a leg's
  candidates onto [0, 1] (``(s - min) / (max - min)``; all equal → 1); ``max`` divides by the
  leg's best score and clips negatives to 0, so an absolute gap between hits survives.

A document a leg did not return contributes nothing from that leg in both methods.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

Normalization = Literal["minmax", "max"]


def _weight(weights: Mapping[str, float], leg: str) -> float:
    if leg not in weights:
        raise ValueError(f"no weight for leg {leg!r}; weights must name every fused leg")
    weight = weights[leg]
    if weight < 0:
        raise ValueError(f"weight of leg {leg!r} is negative")
    return weight


def rrf(
    rankings: Mapping[str, Sequence[str]], weights: Mapping[str, float], k: float = 60.0
) -> dict[str, float]:
    """Weighted reciprocal rank fusion; a repeated id keeps its first (best) rank in a leg."""
    if k <= 0:
        raise ValueError("k must be positive")
    fused: dict[str, float] = {}
    for leg, ranking in rankings.items():
        weight = _weight(weights, leg)
        seen: set[str] = set()
        for rank, doc in enumerate(ranking, start=1):
            if doc in seen:
                continue
            seen.add(doc)
            fused[doc] = fused.get(doc, 0.0) + weight / (k + rank)
    return fused


def normalize_minmax(scores: Mapping[str, float]) -> dict[str, float]:
    """Scores onto [0, 1] by the leg's own range; a leg whose scores are all equal gives 1."""
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    if high == low:
        return dict.fromkeys(scores, 1.0)
    return {doc: (score - low) / (high - low) for doc, score in scores.items()}


def normalize_max(scores: Mapping[str, float]) -> dict[str, float]:
    """Scores divided by the leg's best, negatives clipped to 0; no positive score gives 0s."""
    if not scores:
        return {}
    high = max(scores.values())
    if high <= 0:
        return dict.fromkeys(scores, 0.0)
    return {doc: max(score, 0.0) / high for doc, score in scores.items()}


def weighted(
    scores: Mapping[str, Mapping[str, float]],
    weights: Mapping[str, float],
    normalization: Normalization = "minmax",
) -> dict[str, float]:
    """Weighted sum of each leg's normalised scores."""
    normalize = normalize_minmax if normalization == "minmax" else normalize_max
    fused: dict[str, float] = {}
    for leg, leg_scores in scores.items():
        weight = _weight(weights, leg)
        for doc, value in normalize(leg_scores).items():
            fused[doc] = fused.get(doc, 0.0) + weight * value
    return fused


def ranked(fused: Mapping[str, float]) -> list[tuple[str, float]]:
    """Best first; ties broken by id so the same inputs always give the same page."""
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))
