"""An intent's dense score blends its best hint with its centroid (issue #27), in serving and in
the calibration fit alike."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest
import torch

from chatda.catalog.calibration_fit import _Scorer
from chatda.catalog.file_format import parse_catalog
from chatda.catalog.models import Intent
from chatda.catalog.snapshot import (
    CatalogSnapshot,
    Fusion,
    MatchContext,
    build_snapshot,
    centroids,
    intent_texts,
)
from chatda.models.encoder import Encoder
from chatda.text.morphemes import default_morphemes
from tests.catalog.conftest import SMALL_CATALOG

QUERIES = ["해외로 돈 보내고 싶어", "환전", "대출 이자 싸게", "카드값 나눠 내기"]


def _intents(text: str = SMALL_CATALOG) -> list[Intent]:
    return [Intent(**i.model_dump(), updated_at=datetime.now(UTC)) for i in parse_catalog(text)]


def _snapshot(encoder: Encoder, intents: list[Intent], fusion: Fusion) -> CatalogSnapshot:
    texts = sorted({t for i in intents for t in intent_texts(i)})
    vectors = dict(zip(texts, encoder.encode(texts, "query"), strict=True))
    terms = dict(zip(texts, default_morphemes().terms_batch(texts), strict=True))
    return build_snapshot(1, "test", intents, vectors, terms, "cpu", 0.9, fusion)


def test_centroid_is_the_normalised_mean_of_an_intents_rows() -> None:
    rows = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)
    got = centroids(rows, np.array([0, 0, 1]), 2)
    assert got[0] == pytest.approx([2**-0.5, 2**-0.5])
    assert got[1] == pytest.approx([0.6, 0.8])  # one row: the row itself


@pytest.mark.parametrize("weight", [0.0, 0.7, 1.0])
def test_served_dense_blends_best_hint_and_centroid(encoder: Encoder, weight: float) -> None:
    snap = _snapshot(encoder, _intents(), Fusion(lexical=0.06, centroid=weight))
    vectors = encoder.encode(QUERIES, "query")
    served = snap(torch.as_tensor(vectors), [MatchContext(None, None, 5, everything=True)] * 4)
    matrix = snap.matrix.numpy()
    mean = centroids(matrix, snap.row_intent, snap.size)
    for vector, scores in zip(vectors, served, strict=True):
        for s in scores:
            rows = matrix[snap.row_intent == s.index]
            best, to_centroid = float((rows @ vector).max()), float(mean[s.index] @ vector)
            assert s.dense == pytest.approx((1 - weight) * best + weight * to_centroid, abs=1e-5)
            # the matched hint stays the intent's best single row, whatever the blend
            assert snap.row_intent[s.row] == s.index
            assert float(matrix[s.row] @ vector) == pytest.approx(best, abs=1e-5)


def test_held_out_hint_leaves_its_intents_centroid_in_the_fit(encoder: Encoder) -> None:
    """The fit's masked scoring equals a snapshot built without the held-out hint (lexical
    weight 0: BM25's statistics are the one documented approximation)."""
    fusion = Fusion(lexical=0.0, centroid=0.7)
    intents = _intents()
    snap = _snapshot(encoder, intents, fusion)
    held = snap.row_texts.index("해외 계좌로 송금")
    intent = snap.intents[snap.row_intent[held]]
    without = [
        i.model_copy(update={"hints": [h for h in i.hints if h != "해외 계좌로 송금"]})
        if i.id == intent.id
        else i
        for i in intents
    ]
    reference = _snapshot(encoder, without, fusion)
    vector = snap.matrix[held : held + 1].numpy()
    nothing = [np.zeros(0, dtype=np.int64)]
    features, top = _Scorer(snap).top1(vector, [[]], [np.array([held])])
    expected, expected_top = _Scorer(reference).top1(vector, [[]], nothing)
    assert top[0] == expected_top[0]
    assert features[0] == pytest.approx(expected[0], abs=1e-5)
    # and the reference is what serving answers for that snapshot, blend included
    served = reference(torch.as_tensor(vector), [MatchContext(None, None, 2)])[0][0]
    assert (served.index, served.score, served.dense) == pytest.approx(
        (expected_top[0], expected[0][0], expected[0][1]), abs=1e-5
    )
    unmasked, _ = _Scorer(snap).top1(vector, [[]], nothing)
    assert unmasked[0][0] > features[0][0] + 0.01  # its own row and centroid would lift it


def test_an_intent_with_every_row_masked_leaves_the_fit_query(encoder: Encoder) -> None:
    snap = _snapshot(encoder, _intents(), Fusion(lexical=0.06, centroid=0.7))
    family = np.flatnonzero(snap.row_intent == 0)  # intent 1, 송금, whole
    vector = snap.matrix[family[1] : family[1] + 1].numpy()
    features, top = _Scorer(snap).top1(vector, [["이체"]], [family])
    assert top[0] not in (-1, 0) and np.isfinite(features[0]).all()


def test_fusion_weights_are_bounded() -> None:
    with pytest.raises(ValueError):
        Fusion(lexical=0.06, centroid=1.5)


def test_half_precision_matrices_give_the_same_answers(encoder: Encoder) -> None:
    """On CUDA the hint matrix and the centroids are fp16 (``build_snapshot``). No GPU is
    here, so the same snapshot is scored on the CPU with its matrices in half precision: the
    per-intent scores must match fp32's to fp16's precision."""
    snap = _snapshot(encoder, _intents(), Fusion(lexical=0.06, centroid=0.7))
    half = replace(
        snap, matrix=snap.matrix.half(), centroids=snap.centroids.half(), _device_state={}
    )
    vectors = torch.as_tensor(encoder.encode(QUERIES, "query"))
    contexts = [MatchContext(None, None, 5, everything=True)] * len(QUERIES)
    for full, reduced in zip(snap(vectors, contexts), half(vectors, contexts), strict=True):
        by_intent = {s.index: s for s in reduced}
        assert by_intent.keys() == {s.index for s in full}
        for s in full:
            assert by_intent[s.index].dense == pytest.approx(s.dense, abs=2e-3)
            assert by_intent[s.index].score == pytest.approx(s.score, abs=2e-3)
