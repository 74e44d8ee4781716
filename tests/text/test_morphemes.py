import threading

import pytest

from chatda.text.morphemes import Morphemes, default_morphemes, joined, terms


@pytest.fixture(scope="module")
def morphemes() -> Morphemes:
    return default_morphemes()


def test_default_is_cached() -> None:
    assert default_morphemes() is default_morphemes()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("송금 내역 조회", ["송금", "내역", "조회"]),
        ("송금 내역을 보여줘", ["송금", "내역", "보이"]),
        ("어제 10만원 보냈는데 확인해 줘", ["10", "만", "원", "보내", "확인"]),
        ("ATM 수수료 얼마야?", ["atm", "수수료", "얼마"]),
        ("漢字 표기", ["漢字", "표기"]),
        ("깨끗한 방", ["깨끗", "방"]),
    ],
)
def test_content_morphemes(morphemes: Morphemes, text: str, expected: list[str]) -> None:
    assert morphemes.terms(text) == expected


def test_particles_endings_pronouns_and_punctuation_are_dropped(morphemes: Morphemes) -> None:
    assert morphemes.terms("나는 너에게 송금을 보냈어요!!") == ["송금", "보내"]


def test_irregular_verbs_give_their_stem(morphemes: Morphemes) -> None:
    assert morphemes.terms("걸어서 갔다") == ["걷", "가"]


def test_query_and_document_share_terms(morphemes: Morphemes) -> None:
    document = morphemes.terms("해외 송금 한도는 하루 5만 달러입니다.")
    query = morphemes.terms("해외송금 한도")
    assert set(query) <= set(document)


def test_joined_has_single_spaces_and_no_inner_spaces(morphemes: Morphemes) -> None:
    assert morphemes.joined("  송금   내역을  확인했어요 ") == "송금 내역 확인"
    assert morphemes.joined("") == ""


def test_batch_matches_single(morphemes: Morphemes) -> None:
    texts = ["송금 내역", "환전 수수료는 얼마인가요", "", "Python 3.11"]
    assert morphemes.terms_batch(texts) == [morphemes.terms(text) for text in texts]
    assert morphemes.terms_batch([]) == []


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "\ud800",
        "\x00\x07",
        "😀🎉",
        "ㅋㅋㅋ ㅅㄱ",
        "テスト 日本語 English 한국어",
        "가" * 20_000,
    ],
)
def test_bad_input_never_raises(morphemes: Morphemes, text: str) -> None:
    terms = morphemes.terms(text)
    assert all(term and " " not in term for term in terms)


def test_user_words_stay_whole() -> None:
    analyzer = Morphemes(user_words=["카카오뱅크"])
    assert analyzer.terms("카카오뱅크로 송금했어요") == ["카카오뱅크", "송금"]
    analyzer.add_user_words(["토스페이", " 카카오뱅크 "])
    assert analyzer.terms("토스페이 결제와 카카오뱅크") == ["토스페이", "결제", "카카오뱅크"]
    kiwi = analyzer.kiwi
    analyzer.add_user_words(["토스페이"])
    assert analyzer.kiwi is kiwi  # nothing new: no rebuild


def test_concurrent_use(morphemes: Morphemes) -> None:
    results: list[list[str]] = []

    def work() -> None:
        for _ in range(20):
            results.append(morphemes.terms("송금 내역을 확인했어요"))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [["송금", "내역", "확인"]] * 80


def test_module_functions_use_the_default_analyzer() -> None:
    assert terms("송금 내역을") == ["송금", "내역"]
    assert joined("송금 내역을") == "송금 내역"
