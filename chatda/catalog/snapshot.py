"""An immutable, versioned in-memory catalog: the hint matrix on the model's device + BM25.

Queries are matched against every intent's name and hints (query → query'), exactly: one matrix
product per batch of queries, inside the batcher's pass, and only the top results leave the
device. A new snapshot is built off to the side and swapped in; a query keeps the snapshot it
started with.

An intent's dense score blends its best hint's cosine with the cosine to its *centroid*, the
normalised mean of its texts' vectors (a prototype, as in prototypical networks): the best
hint alone lets one loosely worded hint pull in unrelated questions and leaves a paraphrase
far from every single hint, while the centroid weighs what all of an intent's texts share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
import torch

from chatda.catalog.calibration import Calibrator, candidate_features
from chatda.catalog.models import Area, Intent
from chatda.catalog.tree import paths
from chatda.lexical.bm25 import BM25Index
from chatda.models.encoder import Encoder
from chatda.settings import Settings


@dataclass(frozen=True)
class Fusion:
    """How an intent's score is put together from its legs (issue #27, BENCHMARKS § 2)."""

    lexical: float
    """``fused = dense + lexical · BM25`` (BM25 scaled so the query's best intent gets 1)."""
    centroid: float
    """``dense = (1 − centroid) · best hint's cosine + centroid · centroid's cosine``; 0 scores
    the best hint alone, as before the centroid was added."""

    def __post_init__(self) -> None:
        if not (0.0 <= self.lexical <= 1.0 and 0.0 <= self.centroid <= 1.0):
            raise ValueError(f"fusion weights must lie in [0, 1]: {self}")

    @classmethod
    def from_settings(cls, settings: Settings) -> Fusion:
        return cls(settings.intent_lexical_weight, settings.intent_centroid_weight)


def centroids(vectors: np.ndarray, row_intent: np.ndarray, size: int) -> np.ndarray:
    """Each intent's centroid: the normalised sum of its rows' (unit) vectors."""
    sums = np.zeros((size, vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, row_intent, vectors)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.where(norms > 0, norms, 1.0)).astype(np.float32)


@dataclass(frozen=True)
class MatchContext:
    """Per-query inputs to the scorer: lexical scores, exposure area, how many to return."""

    lexical: np.ndarray | None
    area: Area | None
    top_k: int
    everything: bool = False


@dataclass(frozen=True)
class IntentScore:
    index: int
    score: float
    dense: float
    lexical: float
    row: int
    threshold: float
    """On ``value``: a calibrated confidence when the snapshot has a calibrator, else raw."""
    confidence: float | None = None
    """Calibrated probability that this intent is the right one (issue #27); ``None``: raw rule."""
    ambiguous: bool = False
    """Shown as one of the top two of an ambiguous answer (``chatda.catalog.decision``)."""

    @property
    def value(self) -> float:
        """What the threshold applies to: the confidence when calibrated, else the raw score."""
        return self.confidence if self.confidence is not None else self.score

    def passes(self, extra_threshold: float = 0.0) -> bool:
        return self.value >= self.threshold + extra_threshold

    @property
    def passed(self) -> bool:
        return self.passes()

    @property
    def margin(self) -> float:
        return self.value - self.threshold


@dataclass(frozen=True)
class IntentTensors:
    """A batch's per-intent scores on the device, (batch, intents) each, before visibility
    and top-k: the dense score (best text blended with the centroid, :class:`Fusion`), the
    lexical score, and the fused sum."""

    dense: torch.Tensor
    lexical: torch.Tensor
    fused: torch.Tensor


