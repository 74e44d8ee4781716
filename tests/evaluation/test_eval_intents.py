"""``chatda eval --mode intents`` with the real model: its JSON, metrics that follow the data, and
the concurrent run giving exactly the numbers of matching the queries one by one."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from chatda.evaluation.data import CorpusItem, EvalClick, EvalQuery
from chatda.evaluation.intents_eval import METHODS, evaluate_intents
from chatda.evaluation.metrics import summarise
from chatda.models.encoder import Encoder
from chatda.settings import Settings
from chatda.text.normalize import normalize_query
from tests.evaluation.catalog_over import catalog_over
from tests.evaluation.conftest import EvalRun
from tests.evaluation.demo_set import demo_set

CORPUS = [
    {"id": "transfer", "title": "송금", "text": "다른 계좌로 돈을 보내는 기능. 계좌이체를 합니다."},
    {"id": "exchange", "title": "환전", "text": "원화를 달러나 엔화로 바꾸는 기능."},
    {"id": "card", "title": "카드 분실 신고", "text": "잃어버린 카드를 정지하고 재발급합니다."},
    {"id": "loan", "title": "대출 상환", "text": "빌린 돈을 갚고 남은 대출 금액을 확인합니다."},
    {"id": "points", "title": "포인트 조회", "text": "적립된 포인트와 사용 내역을 봅니다."},
]
QUERIES = [
    # each intent's name, verbatim: its intent must rank first ...
    {"id": "q1", "text": "송금", "relevant": ["transfer"]},
    {"id": "q2", "text": "환전", "relevant": ["exchange"]},
    {"id": "q3", "text": "카드 분실 신고", "relevant": ["card"]},
    {"id": "q4", "text": "대출 상환", "relevant": ["loan"]},
    # ... so a query labelled with another intent is the one miss at rank 1
    {"id": "q5", "text": "포인트 조회", "relevant": ["loan"]},
    {"id": "q6", "text": "오늘 저녁 메뉴 추천해줘", "relevant": []},
]
METRIC_KEYS = {"recall@1", "recall@5", "recall@20", "mrr@10", "ndcg@10"}


@pytest.mark.slow
@pytest.mark.parametrize(("threshold", "no_match_rejected"), [(0.0, 0.0), (1.0, 1.0)])
def test_eval_intents_cli_reports_the_data(
    run_eval: EvalRun,
    monkeypatch: pytest.MonkeyPatch,
    threshold: float,
    no_match_rejected: float,
) -> None:
    """A name matches itself with dense 1 plus the full lexical nudge, so it passes even a
    threshold of 1; the unrelated query passes 0 and cannot reach 1."""
    monkeypatch.setenv("CHATDA_INTENT_THRESHOLD", str(threshold))
    result = run_eval("intents", CORPUS, QUERIES)

    assert set(result) == {
        "mode",
        "n_queries",
        "default_method",
        "methods",
        "latency_ms",
        "thresholds",
        "decision",
        "catalog_embeddings",
        "model",
    }
    assert (result["mode"], result["n_queries"], result["default_method"]) == (
        "intents",
        6,
        "fused",
    )
    assert set(result["methods"]) == set(METHODS)
    assert all(set(m) == METRIC_KEYS for m in result["methods"].values())
    assert set(result["latency_ms"]) == {"p50", "p95"}
    assert result["latency_ms"]["p50"] > 0
    fused = result["methods"]["fused"]
    assert fused["recall@1"] == 0.8  # 4 of the 5 labelled queries
    assert fused["recall@5"] == 1.0  # five intents: every one is in the top 5
    assert 0.8 < fused["mrr@10"] < 0.9 + 1e-9  # the miss ranks its label 2nd to 5th
    assert result["thresholds"] == {
        "threshold": threshold,
        "answered_correctly": 0.8,
        "no_match_queries": 1,
        "no_match_rejected": no_match_rejected,
    }
    # five intents of one or two texts: too few held-out hints to calibrate, so the raw rule
    decision = result["decision"]
    assert (decision["rule"], decision["n_in_scope"], decision["n_out_of_scope"]) == ("raw", 5, 1)
    assert decision["old_rule"]["in_scope_correct"] == 0.8
    assert decision["old_rule"]["out_of_scope_rejected"] == no_match_rejected
    assert decision["served"]["ambiguous_share"] == 0.0
    assert result["model"].startswith("e5-small-ko@")


@pytest.mark.slow
def test_a_second_run_reads_the_catalog_from_the_data_dir_and_prints_the_same(
    run_eval: EvalRun,
) -> None:
    """The catalog is the evaluation's fixed cost (38 % of a 10k-query run): a second run of
    one model over the same corpus reads its vectors from the data dir's embedding cache, the
    one the API uses, and every number but the latencies stays the same."""
    first = run_eval("intents", CORPUS, QUERIES)
    second = run_eval("intents", CORPUS, QUERIES)
    catalog = first["catalog_embeddings"]
    assert catalog["cached"] == 0 and catalog["embedded"] > len(CORPUS)
    assert second["catalog_embeddings"] == {"cached": catalog["embedded"], "embedded": 0}
    volatile = {"latency_ms", "catalog_embeddings"}
    assert {k: v for k, v in second.items() if k not in volatile} == {
        k: v for k, v in first.items() if k not in volatile
    }


async def _one_by_one(
    encoder: Encoder, corpus: list[CorpusItem], queries: list[EvalQuery], settings: Settings
) -> dict:
    """The oracle: ``CatalogService.match`` awaited for each query in turn."""
    rankings: dict[str, list[list[str]]] = {m: [] for m in METHODS}
    shown: list[str | None] = []
    async with catalog_over(encoder, corpus, settings) as (service, _):
        for q in queries:
            snap, scores, _ = await service.match(
                normalize_query(q.text, 1000).text, everything=True
            )
            name = {s.index: corpus[snap.intents[s.index].id - 1].id for s in scores}
            rankings["fused"].append([name[s.index] for s in scores])
            for method in ("dense", "lexical"):
                ranked = sorted(scores, key=lambda s, m=method: -getattr(s, m))
                rankings[method].append([name[s.index] for s in ranked])
            shown.append(next((name[s.index] for s in scores if s.passed), None))
    relevants = [set(q.relevant) for q in queries]
    labelled = [(s, q) for s, q in zip(shown, queries, strict=True) if q.relevant]
    unlabelled = [s for s, q in zip(shown, queries, strict=True) if not q.relevant]
    return {
        "methods": {m: summarise(rankings[m], relevants) for m in METHODS},
        "answered_correctly": round(sum(s in q.relevant for s, q in labelled) / len(labelled), 4),
        "no_match_rejected": round(sum(s is None for s in unlabelled) / len(unlabelled), 4),
    }


def _passes() -> float:
    return REGISTRY.get_sample_value("chatda_batch_size_count") or 0.0


@pytest.mark.slow
def test_concurrent_evaluation_equals_matching_one_by_one(encoder: Encoder, tmp_path: Path) -> None:
    corpus, queries = demo_set()
    settings = Settings(intent_threshold=0.86, intent_lexical_weight=0.06, data_dir=tmp_path)
    expected = asyncio.run(_one_by_one(encoder, corpus, queries, settings))

    before = _passes()
    result = evaluate_intents(encoder, corpus, queries, settings, latency_sample=0)
    passes = _passes() - before

    # one by one, the queries alone would take a pass each; the catalog takes a few more
    assert passes < len(queries), "the queries did not share model passes"
    assert result["methods"] == expected["methods"]
    assert result["thresholds"]["answered_correctly"] == expected["answered_correctly"]
    assert result["thresholds"]["no_match_rejected"] == expected["no_match_rejected"]
    assert result["thresholds"]["no_match_queries"] == sum(not q.relevant for q in queries)
    assert result["n_queries"] == len(queries)


@pytest.mark.slow
def test_clicks_given_to_the_evaluation_enter_the_calibration(
    encoder: Encoder, tmp_path: Path
) -> None:
    """``--clicks``: the evaluation's catalog reads users' clicks as the API's does, so their
    effect on the decision can be measured. Each query is clicked on its own labelled item,
    twice (one example each); a click on an id the corpus lacks is refused."""
    corpus, queries = demo_set()
    labelled = [q for q in queries if q.relevant][:12]
    clicks = [EvalClick(text=q.text, clicked=q.relevant[0]) for q in labelled for _ in range(2)]
    settings = Settings(data_dir=tmp_path)
    without = evaluate_intents(encoder, corpus, queries, settings, latency_sample=0)
    with_clicks = evaluate_intents(encoder, corpus, queries, settings, 0, clicks)
    assert without["decision"]["served"]["calibrator"]["clicks"] == 0
    assert with_clicks["decision"]["served"]["calibrator"]["clicks"] == len(labelled)
    assert with_clicks["methods"] == without["methods"]  # the ranking does not learn from them
    with pytest.raises(ValueError, match="not in the corpus"):
        evaluate_intents(
            encoder, corpus, queries, settings, 0, [EvalClick(text="송금", clicked="no-such-id")]
        )
