from hypothesis import given

from chatda.text.normalize import (
    Normalized,
    clean,
    decode_wire,
    normalize,
    normalize_document,
    normalize_query,
)
from tests.text.strategies import any_text


def test_query_collapses_whitespace_and_strips() -> None:
    assert normalize_query("  송금\t내역\n\n 조회 ") == Normalized("송금 내역 조회", False)


def test_document_keeps_paragraph_breaks() -> None:
    text = "첫 문단  입니다.\r\n둘째 줄\r\n\r\n\r\n\r\n새 문단\u2028끝 "
    assert normalize_document(text).text == "첫 문단 입니다.\n둘째 줄\n\n새 문단\n끝"


def test_nfkc_folds_fullwidth_and_ideographic_space() -> None:
    assert normalize_query("ＫＢ국민카드　１２３").text == "KB국민카드 123"


def test_compatibility_jamo_survive_nfkc() -> None:
    assert normalize_query("ㅅㄱ ㄴㅇ").text == "ㅅㄱ ㄴㅇ"
    assert normalize_query("송금ㄴ").text == "송금ㄴ"
    assert normalize_query("ㄱㅏ").text == "ㄱㅏ"


def test_conjoining_jamo_are_composed_or_made_compatible() -> None:
    decomposed = "\u1109\u1169\u11bc\u1100\u1173\u11b7"  # 송금 as NFD
    assert normalize_query(decomposed).text == "송금"
    assert normalize_query("\u1109\u1100").text == "ㅅㄱ"
    assert normalize_query("\uffa1").text == "ㄱ"  # half-width ㄱ


def test_lone_surrogates_and_noncharacters_are_replaced() -> None:
    assert normalize_query("\ud800송금\udfff").text == "\ufffd송금\ufffd"
    assert normalize_query("a\ufffeb\U0010ffff").text == "a\ufffdb\ufffd"


def test_control_and_invisible_characters_are_removed() -> None:
    assert normalize_query("송\x00금\x07 내\u200b역\ufeff\u202e").text == "송금 내역"


def test_emoji_and_mixed_scripts_pass_through() -> None:
    text = "👨\u200d👩\u200d👧 가족 🇰🇷 송금 テスト 日本語 Python"
    assert normalize_query(text).text == text


def test_cap_sets_truncated() -> None:
    result = normalize_query("가" * 30, max_chars=10)
    assert result == Normalized("가" * 10, True)
    assert not normalize_query("가" * 10, max_chars=10).truncated


def test_cap_does_not_leave_trailing_space() -> None:
    assert normalize_query("송금 내역 조회", max_chars=6) == Normalized("송금 내역", True)


def test_default_cap_on_very_long_input() -> None:
    result = normalize_document("송금 " * 50_000)
    assert result.truncated
    assert len(result.text) <= 20_000


def test_empty_input() -> None:
    assert normalize_query("") == Normalized("", False)
    assert normalize_document(" \n\t ") == Normalized("", False)


def test_decode_wire_replaces_invalid_utf8() -> None:
    assert decode_wire("송금".encode()) == "송금"
    assert decode_wire(b"\xed\x95\x9c\xff abc") == "한\ufffd abc"
    assert decode_wire(b"") == ""


def test_clean_keeps_spacing() -> None:
    assert clean(" 송금\n\n내역 ") == " 송금\n\n내역 "


@given(any_text)
def test_never_raises_and_is_idempotent(text: str) -> None:
    for paragraphs in (False, True):
        once = normalize(text, 50, paragraphs=paragraphs)
        assert len(once.text) <= 50
        assert once.text == once.text.strip()
        assert normalize(once.text, 50, paragraphs=paragraphs).text == once.text
        once.text.encode("utf-8")


@given(any_text)
def test_query_is_one_line(text: str) -> None:
    result = normalize_query(text).text
    assert "\n" not in result
    assert "  " not in result
