"""How suggestions are ordered: match quality first, then short and popular.

Each match kind owns one unit band of the score (prefix 4–5, chosung 3–4, …, infix 0–1), so a
better kind of match always wins; inside a band a shorter text and a higher popularity both
raise the score, and a typo match loses in proportion to its edit distance.
"""

import math

from chatda.suggest.entries import Match

MATCH_ORDER: tuple[Match, ...] = ("prefix", "chosung", "qwerty", "typo", "infix")
_BAND = {match: float(len(MATCH_ORDER) - 1 - rank) for rank, match in enumerate(MATCH_ORDER)}
_SHORTNESS_WEIGHT = 0.55
_POPULARITY_WEIGHT = 0.4


def allowed_edits(key_count: int) -> int:
    """Typo budget in keystrokes: none for a syllable or so, more as the input grows."""
    if key_count <= 3:
        return 0
    if key_count <= 8:
        return 1
    return 2


def clean_popularity(popularity: float) -> float:
    """Non-finite or negative popularity counts as none rather than poisoning the ranking."""
    return popularity if math.isfinite(popularity) and popularity > 0 else 0.0


def entry_score(text: str, popularity: float, max_popularity: float) -> float:
    """The within-band score of an entry, in [0, 0.95]; independent of what was typed."""
    shortness = 1.0 / (1.0 + 0.25 * len(text))
    popular = math.log1p(popularity) / math.log1p(max_popularity) if max_popularity > 0 else 0.0
    return _SHORTNESS_WEIGHT * shortness + _POPULARITY_WEIGHT * popular


def match_score(match: Match, within: float, edits: int = 0) -> float:
    return _BAND[match] + within / (1 + edits)
