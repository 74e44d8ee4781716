"""Open-set decision metrics (issue #27): does the app show the right service, or nothing?

In-scope queries (with a relevant intent) should get it, alone; out-of-scope queries (none
relevant: a service the catalog lacks, or off-domain) should get nothing. Reported for the old
rule (a global threshold on the raw fused score) and for the served decision, plus
threshold-free summaries of the score each rule thresholds: AUROC of in-scope-and-right against
out-of-scope, and in-scope accuracy where 90 % and 95 % of out-of-scope queries are rejected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from chatda.catalog.decision import Decision


@dataclass(frozen=True)
class OpenSetOutcome:
    """One query: its top intent (corpus id), raw score, confidence, and what was decided."""

    top: str | None
    raw: float
    confidence: float | None
    decision: Decision
    shown: list[str]


def auroc(positive: np.ndarray, negative: np.ndarray) -> float | None:
    """P(a positive scores above a negative), ties counted half (Mann-Whitney)."""
    if not positive.size or not negative.size:
        return None
    scores = np.concatenate([positive, negative])
    order = scores.argsort(kind="stable")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks of ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    u = ranks[: positive.size].sum() - positive.size * (positive.size + 1) / 2
    return float(u / (positive.size * negative.size))


def _curve(score: np.ndarray, right: np.ndarray, in_scope: np.ndarray) -> dict[str, Any]:
    """Threshold-free summary of ``score`` (the top intent's) as an accept/reject rule."""
    out_scores = score[~in_scope]
    summary: dict[str, Any] = {"auroc": None}
    auc = auroc(score[in_scope & right], out_scores)
    summary["auroc"] = round(auc, 4) if auc is not None else None
    for rejection in (90, 95):
        key = f"in_scope_correct_at_{rejection}_rejection"
        if not out_scores.size or not in_scope.any():
            summary[key] = None
            continue
        cut = float(np.quantile(out_scores, rejection / 100, method="higher"))
        accepted = in_scope & right & (score > cut)
        summary[key] = round(float(accepted.sum() / in_scope.sum()), 4)
    return summary


def _rates(
    decisions: Sequence[Decision],
    shown: Sequence[list[str]],
    relevants: Sequence[set[str]],
) -> dict[str, float | None]:
    in_scope = [bool(r) for r in relevants]
    n_in = sum(in_scope)
    n_out = len(relevants) - n_in
    correct = sum(
        d is Decision.PASSED and bool(s) and s[0] in r
        for d, s, r, i in zip(decisions, shown, relevants, in_scope, strict=True)
        if i
    )
    ambiguous_right = sum(
        d is Decision.AMBIGUOUS and bool(set(s) & r)
        for d, s, r, i in zip(decisions, shown, relevants, in_scope, strict=True)
        if i
    )
    rejected = sum(
        d is Decision.NO_MATCH for d, i in zip(decisions, in_scope, strict=True) if not i
    )
    ambiguous = sum(d is Decision.AMBIGUOUS for d in decisions)
    return {
        "in_scope_correct": round(correct / n_in, 4) if n_in else None,
        "in_scope_ambiguous_with_right": round(ambiguous_right / n_in, 4) if n_in else None,
        "out_of_scope_rejected": round(rejected / n_out, 4) if n_out else None,
        "ambiguous_share": round(ambiguous / len(decisions), 4) if decisions else None,
    }


def open_set_report(
    outcomes: Sequence[OpenSetOutcome],
    relevants: Sequence[set[str]],
    raw_threshold: float,
    rule: str,
    min_confidence: float,
    ambiguity_margin: float,
    calibrator: dict[str, Any] | None,
) -> dict[str, Any]:
    """The ``decision`` block of ``chatda eval --mode intents``."""
    in_scope = np.array([bool(r) for r in relevants])
    right = np.array([o.top in r for o, r in zip(outcomes, relevants, strict=True)])
    raw = np.array([o.raw for o in outcomes])
    old = [Decision.PASSED if o.raw >= raw_threshold else Decision.NO_MATCH for o in outcomes]
    report: dict[str, Any] = {
        "rule": rule,
        "n_in_scope": int(in_scope.sum()),
        "n_out_of_scope": int((~in_scope).sum()),
        "old_rule": {
            "threshold": raw_threshold,
            **_rates(old, [[o.top] if o.top else [] for o in outcomes], relevants),
            "curve": _curve(raw, right, in_scope),
        },
    }
    served: dict[str, Any] = {
        **_rates([o.decision for o in outcomes], [o.shown for o in outcomes], relevants)
    }
    if rule == "calibrated":
        confidence = np.array([o.confidence if o.confidence is not None else 0.0 for o in outcomes])
        served |= {
            "min_confidence": min_confidence,
            "ambiguity_margin": ambiguity_margin,
            "calibrator": calibrator,
            "curve": _curve(confidence, right, in_scope),
        }
    report["served"] = served
    return report
