"""Hangul syllables as the keystrokes of the standard 2-set (두벌식) keyboard.

As-you-type matching has to compare what the user has typed so far ("송그", half of "송금") with
complete words, and that only works one level below syllables: at the keys pressed. On the 2-set
layout a compound vowel (ㅘ) or a compound final (ㄺ) takes two keys, while a double consonant
(ㄲ, ㅆ) is one shifted key, so the keystroke stream here follows the keyboard, not the Unicode
decomposition.
"""

_BASE = 0xAC00
_LAST = 0xD7A3
_VOWEL_COUNT = 21
_FINAL_COUNT = 28

_INITIALS = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
_MEDIALS = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
_FINALS = ("", *"ㄱㄲㄳㄴㄵㄶㄷㄹㄺㄻㄼㄽㄾㄿㅀㅁㅂㅄㅅㅆㅇㅈㅊㅋㅌㅍㅎ")

_VOWEL_KEYS = frozenset("ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅛㅜㅠㅡㅣ")
CONSONANT_KEYS = frozenset(_INITIALS)

_COMPOUND_VOWELS = {
    "ㅘ": "ㅗㅏ",
    "ㅙ": "ㅗㅐ",
    "ㅚ": "ㅗㅣ",
    "ㅝ": "ㅜㅓ",
    "ㅞ": "ㅜㅔ",
    "ㅟ": "ㅜㅣ",
    "ㅢ": "ㅡㅣ",
}
COMPOUND_CONSONANTS = {
    "ㄳ": "ㄱㅅ",
    "ㄵ": "ㄴㅈ",
    "ㄶ": "ㄴㅎ",
    "ㄺ": "ㄹㄱ",
    "ㄻ": "ㄹㅁ",
    "ㄼ": "ㄹㅂ",
    "ㄽ": "ㄹㅅ",
    "ㄾ": "ㄹㅌ",
    "ㄿ": "ㄹㅍ",
    "ㅀ": "ㄹㅎ",
    "ㅄ": "ㅂㅅ",
}
_SPLIT = {**_COMPOUND_VOWELS, **COMPOUND_CONSONANTS}
_JOIN = {pair: compound for compound, pair in _SPLIT.items()}
_FINAL_INDEX = {final: i for i, final in enumerate(_FINALS) if final}
_MEDIAL_INDEX = {medial: i for i, medial in enumerate(_MEDIALS)}
_INITIAL_INDEX = {initial: i for i, initial in enumerate(_INITIALS)}

_CONJOINING_TO_COMPATIBILITY = str.maketrans(
    {
        **{chr(0x1100 + i): initial for i, initial in enumerate(_INITIALS)},
        **{chr(0x1161 + i): medial for i, medial in enumerate(_MEDIALS)},
        **{chr(0x11A8 + i): final for i, final in enumerate(_FINALS[1:])},
    }
)


def _syllable_keys(index: int) -> str:
    initial, rest = divmod(index, _VOWEL_COUNT * _FINAL_COUNT)
    medial, final = divmod(rest, _FINAL_COUNT)
    vowel = _MEDIALS[medial]
    coda = _FINALS[final]
    return _INITIALS[initial] + _SPLIT.get(vowel, vowel) + _SPLIT.get(coda, coda)


def _syllable_index(char: str) -> int | None:
    code = ord(char)
    return code - _BASE if _BASE <= code <= _LAST else None


def is_syllable(char: str) -> bool:
    """A complete precomposed syllable; the unit everything else here is measured against."""
    return _syllable_index(char) is not None


def decompose(text: str) -> str:
    """Syllables become keystrokes; anything else, compatibility jamo included, stays as is."""
    out = []
    for char in text:
        index = _syllable_index(char)
        out.append(char if index is None else _syllable_keys(index))
    return "".join(out)


