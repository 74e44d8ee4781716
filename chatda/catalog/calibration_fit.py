"""Fitting a snapshot's calibrator from data every catalog has: its own hints and a background.

- **Positives, leave-one-hint-out**: a hint (or name) is matched as a query against the
  catalog with that text's row removed, and with every other row of its intent that contains
  it or is contained in it (a corpus-built intent has its whole text as one hint and each
  sentence as another: without this the answer would be on the row next door). The example
  is labelled 1 when its own intent comes out on top, 0 when another does: the model
  estimates the probability that *the top intent* is right.
- **Negatives, leave-one-intent-out**: a hint matched with its whole intent family (the
  intent, its ancestors and descendants) removed: a question about a service the catalog
  lacks, next to the services it has.
- **Negatives, background**: everyday Korean questions no app's service answers
  (``data/background_ko.txt``, written for chatda).
- **Clicks**, when there are some: a query a user typed and the intent they clicked in its
  answer (``search_events``, the most recent ``CHATDA_INTENT_CALIBRATION_CLICKS``), matched
  against the whole catalog; labelled 1 when the clicked intent comes out on top, 0 when
  another does. They are in-scope examples like the held-out hints, only real. An impression
  without a click is no example: a shown intent nobody clicked may still have been right (the
  answer was enough, a document was clicked instead, the user left), so it is no label.

The catalog's hints are embedded as queries already, so the hint-as-query similarities are
one product of the snapshot matrix with itself; the lexical leg reuses the snapshot's BM25 (a
removed row is masked, its terms stay in the collection statistics: a small approximation).
In-scope examples (the held-out hints, whether their intent won or not) and out-of-scope ones
weigh the same in the fit: the confidence is the probability that the top intent is right for
a query that is in scope half the time. It stays low for a catalog whose siblings look alike
(a held-out hint often lands on a sibling), which is why the default threshold, selected on a
development split, is 0.25 rather than 0.5.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache
from importlib.resources import files

import numpy as np

from chatda.catalog.calibration import FEATURES, Calibrator, candidate_features, fit_logistic
from chatda.catalog.snapshot import CatalogSnapshot, centroids
from chatda.settings import Settings

log = logging.getLogger(__name__)

_CHUNK = 256
MIN_POSITIVES = 20
"""Below this many leave-one-hint-out examples the fit is not trusted (raw rule instead)."""


@dataclass(frozen=True)
class FitOptions:
    """The calibration's hyper-parameters (selected on a development open-set split)."""

    max_queries: int = 1500
    """Per kind of example; larger catalogs are sampled (deterministically)."""
    intent_out_share: float = 0.25
    """Of the negatives' weight, the share of leave-one-intent-out (the rest: background)."""
    l2: float = 1e-3
    use: tuple[str, ...] = ("fused", "zscore")
    """The features the model weighs; the gap to the second did not help on split A, and
    leaving it out keeps the top two's confidences comparable for the ambiguity margin."""


