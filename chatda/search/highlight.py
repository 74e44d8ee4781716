"""Snippets and highlights: where the query's morphemes appear in an article's best chunk.

Highlighting runs on every result of every query, so it is plain substring search: the query
is analysed once (Kiwi, with positions) and its content morphemes are looked up in each
snippet. Running Kiwi over the snippets too would be more exact but cost ~4 ms per snippet on
the reference CPU, a third of the default budget for a page of ten.

What is looked up is the query's own surface text, not the lemma: "보냈어" yields "보냈", which
is what a text says, where the lemma "보내" would also match but miss inflected forms. Adjacent
morphemes are joined (파+킹+통장 → "파킹통장") so a compound lights up whole, and each morpheme
of two or more characters is also looked up alone, so "해외송금" still marks "송금" in a text.
A one-character morpheme ("차") only counts at the start of a word, where it is most likely
the same word rather than a syllable of another.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from chatda.text.morphemes import Morphemes

Span = tuple[int, int]
_WORD_EDGE_SLACK = 12


def query_needles(
    query: str, morphemes: Morphemes, query_terms: Sequence[str] | None = None
) -> tuple[str, ...]:
    """The strings to look for, longest first; ``query`` must already be normalised.

    ``query_terms``: its morphemes when the caller already has them.
    """
    terms = set(morphemes.terms(query) if query_terms is None else query_terms)
    if not terms:
        return ()
    runs: list[Span] = []
    singles: list[Span] = []
    for token in morphemes.kiwi.tokenize(query):
        form = token.form.lower() if token.tag.startswith("SL") else token.form
        if not any(part in terms for part in form.split()):
            continue
        span = (token.start, token.start + token.len)
        singles.append(span)
        if runs and runs[-1][1] == span[0]:
            runs[-1] = (runs[-1][0], span[1])
        else:
            runs.append(span)
    found = {query[a:b] for a, b in runs}
    found.update(query[a:b] for a, b in singles if b - a >= 2)
    return tuple(sorted((n for n in found if n.strip()), key=lambda n: (-len(n), n)))


def _folded(text: str) -> str:
    """Lower-cased for matching Latin words, unless that would move character offsets."""
    lowered = text.lower()
    return lowered if len(lowered) == len(text) else text


def _merge(spans: Iterable[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def find_spans(text: str, needles: Sequence[str]) -> list[Span]:
    """Sorted, non-overlapping ``(start, end)`` character spans of ``needles`` in ``text``."""
    haystack = _folded(text)
    spans: list[Span] = []
    for needle in needles:
        wanted = _folded(needle)
        at = haystack.find(wanted)
        while at != -1:
            if len(wanted) > 1 or at == 0 or not text[at - 1].isalnum():
                spans.append((at, at + len(wanted)))
            at = haystack.find(wanted, at + 1)
    return _merge(spans)


def snippet(text: str, spans: Sequence[Span], width: int) -> tuple[str, list[Span]]:
    """A window of at most ``width`` characters around the first match, spans shifted into it.

    The window starts a little before the first match so the match has context, and both of
    its edges move to a space when one is near, so no word is cut in half; edge whitespace is
    trimmed (chunks keep the space before the next sentence).
    """
    start, end = 0, len(text)
    if len(text) > width:
        first = spans[0][0] if spans else 0
        start = max(0, min(first - width // 5, len(text) - width))
        if start > 0:
            space = text.find(" ", start, min(first, start + _WORD_EDGE_SLACK))
            start = space + 1 if space != -1 else start
        end = min(len(text), start + width)
        if end < len(text):
            space = text.rfind(" ", max(start + 1, end - _WORD_EDGE_SLACK), end)
            end = space if space != -1 else end
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    shifted = [
        (max(a, start) - start, min(b, end) - start) for a, b in spans if b > start and a < end
    ]
    return text[start:end], shifted
