import pytest

from chatda.suggest.entries import SuggestEntry, Suggestion
from chatda.suggest.index import SuggestionIndex

ENTRIES = [
    SuggestEntry("송금", "intent", "transfer", 100),
    SuggestEntry("송금 내역", "intent", "transfer_history", 50),
    SuggestEntry("송금 한도", "hint", None, 10),
    SuggestEntry("환전", "intent", "fx", 80),
    SuggestEntry("환전 수수료", "title", "article-1", 5),
    SuggestEntry("내역 조회", "query", None, 3),
    SuggestEntry("카카오뱅크 송금", "title", "article-2", 1),
    SuggestEntry("KB국민카드 결제", "title", "article-3", 2),
    SuggestEntry("계좌 개설", "intent", "open_account", 20),
    SuggestEntry("송금", "query", None, 500),
]


@pytest.fixture(scope="module")
def index() -> SuggestionIndex:
    return SuggestionIndex(ENTRIES)


def texts(suggestions: list[Suggestion]) -> list[str]:
    return [s.text for s in suggestions]


def first(index: SuggestionIndex, typed: str) -> Suggestion:
    return index.suggest(typed)[0]


@pytest.mark.parametrize("typed", ["송", "송그", "송금", "ㅅ", "송ㄱ", "송금 "])
def test_prefix_while_typing(index: SuggestionIndex, typed: str) -> None:
    found = index.suggest(typed)
    assert texts(found)[:3] == ["송금", "송금 내역", "송금 한도"]
    assert {s.match for s in found[:3]} == {"prefix"}


@pytest.mark.parametrize("typed", ["송금ㄴ", "송금내", "송금 내", "송금내역"])
def test_prefix_across_a_space(index: SuggestionIndex, typed: str) -> None:
    top = first(index, typed)
    assert (top.text, top.match) == ("송금 내역", "prefix")


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("ㅅㄱ", "송금"), ("ㅅㄱㄴㅇ", "송금 내역"), ("ㅅㄱ ㄴㅇ", "송금 내역"), ("ㅎㅈ", "환전")],
)
def test_chosung(index: SuggestionIndex, typed: str, expected: str) -> None:
    top = first(index, typed)
    assert (top.text, top.match) == (expected, "chosung")


def test_chosung_typed_as_an_ime_cluster() -> None:
    index = SuggestionIndex([SuggestEntry("공시 안내", "title", "article-9", 1)])
    found = index.suggest("ㄳ")  # what an IME shows after ㄱ,ㅅ
    assert [(s.text, s.match, s.highlight) for s in found] == [("공시 안내", "chosung", [(0, 2)])]


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("thdrma", "송금"), ("thdrmaso", "송금 내역"), ("ghkswjs", "환전"), ("THDRMA", None)],
)
def test_qwerty(index: SuggestionIndex, typed: str, expected: str | None) -> None:
    found = [s for s in index.suggest(typed) if s.match == "qwerty"]
    if expected is None:
        assert not found  # shifted keys are different jamo: ㅆ, ㄲ
    else:
        assert found[0].text == expected


def test_qwerty_after_a_latin_brand(index: SuggestionIndex) -> None:
    top = first(index, "KBrnralsz")
    assert (top.text, top.match) == ("KB국민카드 결제", "qwerty")


@pytest.mark.parametrize(
    ("typed", "expected"), [("송긍", "송금"), ("환젼", "환전"), ("계좌 게설", "계좌 개설")]
)
def test_typo(index: SuggestionIndex, typed: str, expected: str) -> None:
    top = first(index, typed)
    assert (top.text, top.match) == (expected, "typo")


def test_typo_budget_grows_with_length(index: SuggestionIndex) -> None:
    assert index.suggest("솜") == []  # 3 keystrokes: no typo allowed
    assert first(index, "환저 수수려").text == "환전 수수료"  # 2 edits over 10 keystrokes


