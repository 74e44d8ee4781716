import pytest
from hypothesis import given

from chatda.text.keyboard import (
    hangul_to_qwerty,
    looks_like_qwerty_korean,
    qwerty_keystrokes,
    qwerty_to_hangul,
)
from tests.text.strategies import hangul_text


@pytest.mark.parametrize(
    ("latin", "hangul"),
    [
        ("thdrma", "송금"),
        ("thdrma sodur", "송금 내역"),
        ("ghkswjs", "환전"),
        ("dkssudgktpdy", "안녕하세요"),
        ("Tkdrjvnf", "쌍거풀"),
        ("TkdRjvnf", "쌍꺼풀"),
        ("dPrma", "예금"),
        ("ekfrrhrl", "닭고기"),
        ("thdrm", "송그"),
        ("THDRMA", "쏭끔"),
    ],
)
def test_qwerty_to_hangul(latin: str, hangul: str) -> None:
    assert qwerty_to_hangul(latin) == hangul


def test_uppercase_without_shifted_jamo_maps_like_lowercase() -> None:
    assert qwerty_to_hangul("DKSSUD") == "안녕"
    assert qwerty_to_hangul("GHKSWJS") == "환쩐"


def test_hangul_to_qwerty() -> None:
    assert hangul_to_qwerty("송금") == "thdrma"
    assert hangul_to_qwerty("쌍꺼풀 예금") == "TkdRjvnf dPrma"
    assert hangul_to_qwerty("ㄳ") == "rt"
    assert hangul_to_qwerty("KB 123!") == "KB 123!"


def test_qwerty_keystrokes_do_not_compose() -> None:
    assert qwerty_keystrokes("thdrma 1") == "ㅅㅗㅇㄱㅡㅁ 1"


@pytest.mark.parametrize(
    "text", ["thdrma", "dkssud", "thdrma sodur", "thdrmas", "ghkswjs", " ekfrrhrl "]
)
def test_looks_like_qwerty_korean(text: str) -> None:
    assert looks_like_qwerty_korean(text)


@pytest.mark.parametrize(
    "text",
    [
        "hello",
        "card",
        "toss",
        "go",
        "kakao",
        "bank",
        "email",
        "google",
        "test",
        "python",
        "rk",
        "",
        "   ",
        "123",
        "송금",
        "thdrma송금",
        "thdrma!",
        "😀",
        "\ud800",
    ],
)
def test_not_qwerty_korean(text: str) -> None:
    assert not looks_like_qwerty_korean(text)


def test_garbage_never_raises() -> None:
    for text in ["\ud800", "\x00", "😀ｱ", "a" * 10_000, ""]:
        qwerty_to_hangul(text)
        hangul_to_qwerty(text)
        looks_like_qwerty_korean(text)


@given(hangul_text)
def test_round_trip(text: str) -> None:
    assert qwerty_to_hangul(hangul_to_qwerty(text)) == text
