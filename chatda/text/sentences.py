"""Sentence boundaries that lose nothing: the spans tile the text end to end.

Chunking cuts documents at these boundaries and reports character offsets into the original
body, so every character (whitespace included) must belong to exactly one sentence.
Korean sentences often end without punctuation (…했어요 다음…), which only a morphological
analyzer sees, so Kiwi decides where there is Hangul; a punctuation rule does elsewhere.
"""

import re
from itertools import pairwise

from chatda.text.morphemes import default_morphemes

_HANGUL = re.compile("[\uac00-\ud7a3\u3131-\u318e]")
_PUNCTUATION_END = re.compile(r"(?:[.?!…]+[\"'”’)\]]*(?=\s|$)|[。？！]+[」』”’）]*)\s*|\n\s*")
_LINE_END = re.compile(r"\n\s*")


def _ends(pattern: re.Pattern[str], text: str) -> set[int]:
    return {match.end() for match in pattern.finditer(text)}


def _kiwi_starts(text: str) -> set[int] | None:
    try:
        sentences = default_morphemes().kiwi.split_into_sents(text, return_sub_sents=False)
    except Exception:
        return None
    starts = set()
    for sentence in sentences:
        start, end = sentence.start, sentence.end
        if not 0 <= start <= end <= len(text) or text[start:end] != sentence.text:
            return None
        starts.add(start)
    return starts


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Contiguous `(start, end)` spans covering all of `text`; trailing spaces go with a sentence.

    Line breaks always end a sentence (headings and list items rarely carry punctuation). If
    Kiwi fails or reports offsets that do not fit the text, punctuation rules take over.
    """
    if not text:
        return []
    boundaries = None
    if _HANGUL.search(text):
        boundaries = _kiwi_starts(text)
        if boundaries is not None:
            boundaries |= _ends(_LINE_END, text)
    if boundaries is None:
        boundaries = _ends(_PUNCTUATION_END, text)
    cuts = sorted({0, len(text)} | {cut for cut in boundaries if 0 < cut < len(text)})
    return list(pairwise(cuts))


def split_sentences(text: str) -> list[str]:
    """The sentences themselves; joined back together they give `text` exactly."""
    return [text[start:end] for start, end in sentence_spans(text)]
