"""Calibrated intent confidence: raw match scores → the probability that the intent is right.

The base model's cosines are compressed (an unrelated query scores 0.85–0.95), and how much a
cosine means shifts with the catalog, so one raw threshold cannot tell "the right service" from
"no such service". What does separate them is how a candidate stands against the rest of the
catalog for the same query: its fused and dense scores, its gap to the best other intent, and
its dense score as a z-score over every visible intent. A logistic model over those features,
fitted per catalog snapshot (:mod:`chatda.catalog.calibration_fit`), turns them into one number
whose meaning is the same for every intent and catalog, so a threshold on it means the same too.

Every weight is kept non-negative, so the confidence never falls when a feature rises: a better
raw score never lowers it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FEATURES = ("fused", "dense", "gap", "zscore")
GAP_CAP = 0.2
"""The gap to the best other intent is clipped to ±this: past it, the top intent stands alone."""


def candidate_features(
    fused: np.ndarray, dense: np.ndarray, dense_mean: float, dense_std: float
) -> np.ndarray:
    """The features of the candidates of one query, given best first (by fused score).

    ``fused`` and ``dense`` hold at least the top two visible intents when there are two;
    ``dense_mean`` / ``dense_std`` are taken over every visible intent. The first candidate's
    gap is to the second; every other's is to the first (so it is ≤ 0).
    """
    fused = np.asarray(fused, dtype=np.float64)
    dense = np.asarray(dense, dtype=np.float64)
    if fused.size == 0:
        return np.zeros((0, len(FEATURES)))
    other = np.full(fused.shape, fused[0])
    other[0] = fused[1] if fused.size > 1 else fused[0] - GAP_CAP
    gap = np.clip(fused - other, -GAP_CAP, GAP_CAP)
    z = (dense - dense_mean) / dense_std if dense_std > 1e-6 else np.zeros_like(dense)
    return np.stack([fused, dense, gap, z], axis=1)


@dataclass(frozen=True)
class Calibrator:
    """``sigmoid(weights · (features − mean) / scale + bias)``, with non-negative weights."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    n_positive: int = 0
    n_negative: int = 0
    n_clicks: int = 0
    """Of the examples, how many were users' clicks (the rest: hints and the background)."""

    def probability(self, features: np.ndarray) -> np.ndarray:
        """The confidence of each row of ``features`` (columns as in :data:`FEATURES`)."""
        x = (np.asarray(features, dtype=np.float64) - self.mean) / self.scale
        return _sigmoid(x @ self.weights + self.bias)

    def describe(self) -> dict[str, float | int]:
        """The fitted model in the features' own units, for logs and the evaluation report."""
        out: dict[str, float | int] = {
            f"w_{n}": round(float(w / s), 4)
            for n, w, s in zip(FEATURES, self.weights, self.scale, strict=True)
        }
        out["bias"] = round(self.bias - float(np.sum(self.weights * self.mean / self.scale)), 4)
        out["positives"] = self.n_positive
        out["negatives"] = self.n_negative
        out["clicks"] = self.n_clicks
        return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40.0, 40.0)))


def fit_logistic(
    features: np.ndarray,
    labels: np.ndarray,
    sample_weight: np.ndarray,
    l2: float = 1e-2,
    use: tuple[str, ...] = FEATURES,
    iterations: int = 3000,
) -> Calibrator:
    """Weighted logistic regression with non-negative weights (projected gradient descent).

    Features are standardised first, so one step size fits every catalog; ``use`` names the
    features the model may weigh (the others get weight 0). Deterministic: same data, same
    model.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    sw = np.asarray(sample_weight, dtype=np.float64)
    sw = sw / sw.sum()
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    xs = (x - mean) / scale
    mask = np.array([name in use for name in FEATURES], dtype=np.float64)
    w = np.zeros(x.shape[1])
    b = 0.0
    step = 1.0
    for _ in range(iterations):
        p = _sigmoid(xs @ w + b)
        err = (p - y) * sw
        grad_w = (xs.T @ err + l2 * w) * mask
        grad_b = float(err.sum())
        w = np.maximum(w - step * grad_w, 0.0)
        b -= step * grad_b
    return Calibrator(
        mean=mean,
        scale=scale,
        weights=w,
        bias=b,
        n_positive=int((y > 0.5).sum()),
        n_negative=int((y <= 0.5).sum()),
    )
