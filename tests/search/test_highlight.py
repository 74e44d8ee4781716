"""Snippet windows and highlight spans of query morphemes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatda.search.highlight import find_spans, query_needles, snippet
from chatda.text.morphemes import Morphemes, default_morphemes
from tests.text.strategies import hangul_text


@pytest.fixture(scope="module")
def morphemes() -> Morphemes:
    return default_morphemes()


def marked(text: str, spans: list[tuple[int, int]]) -> list[str]:
    return [text[a:b] for a, b in spans]


def test_compound_lights_up_whole_and_its_parts_alone(morphemes: Morphemes) -> None:
    needles = query_needles("해외송금 수수료", morphemes)
    text = "해외송금을 보낼 때는 송금 수수료와 환율 우대를 함께 봐야 합니다."
    assert marked(text, find_spans(text, needles)) == ["해외송금", "송금", "수수료"]


def test_inflected_verb_is_found_by_its_surface(morphemes: Morphemes) -> None:
    needles = query_needles("어제 보냈어", morphemes)
    assert "보냈" in needles and "어제" not in needles  # 어제 is an adverb, not a content term
    text = "어제 보냈는데 아직 도착하지 않았어요"
    assert marked(text, find_spans(text, needles)) == ["보냈"]


def test_particles_and_endings_are_not_highlighted(morphemes: Morphemes) -> None:
    needles = query_needles("송금하는 방법은", morphemes)
    assert set(needles) == {"송금", "방법"}


def test_latin_terms_match_case_insensitively(morphemes: Morphemes) -> None:
    needles = query_needles("iphone 케이스", morphemes)
    text = "iPhone 전용 케이스 IPHONE"
    assert marked(text, find_spans(text, needles)) == ["iPhone", "케이스", "IPHONE"]


def test_single_syllable_term_only_at_a_word_start() -> None:
    text = "차 보험료와 차이가 큰 자동차"
    assert find_spans(text, ["차"]) == [(0, 1), (7, 8)]  # not the 차 inside 자동차


def test_overlapping_matches_merge() -> None:
    assert find_spans("파킹통장", ["파킹통장", "통장", "파킹"]) == [(0, 4)]


def test_no_content_terms_no_needles(morphemes: Morphemes) -> None:
    assert query_needles("ㅋㅋㅋ ?!", morphemes) == ()


def test_short_text_is_its_own_snippet_trimmed() -> None:
    assert snippet("짧은 글", [(0, 2)], 50) == ("짧은 글", [(0, 2)])
    assert snippet(" 짧은 글. ", [(1, 3)], 50) == ("짧은 글.", [(0, 2)])


def test_window_starts_before_the_first_match_at_a_word_edge() -> None:
    text = "가나다 " * 30 + "송금 수수료 안내" + " 라마바" * 30
    at = text.index("송금")
    window, spans = snippet(text, [(at, at + 2)], 60)
    assert len(window) <= 60
    assert window[spans[0][0] : spans[0][1]] == "송금"
    assert 0 < spans[0][0] < 30  # some context before the match
    assert text.find(window) > 0 and not window.startswith(" ") and not window.endswith(" ")
    assert text[text.find(window) - 1] == " "  # cut at a space, not inside a word


def test_window_clips_spans_at_its_edges() -> None:
    text = "가" * 100
    window, spans = snippet(text, [(0, 5), (95, 100)], 40)
    assert window == "가" * 40 and spans == [(0, 5)]


@given(text=hangul_text, query=hangul_text, width=st.integers(min_value=1, max_value=60))
def test_spans_always_point_into_the_snippet(text: str, query: str, width: int) -> None:
    needles = query_needles(query.strip() or "가", default_morphemes())
    spans = find_spans(text, needles)
    window, shifted = snippet(text, spans, width)
    assert len(window) <= width or window == text.strip()
    for a, b in shifted:
        assert 0 <= a < b <= len(window)
