"""Korean typed with the input method switched off: "thdrma" is what 송금 looks like on QWERTY.

Users forget to toggle 한/영 all the time; mapping the Latin keys back through the 2-set layout
turns their query into what they meant to type.
"""

import re

from chatda.text.jamo import COMPOUND_CONSONANTS, CONSONANT_KEYS, compose, is_syllable, keystrokes

_LOWER = {
    "r": "ㄱ", "s": "ㄴ", "e": "ㄷ", "f": "ㄹ", "a": "ㅁ", "q": "ㅂ", "t": "ㅅ", "d": "ㅇ",
    "w": "ㅈ", "c": "ㅊ", "z": "ㅋ", "x": "ㅌ", "v": "ㅍ", "g": "ㅎ",
    "k": "ㅏ", "o": "ㅐ", "i": "ㅑ", "j": "ㅓ", "p": "ㅔ", "u": "ㅕ", "h": "ㅗ", "y": "ㅛ",
    "n": "ㅜ", "b": "ㅠ", "m": "ㅡ", "l": "ㅣ",
}  # fmt: skip
_SHIFTED = {"Q": "ㅃ", "W": "ㅉ", "E": "ㄸ", "R": "ㄲ", "T": "ㅆ", "O": "ㅒ", "P": "ㅖ"}
_KEY_TO_JAMO = {
    **_LOWER,
    **{key.upper(): jamo for key, jamo in _LOWER.items()},
    **_SHIFTED,
}
_JAMO_TO_KEY = {jamo: key for key, jamo in {**_LOWER, **_SHIFTED}.items()}
_LATIN_TO_JAMO = str.maketrans(_KEY_TO_JAMO)
_JAMO_TO_LATIN = str.maketrans(_JAMO_TO_KEY)
_QWERTY_TEXT = re.compile(r"[A-Za-z0-9 ]*[A-Za-z][A-Za-z0-9 ]*")


def qwerty_keystrokes(text: str) -> str:
    """Latin letters as the jamo keys they sit on; everything else unchanged, nothing composed."""
    return text.translate(_LATIN_TO_JAMO)


def qwerty_to_hangul(text: str) -> str:
    """Latin keys read as 2-set keys and composed like the IME would: "thdrma" → "송금"."""
    return compose(qwerty_keystrokes(text))


def hangul_to_qwerty(text: str) -> str:
    """The keys to press on a Latin layout, "송금" → "thdrma"; other characters unchanged."""
    return keystrokes(text).translate(_JAMO_TO_LATIN)


def _is_jamo(char: str) -> bool:
    return "\u3131" <= char <= "\u318e"


def looks_like_qwerty_korean(text: str) -> bool:
    """Whether Latin input is probably Korean typed in the wrong input mode.

    English letters rarely fall into the consonant-vowel order of Korean syllables: on the
    2-set layout the vowels are h j k l u i o p y n b m, while English words lean on a e i o u.
    So: only ASCII letters, digits and spaces; the conversion gives at least two complete
    syllables; no vowel is left without a consonant; and at most one consonant is left over,
    at the very end (a half-typed syllable). "dkssud" (안녕) passes; "hello", "card", "toss"
    and the two-letter words that happen to form one syllable ("go" → 해) do not.
    """
    stripped = text.strip()
    if not _QWERTY_TEXT.fullmatch(stripped):
        return False
    converted = qwerty_to_hangul(stripped)
    syllables = sum(1 for char in converted if is_syllable(char))
    if syllables < 2:
        return False
    stray = [i for i, char in enumerate(converted) if _is_jamo(char)]
    if not stray:
        return True
    last = converted[-1]
    is_consonant = last in CONSONANT_KEYS or last in COMPOUND_CONSONANTS
    return stray == [len(converted) - 1] and is_consonant
