"""Hard-negative mining, the false-negative filter, silver pairs, and a short retrieval run."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from statistics import mean
from typing import Any

import numpy as np
import pytest

from chatda.models.registry import ModelRegistry, ModelVersion
from train import retrieval, silver
from train.data import Document, Triplet
from train.hard_negatives import Bm25Index, Encode, Mined, filter_false_negatives, mine
from train.prompts import Kind
from train.runner import TrainConfig

from .conftest import PASSAGES, QUERIES

COLLECTION = [
    *PASSAGES,
    "서울의 인구는 약 940만 명이며 한강이 도시를 가로지른다.",
    "김치찌개는 김치와 돼지고기를 넣고 끓인 찌개이다.",
    "세종대왕은 조선의 네 번째 왕으로 한글을 만들었다.",
    "한라산은 제주도 중앙에 있는 높이 1,947m의 화산이다.",
]


def test_mining_returns_bm25_neighbours_without_the_gold() -> None:
    index = Bm25Index(COLLECTION, str.split)
    mined = mine(index, [("서울 인구", COLLECTION[4])], k=3)
    assert len(mined[0].candidates) == 3
    assert COLLECTION[4] not in mined[0].candidates


def _fake_encode(vectors: dict[str, list[float]]) -> Encode:
    def encode(texts: Sequence[str], kind: Kind) -> np.ndarray:
        rows = np.asarray([vectors[t] for t in texts], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    return encode


def test_filter_drops_negatives_scored_above_the_positive_minus_margin() -> None:
    vectors = {
        "q": [1.0, 0.0],
        "pos": [0.8, 0.6],  # cos 0.8
        "false-neg": [0.9, 0.436],  # cos ≈ 0.9: above the positive → dropped
        "close": [0.78, 0.626],  # cos ≈ 0.78: kept at margin 0, dropped at margin 0.05
        "far": [0.0, 1.0],  # cos 0
    }
    mined = [Mined("q", "pos", ["false-neg", "close", "far"])]
    kept, report = filter_false_negatives(mined, _fake_encode(vectors), margin=0.0)
    assert kept[0].candidates == ["close", "far"]
    assert (report.candidates, report.dropped, report.pairs_without_negative) == (3, 1, 0)
    kept, report = filter_false_negatives(mined, _fake_encode(vectors), margin=0.05)
    assert kept[0].candidates == ["far"] and report.dropped == 2


def test_silver_pairs_come_from_the_document_itself() -> None:
    doc = Document(
        title="개인정보 보호법 일부개정법률안",
        body=(
            "개인정보를 보호한다. 정보주체의 권리를 강화한다. "
            "위반 시 과태료를 부과한다. 시행은 언제부터인가?"
        ),
    )
    chunks = silver.chunk_documents([doc], lambda t: t.split(". "), max_chars=1000)
    rng = random.Random(0)
    assert silver.title_pairs(chunks, per_title=3, rng=rng) == [(doc.title, chunks[0].text)]
    (query, passage), *_ = silver.cloze_pairs(chunks, per_chunk=1, rng=rng)
    assert query.endswith("?")  # a question-like sentence is preferred
    assert query not in passage


def test_entailment_pairs_take_one_entailed_hypothesis_per_premise() -> None:
    triplets = [
        Triplet("비가 많이 와서 경기가 취소되었다.", "경기가 열리지 않았다.", "경기가 열렸다."),
        Triplet("비가 많이 와서 경기가 취소되었다.", "비가 왔다.", "날씨가 맑았다."),
        Triplet("그는 서울에서 태어났다.", "그의 고향은 서울이다.", "그는 부산 출신이다."),
    ]
    pairs = silver.entailment_pairs(triplets, random.Random(0))
    assert sorted(p for _, p in pairs) == sorted({t.anchor for t in triplets})
    entailed = {t.positive: t.anchor for t in triplets}
    assert all(entailed[q] == p for q, p in pairs)


@pytest.mark.parametrize(
    ("overrides", "loss"),
    [
        ({}, "MultipleNegativesRankingLoss(scale=20)"),
        (
            {"batch_size": 8, "mini_batch_size": 2, "ranking_scale": 100.0},
            "CachedMultipleNegativesRankingLoss(scale=100)",
        ),
    ],
    ids=["plain", "gradcache"],
)
def test_short_retrieval_run_lowers_loss_and_records_mining(
    base_model: ModelVersion,
    tmp_registry: ModelRegistry,
    tiny_config: TrainConfig,
    overrides: dict[str, Any],
    loss: str,
) -> None:
    config = replace(tiny_config, **overrides)
    pairs = list(zip(QUERIES, PASSAGES, strict=True)) * 2
    d = retrieval.RetrievalData(pairs=pairs, collection=COLLECTION, sources={"test": len(pairs)})
    index = Bm25Index(COLLECTION, str.split)
    version = retrieval.train(
        tmp_registry, base_model, d, index, config, negatives_k=2, filter_margin=0.0
    )
    m = version.manifest
    assert m.version.startswith("retrieval-") and m.parent == base_model.manifest.ref
    assert m.training is not None
    assert m.training["loss"] == loss
    assert m.training["hard_negatives"]["filter"]["candidates"] == 2 * len(pairs)
    curve = m.training["loss_curve"]
    assert mean(curve[-2:]) < mean(curve[:2])
