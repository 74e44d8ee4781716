"""``chatda eval --mode documents`` end to end: the CLI starts its private broker, milvus-lite and
an ingest worker process (``cli.eval_index``), the library ranks every method over that index,
and the JSON carries the metrics the data dictates."""

from __future__ import annotations

import pytest

from tests.evaluation.conftest import EvalRun

CORPUS = [
    {
        "id": "parking",
        "title": "파킹통장",
        "text": "파킹통장은 하루만 맡겨도 이자가 붙는 수시입출금 통장입니다.",
    },
    {
        "id": "exchange",
        "title": "환전 우대",
        "text": "여행 전에 달러와 엔화를 환전 우대율이 높은 은행에서 바꾸세요.",
    },
    {
        # not a valid post id: indexed under a stand-in, reported under this id again
        "id": "카드/분실",
        "title": "카드 분실 신고",
        "text": "신용카드를 잃어버리면 바로 분실 신고하고 재발급을 신청합니다.",
    },
    {
        "id": "loan",
        "title": "대출 상환",
        "text": "주택담보대출 원리금을 중도 상환하면 수수료가 부과될 수 있습니다.",
    },
    {
        "id": "pension",
        "title": "연금저축",
        "text": "연금저축펀드 납입액은 연말정산에서 세액공제를 받을 수 있습니다.",
    },
]
QUERIES = [
    {"id": "q1", "text": "파킹통장 하루 이자", "relevant": ["parking"]},
    {"id": "q2", "text": "엔화 환전 우대율", "relevant": ["exchange"]},
    {"id": "q3", "text": "신용카드 분실 신고 재발급", "relevant": ["카드/분실"]},
    {"id": "q4", "text": "주택담보대출 중도 상환 수수료", "relevant": ["loan"]},
    # the pension article answers it, but it is labelled with the loan: the one miss at rank 1
    {"id": "q5", "text": "연금저축펀드 세액공제", "relevant": ["loan"]},
    {"id": "q6", "text": "오늘 저녁 메뉴 추천해줘", "relevant": []},
]
METRIC_KEYS = {"recall@1", "recall@5", "recall@20", "mrr@10", "ndcg@10"}


@pytest.mark.slow
def test_eval_documents_cli_indexes_a_private_corpus_and_reports_the_data(
    run_eval: EvalRun,
) -> None:
    result = run_eval("documents", CORPUS, QUERIES)

    assert set(result) == {
        "mode",
        "n_queries",
        "default_method",
        "methods",
        "latency_ms",
        "corpus",
        "profiles",
        "model",
        "path",
        "by_path",
    }
    assert (result["mode"], result["n_queries"], result["corpus"]) == ("documents", 6, 5)
    assert result["default_method"] == "default"
    assert {"bm25", "dense", "rrf_equal", "default"} <= set(result["methods"])
    assert set(result["methods"]) - {"bm25", "dense", "rrf_equal"} == set(result["profiles"])
    assert all(set(m) == METRIC_KEYS for m in result["methods"].values())
    for method in ("bm25", "dense", "rrf_equal", "default"):
        assert result["methods"][method]["recall@1"] == 0.8, method  # 4 of the 5 labelled
    # dense ranks every article, so the mislabelled query's label is within the top 5
    assert result["methods"]["dense"]["recall@5"] == 1.0
    assert set(result["latency_ms"]) == {"p50", "p95"}
    assert result["latency_ms"]["p50"] > 0
    assert result["model"].startswith("e5-small-ko@")
    # the serving path is the in-memory tier (the corpus fits), and Milvus is measured beside it
    assert result["path"] == "memory" and set(result["by_path"]) == {"memory", "milvus"}
    assert result["by_path"]["memory"]["methods"] == result["methods"]
    memory, milvus = (result["by_path"][p]["methods"] for p in ("memory", "milvus"))
    assert memory["dense"] == milvus["dense"]  # exact inner products on both paths
