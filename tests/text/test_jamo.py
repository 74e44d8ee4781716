import pytest
from hypothesis import given

from chatda.text.jamo import (
    chosung,
    compose,
    decompose,
    is_chosung_query,
    keystrokes,
    to_compatibility_jamo,
)
from tests.text.strategies import hangul_ascii_text


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("송금", "ㅅㅗㅇㄱㅡㅁ"),
        ("환전", "ㅎㅗㅏㄴㅈㅓㄴ"),
        ("의사", "ㅇㅡㅣㅅㅏ"),
        ("닭", "ㄷㅏㄹㄱ"),
        ("몫", "ㅁㅗㄱㅅ"),
        ("괜찮아", "ㄱㅗㅐㄴㅊㅏㄴㅎㅇㅏ"),
        ("쌍꺼풀", "ㅆㅏㅇㄲㅓㅍㅜㄹ"),
        ("있다", "ㅇㅣㅆㄷㅏ"),
    ],
)
def test_decompose_into_two_set_keystrokes(text: str, keys: str) -> None:
    assert decompose(text) == keys


def test_decompose_passes_other_characters_through() -> None:
    assert decompose("KB 송금! 😀") == "KB ㅅㅗㅇㄱㅡㅁ! 😀"
    assert decompose("ㄳ ㅘ ㅅ") == "ㄳ ㅘ ㅅ"
    assert decompose("") == ""


def test_keystrokes_also_split_compound_jamo() -> None:
    assert keystrokes("ㄳ ㅘ ㅅ") == "ㄱㅅ ㅗㅏ ㅅ"
    assert keystrokes("닭") == decompose("닭")


@pytest.mark.parametrize(
    ("keys", "shown"),
    [
        ("ㅅㅗㅇㄱㅡㅁ", "송금"),
        ("ㅅㅗㅇㄱㅡ", "송그"),
        ("ㅅ", "ㅅ"),
        ("ㅅㅗㅇㄱㅡㅁㄴ", "송금ㄴ"),
        ("ㄱㅏㄱㅅㅏ", "각사"),  # final ㄱ stays, ㅅ starts the next syllable
        ("ㄱㅏㄱㅅ", "갃"),
        ("ㄷㅏㄹㄱㄱㅗㄱㅣ", "닭고기"),
        ("ㄷㅏㄹㄱㅗ", "달고"),  # the second half of a compound final moves on
        ("ㅎㅗㅏㄴㅈㅓㄴ", "환전"),
        ("ㅇㅡㅣ", "의"),
        ("ㄱㅅ", "ㄳ"),  # an IME joins two consonants with no vowel
        ("ㄳㅏ", "ㄱ사"),
        ("ㅅㄱ", "ㅅㄱ"),
        ("ㅗㅏ", "ㅘ"),
        ("ㅏㅏ", "ㅏㅏ"),
        ("ㄸㅏㄸ", "따ㄸ"),  # ㄸ cannot be a final
        ("ㅅㅗㅇ ㄱㅡㅁ", "송 금"),
        ("abc ㄱㅏ!", "abc 가!"),
        ("", ""),
    ],
)
def test_compose_like_an_ime(keys: str, shown: str) -> None:
    assert compose(keys) == shown


def test_compose_accepts_syllables_as_keystrokes() -> None:
    assert compose("송그") == "송그"
    assert compose("가ㅏ") == "가ㅏ"
    assert compose("각ㅏ") == "가가"


def test_chosung() -> None:
    assert chosung("송금 내역") == "ㅅㄱ ㄴㅇ"
    assert chosung("KB국민카드") == "KBㄱㅁㅋㄷ"
    assert chosung("") == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ㅅㄱ", True),
        ("ㅅㄱ ㄴㅇ", True),
        (" ㅆ ", True),
        ("ㅄ", True),
        ("ㅅㄱㅏ", False),
        ("송ㄱ", False),
        ("ab", False),
        ("", False),
        ("   ", False),
    ],
)
def test_is_chosung_query(text: str, expected: bool) -> None:
    assert is_chosung_query(text) is expected


def test_to_compatibility_jamo() -> None:
    assert to_compatibility_jamo("\u1109\u1161\u11a8 x") == "ㅅㅏㄱ x"


def test_bad_input_never_raises() -> None:
    for text in ["\ud800", "\x00\x1f", "😀" * 1000, "송금" * 10_000, "ﾃｽﾄ 日本語 ㅋㅋ"]:
        compose(decompose(text))
        chosung(text)
        is_chosung_query(text)


@given(hangul_ascii_text)
def test_compose_inverts_decompose(text: str) -> None:
    assert compose(decompose(text)) == text


@given(hangul_ascii_text)
def test_keystrokes_are_jamo_or_unchanged(text: str) -> None:
    keys = keystrokes(text)
    assert all(not 0xAC00 <= ord(char) <= 0xD7A3 for char in keys)
    assert chosung(text).replace(" ", "") == "".join(chosung(char) for char in text if char != " ")