def keystrokes(text: str) -> str:
    """Like `decompose`, but a compound jamo an IME left standing (ㄳ, ㅘ) is split too.

    An IME shows "ㄳ" after the keys ㄱ,ㅅ, so matching typed input against words has to see
    those two keys, not one unknown symbol.
    """
    out = []
    for char in text:
        index = _syllable_index(char)
        if index is not None:
            out.append(_syllable_keys(index))
        else:
            out.append(_SPLIT.get(char, char))
    return "".join(out)


class _Composer:
    """The 2-set IME automaton: one syllable under construction plus what is already final."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.initial = ""
        self.medial = ""
        self.final = ""

    def flush(self) -> None:
        if self.initial and self.medial:
            code = _BASE + (
                (_INITIAL_INDEX[self.initial] * _VOWEL_COUNT + _MEDIAL_INDEX[self.medial])
                * _FINAL_COUNT
                + _FINAL_INDEX.get(self.final, 0)
            )
            self.out.append(chr(code))
        else:
            self.out.append(self.initial + self.medial)
        self.initial = self.medial = self.final = ""

    def consonant(self, key: str) -> None:
        if not self.medial:
            joined = _JOIN.get(self.initial + key)
            if joined:
                self.initial = joined
                return
        elif self.initial and not self.final and key in _FINAL_INDEX:
            self.final = key
            return
        elif self.final and _JOIN.get(self.final + key) in _FINAL_INDEX:
            self.final = _JOIN[self.final + key]
            return
        self.flush()
        self.initial = key

    def vowel(self, key: str) -> None:
        if self.final:
            keys = COMPOUND_CONSONANTS.get(self.final, self.final)
            self.final, moved = keys[:-1], keys[-1]
            self.flush()
            self.initial, self.medial = moved, key
        elif self.medial:
            joined = _JOIN.get(self.medial + key)
            if joined:
                self.medial = joined
            else:
                self.flush()
                self.medial = key
        elif self.initial in COMPOUND_CONSONANTS:
            pair = COMPOUND_CONSONANTS[self.initial]
            self.out.append(pair[0])
            self.initial, self.medial = pair[1], key
        else:
            self.medial = key

    def other(self, char: str) -> None:
        self.flush()
        self.out.append(char)


def compose(keys: str) -> str:
    """Assemble keystrokes into syllables exactly as a 2-set IME shows them while typing.

    A final consonant followed by a vowel moves on to start the next syllable, compound finals
    and vowels are joined, and half-typed pieces ("송그", a lone "ㅅ") stay as they are. Input
    that already holds syllables is taken apart into keystrokes first.
    """
    composer = _Composer()
    for key in keystrokes(keys):
        if key in CONSONANT_KEYS:
            composer.consonant(key)
        elif key in _VOWEL_KEYS:
            composer.vowel(key)
        else:
            composer.other(key)
    composer.flush()
    return "".join(composer.out)


def chosung(text: str) -> str:
    """Initial consonants of each syllable ("송금 내역" → "ㅅㄱ ㄴㅇ"); other characters stay."""
    out = []
    for char in text:
        index = _syllable_index(char)
        out.append(char if index is None else _INITIALS[index // (_VOWEL_COUNT * _FINAL_COUNT)])
    return "".join(out)


def is_chosung_query(text: str) -> bool:
    """Only initial consonants and spaces, so the user is typing a 초성 abbreviation.

    Compound clusters (ㄳ, ㅄ) count as well: an IME joins two typed initials ㅂ,ㅅ into ㅄ.
    """
    has_consonant = False
    for char in text:
        if char in CONSONANT_KEYS or char in COMPOUND_CONSONANTS:
            has_consonant = True
        elif not char.isspace():
            return False
    return has_consonant


def to_compatibility_jamo(text: str) -> str:
    """Conjoining jamo (U+1100 block, what NFKC and NFD produce) become compatibility jamo.

    Typed and displayed Korean uses the compatibility block (ㄱ U+3131); a stray conjoining
    jamo left over after normalization would never match anything the user can type.
    """
    return text.translate(_CONJOINING_TO_COMPATIBILITY)
