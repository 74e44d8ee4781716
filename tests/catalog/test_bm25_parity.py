"""The serving BM25 must give rank-bm25's BM25Okapi scores exactly (the reference)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from rank_bm25 import BM25Okapi

from chatda.lexical.bm25 import BM25Index
from chatda.text.morphemes import default_morphemes

terms = st.sampled_from(
    ["송금", "이체", "환전", "달러", "대출", "금리", "카드", "atm", "적금", "x"]
)
corpora = st.lists(st.lists(terms, min_size=1, max_size=8), min_size=1, max_size=30)


@settings(max_examples=200, deadline=None)
@given(corpus=corpora, query=st.lists(terms, max_size=6))
def test_scores_equal_bm25okapi(corpus, query) -> None:
    assert np.allclose(BM25Index(corpus).scores(query), BM25Okapi(corpus).get_scores(query))


def test_parity_on_kiwi_terms_of_real_hints() -> None:
    hints = [
        "다른 계좌나 사용자에게 돈을 보내는 기능",
        "이체",
        "계좌 송금",
        "돈보내기",
        "외국에 있는 계좌로 돈 보내기",
        "원화를 외화로 바꾸기",
        "달러 환전",
        "신용대출 금리",
    ]
    m = default_morphemes()
    corpus = [m.terms(h) for h in hints]
    for q in ["해외로 돈 보내고 싶어", "환전 수수료", "계좌이체", "금리 비교"]:
        assert np.allclose(
            BM25Index(corpus).scores(m.terms(q)), BM25Okapi(corpus).get_scores(m.terms(q))
        )