@cache
def background_queries() -> tuple[str, ...]:
    """The shipped background set: one query a line, ``#`` comments."""
    text = files("chatda.catalog").joinpath("data/background_ko.txt").read_text("utf-8")
    return tuple(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


@dataclass(frozen=True)
class Examples:
    """Top-1 features of every example, its label and its weight in the fit."""

    features: np.ndarray
    labels: np.ndarray
    kinds: np.ndarray
    """0 = held-out hint, 1 = held-out intent, 2 = background, 3 = click."""


HINT, INTENT_OUT, BACKGROUND, CLICK = 0, 1, 2, 3


@dataclass(frozen=True)
class Clicks:
    """Distinct ``(query, clicked intent)`` pairs, embedded and analysed as queries."""

    vectors: np.ndarray
    terms: Sequence[Sequence[str]]
    intents: np.ndarray
    """The clicked intent's index in the snapshot."""


def intent_clicks(
    rows: Sequence[tuple[str, str]], intent_ids: Sequence[int]
) -> list[tuple[str, int]]:
    """Of ``(query, clicked id)`` rows, the distinct ``(query, intent id)`` pairs on those
    intents, in the rows' order: a query clicked a hundred times counts once per intent, so
    one popular query does not outweigh every other."""
    ids = {str(i): i for i in intent_ids}
    return list(dict.fromkeys((q, ids[c]) for q, c in rows if c in ids))


def embedded_clicks(
    snap: CatalogSnapshot,
    pairs: Sequence[tuple[str, int]],
    vectors: dict[str, np.ndarray],
    terms: dict[str, list[str]],
) -> Clicks | None:
    """``pairs`` on the snapshot's open intents, with their queries' vectors and terms."""
    index = {intent.id: n for n, intent in enumerate(snap.intents) if intent.open}
    kept = [(q, index[i]) for q, i in pairs if i in index]
    if not kept:
        return None
    return Clicks(
        vectors=np.stack([vectors[q] for q, _ in kept]),
        terms=[terms[q] for q, _ in kept],
        intents=np.array([n for _, n in kept], dtype=np.int64),
    )


def _family(snap: CatalogSnapshot) -> list[np.ndarray]:
    """For each intent, the indices of itself, its ancestors and its descendants."""
    index = {intent.id: n for n, intent in enumerate(snap.intents)}
    parent = [index.get(i.parent_id) if i.parent_id is not None else None for i in snap.intents]
    ancestors: list[set[int]] = []
    for n in range(snap.size):
        seen: set[int] = set()
        p = parent[n]
        while p is not None and p not in seen:
            seen.add(p)
            p = parent[p]
        ancestors.append(seen)
    family = [{n} | ancestors[n] for n in range(snap.size)]
    for n in range(snap.size):
        for a in ancestors[n]:
            family[a].add(n)
    return [np.fromiter(sorted(f), dtype=np.int64) for f in family]


class _Scorer:
    """Scores query vectors against the snapshot the way serving does, rows masked per query.

    A masked row leaves its intent's centroid too: a held-out hint must not find itself in its
    intent's mean.
    """

    def __init__(self, snap: CatalogSnapshot) -> None:
        self.snap = snap
        self.matrix = snap.matrix.float().cpu().numpy()
        self.centroids = snap.centroids.float().cpu().numpy()
        self.starts = np.flatnonzero(np.r_[True, np.diff(snap.row_intent) != 0])
        self.ends = np.r_[self.starts[1:], len(snap.row_intent)]
        self.visible = snap.open_mask.copy()

    def _to_centroids(self, vector: np.ndarray, masked: np.ndarray) -> np.ndarray:
        """The query's cosine to every intent's centroid, masked rows left out of theirs."""
        sims = self.centroids @ vector
        touched = self.snap.row_intent[masked]
        for intent in np.unique(touched):
            start, end = self.starts[intent], self.ends[intent]  # an intent's rows are contiguous
            kept = np.ones(end - start, dtype=bool)
            kept[masked[touched == intent] - start] = False
            if not kept.any():  # every row masked: the intent is out of this query's catalog
                sims[intent] = -np.inf
                continue
            rows = self.matrix[start:end][kept]
            sims[intent] = float(
                centroids(rows, np.zeros(len(rows), dtype=np.int64), 1)[0] @ vector
            )
        return sims

    def top1(
        self, vectors: np.ndarray, terms: Sequence[Sequence[str]], masks: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per query: the top-1 features and the top intent's index (``-1`` if none is left)."""
        snap = self.snap
        fusion = snap.fusion
        vectors = np.asarray(vectors, dtype=np.float32)
        feats = np.zeros((len(vectors), len(FEATURES)))
        tops = np.full(len(vectors), -1, dtype=np.int64)
        for q, masked in enumerate(masks):
            if q % _CHUNK == 0:  # a chunk of queries at a time: a big catalog's rows stay in memory
                sims = vectors[q : q + _CHUNK] @ self.matrix.T
            row = sims[q % _CHUNK].copy()
            row[masked] = -np.inf
            dense = np.maximum.reduceat(row, self.starts)
            if fusion.centroid:  # an intent with every row masked stays −inf
                to_centroid = self._to_centroids(vectors[q], masked)
                kept = np.isfinite(dense)
                dense[kept] += fusion.centroid * (to_centroid[kept] - dense[kept])
            lexical_rows = snap.lexical.scores(terms[q]).astype(np.float32)
            lexical_rows[masked] = 0.0
            lexical = np.maximum.reduceat(lexical_rows, self.starts)
            best = float(lexical.max()) if lexical.size else 0.0
            if best > 0:
                lexical = lexical / best
            visible = self.visible & np.isfinite(dense)
            if not visible.any():
                continue
            candidates = np.flatnonzero(visible)
            fused = dense[candidates] + fusion.lexical * lexical[candidates]
            order = candidates[np.argsort(-fused, kind="stable")[:2]]
            top_fused = dense[order] + fusion.lexical * lexical[order]
            vis_dense = dense[candidates]
            feats[q] = candidate_features(
                top_fused, dense[order], float(vis_dense.mean()), float(vis_dense.std())
            )[0]
            tops[q] = order[0]
        return feats, tops


def _sample(n: int, limit: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, size=limit, replace=False)) if n > limit else np.arange(n)


def _related(texts: list[str], rows: np.ndarray, held: int) -> np.ndarray:
    """The rows of one intent that hold the held-out text or are held in it (itself included)."""
    t = texts[held]
    return np.array([r for r in rows if t in texts[r] or texts[r] in t], dtype=np.int64)


def collect_examples(
    snap: CatalogSnapshot,
    terms: dict[str, list[str]],
    background_vectors: np.ndarray,
    background_terms: Sequence[Sequence[str]],
    options: FitOptions,
    clicks: Clicks | None = None,
) -> Examples:
    """The examples of one snapshot, of each kind (see the module docstring)."""
    rng = np.random.default_rng(0)
    scorer = _Scorer(snap)
    texts = snap.row_texts
    rows_of = [np.flatnonzero(snap.row_intent == n) for n in range(snap.size)]
    family = _family(snap)
    open_rows = np.flatnonzero(snap.open_mask[snap.row_intent])

    # leave-one-hint-out: rows whose intent keeps at least one row once the held-out is removed
    loho: list[tuple[int, np.ndarray]] = []
    for r in open_rows:
        masked = _related(texts, rows_of[snap.row_intent[r]], int(r))
        if masked.size < rows_of[snap.row_intent[r]].size:
            loho.append((int(r), masked))
    loho = [loho[i] for i in _sample(len(loho), options.max_queries, rng)]
    # leave-one-intent-out: any open row, its whole family removed
    lolo = [int(r) for r in _sample(open_rows.size, options.max_queries, rng)]
    lolo_rows = [open_rows[r] for r in lolo]
    lolo_masks = [
        np.concatenate([rows_of[f] for f in family[snap.row_intent[r]]]) for r in lolo_rows
    ]

    parts = []
    if loho:
        held = np.array([r for r, _ in loho])
        f, top = scorer.top1(
            scorer.matrix[held], [terms[texts[r]] for r in held], [m for _, m in loho]
        )
        ok = top >= 0
        parts.append((f[ok], (top[ok] == snap.row_intent[held][ok]).astype(float), HINT))
    if lolo_rows:
        held = np.array(lolo_rows)
        f, top = scorer.top1(scorer.matrix[held], [terms[texts[r]] for r in held], lolo_masks)
        ok = top >= 0
        parts.append((f[ok], np.zeros(int(ok.sum())), INTENT_OUT))
    if len(background_vectors):
        empty = np.zeros(0, dtype=np.int64)
        f, top = scorer.top1(
            background_vectors, background_terms, [empty] * len(background_vectors)
        )
        ok = top >= 0
        parts.append((f[ok], np.zeros(int(ok.sum())), BACKGROUND))
    if clicks is not None:
        empty = np.zeros(0, dtype=np.int64)
        f, top = scorer.top1(clicks.vectors, clicks.terms, [empty] * len(clicks.intents))
        ok = top >= 0
        parts.append((f[ok], (top[ok] == clicks.intents[ok]).astype(float), CLICK))
    if not parts:
        return Examples(np.zeros((0, len(FEATURES))), np.zeros(0), np.zeros(0, dtype=np.int64))
    return Examples(
        features=np.concatenate([p[0] for p in parts]),
        labels=np.concatenate([p[1] for p in parts]),
        kinds=np.concatenate([np.full(len(p[1]), p[2], dtype=np.int64) for p in parts]),
    )


def example_weights(examples: Examples, options: FitOptions) -> np.ndarray:
    """In-scope examples weigh as much as out-of-scope ones; among out-of-scope ones, the two
    kinds by the option."""
    y, kinds = examples.labels, examples.kinds
    w = np.zeros(len(y))
    groups = {
        "in_scope": (kinds == HINT) | (kinds == CLICK),
        "intent_out": kinds == INTENT_OUT,
        "background": kinds == BACKGROUND,
    }
    # a held-out hint (or a clicked query) whose intent lost is a negative of the in-scope
    # kind: it keeps its natural proportion against the positives, and a click weighs as much
    # as a hint
    in_scope = groups["in_scope"]
    if in_scope.any():
        w[in_scope] = 1.0 / in_scope.sum()
    share = options.intent_out_share
    if not groups["background"].any():
        share = 1.0
    if not groups["intent_out"].any():
        share = 0.0
    for name, part in (("intent_out", share), ("background", 1.0 - share)):
        mask = groups[name]
        if mask.any():
            w[mask] = part / mask.sum()
    return w


def fit_snapshot(
    snap: CatalogSnapshot,
    terms: dict[str, list[str]],
    background_vectors: np.ndarray,
    background_terms: Sequence[Sequence[str]],
    options: FitOptions | None = None,
    clicks: Clicks | None = None,
) -> Calibrator | None:
    """The snapshot's calibrator, or ``None`` when its hints give too few positives."""
    options = options or FitOptions()
    if snap.size < 2:
        return None
    examples = collect_examples(snap, terms, background_vectors, background_terms, options, clicks)
    positives = int((examples.kinds == HINT).sum())
    if positives < MIN_POSITIVES or examples.labels.min(initial=1.0) > 0.5:
        log.warning(
            "catalog v%s: %d leave-one-hint-out examples (< %d): no calibration, raw rule",
            snap.version,
            positives,
            MIN_POSITIVES,
        )
        return None
    if examples.labels.max(initial=0.0) < 0.5:
        return None
    fitted = fit_logistic(
        examples.features,
        examples.labels,
        example_weights(examples, options),
        l2=options.l2,
        use=options.use,
    )
    return replace(fitted, n_clicks=int((examples.kinds == CLICK).sum()))


@dataclass(frozen=True)
class CalibrationConfig:
    """The calibrated decision's settings: the global threshold on the confidence (per-intent
    ``threshold`` overrides win), the ambiguity margin, and the fit's hyper-parameters."""

    min_confidence: float
    ambiguity_margin: float
    options: FitOptions = FitOptions()
    max_clicks: int = 0
    """How many of the most recent intent clicks the fit reads (0: none)."""
    refit_clicks: int = 0
    """Refit once this many clicks on the catalog's intents arrived since the last fit (0:
    only when the catalog or the model changes)."""


def calibrate(
    snap: CatalogSnapshot,
    config: CalibrationConfig,
    terms: dict[str, list[str]],
    background_vectors: np.ndarray,
    background_terms: Sequence[Sequence[str]],
    clicks: Clicks | None = None,
) -> None:
    """Fit ``snap``'s calibrator and move its thresholds onto the confidence, before it serves.

    Without enough positives the snapshot keeps the raw rule at its global raw threshold: a
    per-intent override is a confidence now, and read as a cosine it would mean something else.
    """
    calibrator = fit_snapshot(
        snap, terms, background_vectors, background_terms, config.options, clicks
    )
    if calibrator is None:
        snap.thresholds = np.full(snap.size, snap.default_threshold, dtype=np.float32)
        return
    snap.calibrator = calibrator
    snap.ambiguity_margin = config.ambiguity_margin
    snap.thresholds = np.array(
        [i.threshold if i.threshold is not None else config.min_confidence for i in snap.intents],
        dtype=np.float32,
    )
    log.info("catalog v%s calibrated: %s", snap.version, calibrator.describe())


def config_from_settings(settings: Settings) -> CalibrationConfig | None:
    """``CHATDA_INTENT_DECISION=calibrated`` (the default) → the config; ``raw`` → ``None``."""
    if settings.intent_decision != "calibrated":
        return None
    return CalibrationConfig(
        settings.intent_min_confidence,
        settings.intent_ambiguity_margin,
        max_clicks=settings.intent_calibration_clicks,
        refit_clicks=settings.intent_calibration_refit_clicks,
    )