@dataclass
class CatalogSnapshot:
    version: int
    model_ref: str
    intents: list[Intent]
    paths: list[str]
    row_texts: list[str]
    row_intent: np.ndarray
    matrix: torch.Tensor
    centroids: torch.Tensor
    """(intents, dim): each intent's centroid (:func:`centroids`), on the matrix's device."""
    thresholds: np.ndarray
    open_mask: np.ndarray
    area_masks: dict[Area, np.ndarray]
    lexical: BM25Index
    fusion: Fusion
    default_threshold: float
    encoder: Encoder | None = None
    """The model the hints were embedded with: queries scored here must be encoded by it."""
    # issue #27: the calibrated decision (chatda.catalog.calibration); None keeps the raw rule
    calibrator: Calibrator | None = None
    ambiguity_margin: float = 0.0
    click_mark: int = 0
    """The newest stored click its calibration could read (``FeedbackStore.click_mark``):
    clicks after it count toward the next refit."""
    _device_state: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    @property
    def size(self) -> int:
        return len(self.intents)

    def _tensors(self) -> dict[str, torch.Tensor]:
        if not self._device_state:
            device = self.matrix.device
            self._device_state.update(
                row_intent=torch.as_tensor(self.row_intent, device=device, dtype=torch.long),
                thresholds=torch.as_tensor(self.thresholds, device=device, dtype=torch.float32),
                open=torch.as_tensor(self.open_mask, device=device),
                **{
                    f"area:{a.value}": torch.as_tensor(m, device=device)
                    for a, m in self.area_masks.items()
                },
            )
        return self._device_state

    def lexical_scores(self, terms: Sequence[str]) -> np.ndarray:
        """Per-intent best BM25 over its name and hints, scaled so the best intent gets 1."""
        rows = self.lexical.scores(terms)
        per_intent = np.zeros(self.size, dtype=np.float32)
        if rows.size:
            np.maximum.at(per_intent, self.row_intent, rows.astype(np.float32))
        top = float(per_intent.max()) if per_intent.size else 0.0
        return per_intent / top if top > 0 else per_intent

    def __call__(
        self, embeddings: torch.Tensor, contexts: Sequence[MatchContext]
    ) -> list[list[IntentScore]]:
        """The batcher post-step: score a batch of query embeddings against every intent."""
        return self.score(embeddings, contexts)[0]

    def score(
        self, embeddings: torch.Tensor, contexts: Sequence[MatchContext]
    ) -> tuple[list[list[IntentScore]], IntentTensors | None]:
        """The served answers and the per-intent tensors they were cut from (``None`` for an
        empty catalog): ``chatda eval`` ranks each method from the same tensors instead of a
        second pass over the catalog."""
        if self.size == 0:
            return [[] for _ in contexts], None
        t = self._tensors()
        device = self.matrix.device
        sims = (embeddings.to(self.matrix.dtype) @ self.matrix.T).float()  # (B, R)
        batch, n_rows = sims.shape
        index = t["row_intent"].expand(batch, n_rows)
        dense = torch.full((batch, self.size), _BELOW_ANY_COSINE, device=device)
        dense = dense.scatter_reduce(1, index, sims, reduce="amax", include_self=True)
        is_best = sims >= dense.gather(1, index)
        rows = torch.where(
            is_best, torch.arange(n_rows, device=device).expand(batch, n_rows), n_rows
        )
        best_row = torch.full((batch, self.size), n_rows, device=device, dtype=torch.long)
        best_row = best_row.scatter_reduce(1, index, rows, reduce="amin", include_self=True)
        if self.fusion.centroid:
            to_centroid = (embeddings.to(self.matrix.dtype) @ self.centroids.T).float()
            dense = torch.lerp(dense, to_centroid, self.fusion.centroid)
        lexical = torch.zeros((batch, self.size), device=device)
        for i, ctx in enumerate(contexts):
            if ctx.lexical is not None:
                lexical[i] = torch.as_tensor(ctx.lexical, device=device)
        fused = dense + self.fusion.lexical * lexical
        visible = torch.ones((batch, self.size), dtype=torch.bool, device=device)
        for i, ctx in enumerate(contexts):
            if not ctx.everything:
                visible[i] &= t["open"]
                if ctx.area is not None:
                    visible[i] &= t[f"area:{ctx.area.value}"]
        masked = torch.where(visible, fused, torch.full_like(fused, _HIDDEN))
        # at least two: the decision compares the top two (issue #27)
        k = min(self.size, max(2, *(self.size if c.everything else c.top_k for c in contexts)))
        top = torch.topk(masked, k, dim=1)
        picked = top.indices
        count = visible.sum(dim=1, keepdim=True).clamp(min=1)
        dense_mean = (dense * visible).sum(dim=1, keepdim=True) / count
        dense_std = (((dense - dense_mean) ** 2 * visible).sum(dim=1, keepdim=True) / count).sqrt()
        # one transfer for the whole batch: only the top k per query leave the device; the
        # stack's order is _Column's
        table = (
            torch.stack(
                [
                    top.values,
                    dense.gather(1, picked),
                    lexical.gather(1, picked),
                    best_row.gather(1, picked).float(),
                    t["thresholds"][picked],
                    picked.float(),
                    dense_mean.expand(batch, k),
                    dense_std.expand(batch, k),
                ]
            )
            .cpu()
            .numpy()
        )
        c = _Column
        results: list[list[IntentScore]] = []
        for i, ctx in enumerate(contexts):
            limit = self.size if ctx.everything else ctx.top_k
            shown = table[:, i, table[c.SCORE, i, :] > _HIDDEN]
            confidence: list[float | None] = [None] * shown.shape[1]
            if self.calibrator is not None and shown.shape[1]:
                features = candidate_features(
                    shown[c.SCORE], shown[c.DENSE], shown[c.DENSE_MEAN, 0], shown[c.DENSE_STD, 0]
                )
                confidence = [float(p) for p in self.calibrator.probability(features)]
            row = [
                IntentScore(
                    index=int(v[c.INTENT]),
                    score=float(v[c.SCORE]),
                    dense=float(v[c.DENSE]),
                    lexical=float(v[c.LEXICAL]),
                    row=int(v[c.ROW]),
                    threshold=float(v[c.THRESHOLD]),
                    confidence=p,
                )
                for v, p in zip(shown.T, confidence, strict=True)
            ]
            results.append(row[:limit])
        return results, IntentTensors(dense, lexical, fused)


