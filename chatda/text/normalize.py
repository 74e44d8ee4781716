"""One canonical form for every string that enters search, typed query and ingested article alike.

Queries and documents only meet in the index if they were normalized the same way, and input
comes from browsers, copy-paste and third-party feeds, so nothing here may raise: broken text is
repaired (U+FFFD) rather than rejected.
"""

import re
import unicodedata
from dataclasses import dataclass

from chatda.text.jamo import to_compatibility_jamo

DEFAULT_MAX_CHARS = 20_000
_REPLACEMENT = "\ufffd"

_INVALID = re.compile(
    "[\ud800-\udfff\ufdd0-\ufdef"
    + "".join(
        f"{chr(plane * 0x10000 + 0xFFFE)}{chr(plane * 0x10000 + 0xFFFF)}" for plane in range(17)
    )
    + "]"
)
# Compatibility jamo (ㄱ, ㅏ) are what a user types mid-syllable and in 초성 queries; NFKC would
# turn them into conjoining jamo, and even fuse "ㄱㅏ" into "가", so they are kept out of it.
_COMPATIBILITY_JAMO_RUN = re.compile("([\u3131-\u318e]+)")
# Invisible format characters that only hide or reorder text; ZWJ/ZWNJ stay for emoji and scripts.
_INVISIBLE = (
    "\u00ad\u061c\u180e\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\u206a\u206b\u206c\u206d\u206e\u206f"
    "\ufeff"
)
_CONTROLS = "".join(
    chr(code) for code in [*range(0x20), *range(0x7F, 0xA0)] if not chr(code).isspace()
)
_DROP = str.maketrans("", "", _CONTROLS + _INVISIBLE)
_LINE_BREAK = re.compile("\r\n|[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_INLINE_SPACE = re.compile(r"[^\S\n]+")
_SPACE_AROUND_BREAK = re.compile(r" ?\n ?")
_BLANK_LINES = re.compile(r"\n{3,}")
_ANY_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Normalized:
    """Normalized text plus whether the length cap cut it, so callers can tell the user."""

    text: str
    truncated: bool


def decode_wire(data: bytes) -> str:
    """Bytes off the network as text; invalid UTF-8 becomes U+FFFD instead of an error."""
    return bytes(data).decode("utf-8", errors="replace")


def clean(text: str) -> str:
    """NFKC with invalid code points replaced and invisible characters dropped; spacing untouched.

    Morpheme analysis needs this much (Kiwi fails on lone surrogates) but must keep every word,
    so it takes this step without the length cap.
    """
    text = _INVALID.sub(_REPLACEMENT, text)
    parts = _COMPATIBILITY_JAMO_RUN.split(text)
    text = "".join(
        part if i % 2 else unicodedata.normalize("NFKC", part) for i, part in enumerate(parts)
    )
    return to_compatibility_jamo(text).translate(_DROP)


def normalize(
    text: str, max_chars: int = DEFAULT_MAX_CHARS, *, paragraphs: bool = False
) -> Normalized:
    """Clean, collapse whitespace, strip and cap at `max_chars`.

    With `paragraphs` line breaks survive (runs of blank lines shrink to one) so documents keep
    the structure that sentence splitting and chunking rely on; otherwise all whitespace becomes
    single spaces, as a one-line query should.
    """
    if max_chars < 0:
        raise ValueError("max_chars must not be negative")
    text = clean(text)
    if paragraphs:
        text = _LINE_BREAK.sub("\n", text)
        text = _INLINE_SPACE.sub(" ", text)
        text = _SPACE_AROUND_BREAK.sub("\n", text)
        text = _BLANK_LINES.sub("\n\n", text)
    else:
        text = _ANY_SPACE.sub(" ", text)
    text = text.strip()
    if len(text) <= max_chars:
        return Normalized(text, truncated=False)
    return Normalized(text[:max_chars].rstrip(), truncated=True)


def normalize_query(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> Normalized:
    """A search box input: a single line."""
    return normalize(text, max_chars)


def normalize_document(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> Normalized:
    """An article body: paragraph breaks kept for sentence splitting."""
    return normalize(text, max_chars, paragraphs=True)