def test_infix_ranks_below_prefix(index: SuggestionIndex) -> None:
    found = index.suggest("내역")
    assert [(s.text, s.match) for s in found] == [("내역 조회", "prefix"), ("송금 내역", "infix")]


def test_chosung_infix(index: SuggestionIndex) -> None:
    found = index.suggest("ㄴㅇ")
    assert ("송금 내역", "infix") in [(s.text, s.match) for s in found]


def test_latin_prefix_is_case_insensitive(index: SuggestionIndex) -> None:
    top = first(index, "kb")
    assert (top.text, top.match, top.highlight) == ("KB국민카드 결제", "prefix", [(0, 2)])


def test_match_quality_orders_results() -> None:
    index = SuggestionIndex(
        [
            SuggestEntry("송금", "intent", None, 0),
            SuggestEntry("ㅅㄱ 모음", "hint", None, 1000),
            SuggestEntry("새 송금", "hint", None, 1000),
        ]
    )
    assert [(s.text, s.match) for s in index.suggest("ㅅㄱ")] == [
        ("ㅅㄱ 모음", "prefix"),
        ("송금", "chosung"),
        ("새 송금", "infix"),
    ]
    scores = [s.score for s in index.suggest("ㅅㄱ")]
    assert scores == sorted(scores, reverse=True)


def test_shorter_then_more_popular_first() -> None:
    index = SuggestionIndex(
        [
            SuggestEntry("환전 신청 안내", "hint", None, 0),
            SuggestEntry("환전 신청", "hint", None, 0),
            SuggestEntry("환전 예약", "hint", None, 50),
        ]
    )
    assert texts(index.suggest("환전")) == ["환전 예약", "환전 신청", "환전 신청 안내"]


def test_duplicate_text_keeps_the_best_kind_and_popularity(index: SuggestionIndex) -> None:
    found = [s for s in index.suggest("송금") if s.text == "송금"]
    assert len(found) == 1
    assert (found[0].kind, found[0].ref) == ("intent", "transfer")
    assert len(index) == len(ENTRIES) - 1


def test_highlights(index: SuggestionIndex) -> None:
    assert first(index, "송그").highlight == [(0, 2)]
    assert first(index, "송금ㄴ").highlight == [(0, 2), (3, 4)]
    assert first(index, "ㅅㄱㄴㅇ").highlight == [(0, 2), (3, 5)]
    assert first(index, "thdrma").highlight == [(0, 2)]
    infix = next(s for s in index.suggest("내역") if s.match == "infix")
    assert infix.highlight == [(3, 5)]


def test_limit(index: SuggestionIndex) -> None:
    assert len(index.suggest("송", limit=2)) == 2
    assert index.suggest("송", limit=0) == []


@pytest.mark.parametrize(
    "typed",
    ["", " ", "\t\n", "\ud800", "\x00\x07", "😀", "!!!", "ﾃｽﾄ", "zzzz", "송" * 100, "a" * 10_000],
)
def test_garbage_gives_nothing(index: SuggestionIndex, typed: str) -> None:
    assert index.suggest(typed) == []


def test_empty_index() -> None:
    assert SuggestionIndex([]).suggest("송금") == []
    assert len(SuggestionIndex([SuggestEntry("  ", "hint")])) == 0


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValueError):
        SuggestEntry("송금", "banner")


def test_bad_popularity_counts_as_none() -> None:
    index = SuggestionIndex(
        [
            SuggestEntry("송금", "intent", None, float("nan")),
            SuggestEntry("송금 내역", "hint", None, -5),
        ]
    )
    assert texts(index.suggest("송")) == ["송금", "송금 내역"]


def test_rebuild_gives_a_new_index(index: SuggestionIndex) -> None:
    rebuilt = SuggestionIndex([*ENTRIES, SuggestEntry("송금 예약", "intent", "schedule", 1)])
    assert rebuilt is not index
    assert "송금 예약" in texts(rebuilt.suggest("송금"))
    assert "송금 예약" not in texts(index.suggest("송금"))