_BELOW_ANY_COSINE = -2.0
"""Start of the per-intent max over its rows' cosines (which lie in [-1, 1])."""
_HIDDEN = -9.0
"""The fused score given to intents a query may not see: below any real score, so ``topk``
ranks them last and they are dropped before leaving the post-step."""


class _Column(IntEnum):
    """Rows of the post-step's result table, one column per candidate."""

    SCORE = 0
    DENSE = 1
    LEXICAL = 2
    ROW = 3
    THRESHOLD = 4
    INTENT = 5
    DENSE_MEAN = 6
    DENSE_STD = 7


def intent_texts(intent: Intent) -> list[str]:
    """What an intent is matched on: its name, then each hint (deduplicated)."""
    texts = [intent.name]
    texts.extend(h for h in intent.hints if h != intent.name)
    return texts


def build_snapshot(
    version: int,
    model_ref: str,
    intents: list[Intent],
    vectors: dict[str, np.ndarray],
    terms: dict[str, list[str]],
    device: str,
    default_threshold: float,
    fusion: Fusion,
    encoder: Encoder | None = None,
) -> CatalogSnapshot:
    """Assemble a snapshot from already-computed vectors and morpheme terms of every text."""
    intents = sorted(intents, key=lambda i: i.id)
    names = {i.id: i.name for i in intents}
    parents = {i.id: i.parent_id for i in intents}
    path_of = paths(names, parents)
    row_texts: list[str] = []
    row_intent: list[int] = []
    for idx, intent in enumerate(intents):
        for text in intent_texts(intent):
            row_texts.append(text)
            row_intent.append(idx)
    dim = next(iter(vectors.values())).shape[0] if vectors else 384
    matrix = np.vstack([vectors[t] for t in row_texts]) if row_texts else np.zeros((0, dim))
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    row_index = np.asarray(row_intent, dtype=np.int64)
    return CatalogSnapshot(
        version=version,
        model_ref=model_ref,
        intents=intents,
        paths=[path_of[i.id] for i in intents],
        row_texts=row_texts,
        row_intent=row_index,
        matrix=torch.as_tensor(matrix, dtype=dtype, device=device),
        centroids=torch.as_tensor(
            centroids(matrix, row_index, len(intents)), dtype=dtype, device=device
        ),
        thresholds=np.array(
            [i.threshold if i.threshold is not None else default_threshold for i in intents],
            dtype=np.float32,
        ),
        open_mask=np.array([i.open for i in intents], dtype=bool),
        area_masks={a: np.array([a in i.areas for i in intents], dtype=bool) for a in Area},
        lexical=BM25Index([terms[t] for t in row_texts]),
        fusion=fusion,
        default_threshold=default_threshold,
        encoder=encoder,
    )
