"""The keystroke and 초성 forms an entry is matched on, with a way back to its characters.

Spaces are left out of both streams: people type "송금내역" for "송금 내역" and the other way
round, and a half-typed "송금ㄴ" (ㅅㅗㅇㄱㅡㅁㄴ) should already reach "송금 내역". Each key
remembers the character it came from so a match can be highlighted in the original text.
Latin letters are lower-cased so "kb" finds "KB국민카드".
"""

from dataclasses import dataclass

from chatda.text.jamo import chosung, keystrokes


@dataclass(frozen=True, slots=True)
class EntryKeys:
    keys: str
    key_chars: tuple[int, ...]
    chosung: str
    chosung_chars: tuple[int, ...]
    word_starts: tuple[tuple[int, int], ...]
    """(offset in `keys`, offset in `chosung`) of every word after the first."""


def entry_keys(text: str) -> EntryKeys:
    keys: list[str] = []
    key_chars: list[int] = []
    initials: list[str] = []
    chosung_chars: list[int] = []
    word_starts: list[tuple[int, int]] = []
    for index, char in enumerate(text):
        if char.isspace():
            continue
        if index > 0 and text[index - 1].isspace():
            word_starts.append((len(keys), len(initials)))
        lowered = char.lower()
        for key in keystrokes(lowered):
            keys.append(key)
            key_chars.append(index)
        for initial in chosung(lowered):
            initials.append(initial)
            chosung_chars.append(index)
    return EntryKeys(
        "".join(keys),
        tuple(key_chars),
        "".join(initials),
        tuple(chosung_chars),
        tuple(word_starts),
    )


def query_keys(text: str) -> str:
    """The keystrokes of typed input, on the same terms as `entry_keys`."""
    return "".join(keystrokes(text.lower()).split())
