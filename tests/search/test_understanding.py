"""Query understanding: QWERTY-typed Korean and 초성 become what was meant, nothing else does."""

from __future__ import annotations

import pytest

from chatda.search.understanding import (
    MAX_CHARS,
    MODERN_ENGLISH,
    Understood,
    english_lookalikes,
    syllable_count,
    understand,
)
from chatda.suggest.entries import SuggestEntry
from chatda.suggest.index import SuggestionIndex
from chatda.text.keyboard import hangul_to_qwerty, qwerty_to_hangul

VOCABULARY = SuggestionIndex(
    [
        SuggestEntry("송금", "intent", "1"),
        SuggestEntry("송금 내역", "intent", "4"),
        SuggestEntry("환전", "intent", "3"),
        SuggestEntry("생각", "hint", "9"),  # same 초성 as 송금: the intent must win
        SuggestEntry("신규 가입", "title", "a-1"),
    ]
)
EMPTY = SuggestionIndex([])


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("thdrma", "송금"),
        ("THDRMA".lower(), "송금"),
        ("dkssudgktpdy", "안녕하세요"),
        ("ghkswjs tlscjd", "환전 신청"),
        ("thdrma sodur", "송금 내역"),
        ("kb thdrma", "kb 송금"),  # a Latin brand stays, the Korean keys convert
        ("qkq ajrdj", "밥 먹어"),  # one syllable converts beside a longer run
        ("2sus aksskTdj", "2년 만났어"),  # "sus" is in web2, but the whole query is Korean keys
    ],
)
def test_korean_typed_on_qwerty_is_converted(typed: str, meant: str) -> None:
    assert understand(typed, VOCABULARY) == Understood(meant, "qwerty")


@pytest.mark.parametrize(
    ("typed", "meant"),
    [("ㅅㄱ", "송금"), ("ㅅㄱ ㄴㅇ", "송금 내역"), ("ㅅㄱㄴㅇ", "송금 내역"), ("ㅎㅈ", "환전")],
)
def test_initials_expand_to_a_known_name(typed: str, meant: str) -> None:
    assert understand(typed, VOCABULARY) == Understood(meant, "chosung")


@pytest.mark.parametrize(
    "typed",
    [
        "ㅋㅋ",  # no ㅋㅋ word in the vocabulary: nothing is guessed
        "ㅅ",  # one initial says too little
        "ㅅㄱㄷ",  # initials only of a prefix ("송금 내역" is ㅅㄱㄴㅇ): exact only
    ],
)
def test_initials_without_an_exact_name_stay(typed: str) -> None:
    assert understand(typed, VOCABULARY) is None


@pytest.mark.parametrize(
    "typed",
    [
        "bank",
        "iphone",
        "iphone 15 pro",
        "pdf",
        "api key",
        "galaxy s24",
        "rtx 4090",
        "video",  # composes (퍙대): web2 keeps it English
        "dory",  # composes into a real word (애교): web2 keeps it English
        "django",  # composes and Kiwi likes 어무해: the hand-written list keeps it
        "total balance",
        "sorry",
        "qkq",  # 밥, but one syllable alone is too little evidence
        "go",
        "hello world",
    ],
)
def test_english_stays(typed: str) -> None:
    assert understand(typed, VOCABULARY) is None


@pytest.mark.parametrize(
    "typed", ["송금", "송금 내역", "kb 카드", "iphone 케이스", "thdrma 내역", "ㅠㅠ", "12345"]
)
def test_korean_and_mixed_input_stay(typed: str) -> None:
    assert understand(typed, VOCABULARY) is None


def test_nonsense_that_composes_is_not_korean() -> None:
    # "total" → 샛미 and "tutor" → 셔색 compose, but Kiwi knows no such words; without the
    # English lists they are still refused on the Korean side
    for word in ("total", "tutor", "sigma"):
        assert syllable_count(qwerty_to_hangul(word)) == 2
        assert understand(word, EMPTY, english=frozenset()) is None


def test_the_product_vocabulary_vouches_for_words_kiwi_does_not_know() -> None:
    typed = hangul_to_qwerty("기프트콘")  # gift voucher slang; Kiwi has no such word
    assert understand(typed, EMPTY) is None
    known = SuggestionIndex([SuggestEntry("기프트콘", "intent", "7")])
    assert understand(typed, known) == Understood("기프트콘", "qwerty")


def test_long_text_is_left_alone() -> None:
    typed = ("thdrma " * MAX_CHARS)[: MAX_CHARS + 1]
    assert understand(typed, VOCABULARY) is None


def test_english_lists_hold_only_words_that_compose() -> None:
    words = english_lookalikes()
    assert MODERN_ENGLISH | {"dory", "video", "sus"} <= words
    assert all(syllable_count(qwerty_to_hangul(word)) for word in words)
