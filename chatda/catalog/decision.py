"""The answer to "which service?": passed, ambiguous (show the top two) or no match.

Rasa's FallbackClassifier and Dialogflow make the same decision explicit: a confidence
threshold on the top intent, and an ambiguity margin between the top two. With a calibrated
snapshot both are on the calibrated confidence; on the raw rule (no calibrator) there is no
ambiguity state, and every intent that reaches its threshold passes, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from chatda.catalog.snapshot import IntentScore


class Decision(StrEnum):
    PASSED = "passed"
    AMBIGUOUS = "ambiguous"
    NO_MATCH = "no_match"


@dataclass(frozen=True)
class IntentDecision:
    decision: Decision
    intents: list[IntentScore]
    """What to show: the passing intents, the top two when ambiguous, nothing on no match."""


def decide(
    scores: Sequence[IntentScore], ambiguity_margin: float, extra_threshold: float = 0.0
) -> IntentDecision:
    """Decide on ``scores`` (best first, as the snapshot ranks them).

    ``extra_threshold`` is added to every intent's own threshold (a search profile's
    ``intent_margin``). The top intent must pass; then, when it is calibrated and the second's
    confidence is within ``ambiguity_margin`` of it, both are shown, marked ``ambiguous``.
    """
    if not scores or not scores[0].passes(extra_threshold):
        return IntentDecision(Decision.NO_MATCH, [])
    top = scores[0]
    second = scores[1] if len(scores) > 1 else None
    if (
        second is not None
        and top.confidence is not None
        and second.confidence is not None
        and top.confidence - second.confidence < ambiguity_margin
    ):
        pair = [replace(top, ambiguous=True), replace(second, ambiguous=True)]
        return IntentDecision(Decision.AMBIGUOUS, pair)
    return IntentDecision(Decision.PASSED, [s for s in scores if s.passes(extra_threshold)])


class Outcome(StrEnum):
    """Why one intent is or is not in an answer: what the admin page's try box explains."""

    PASSED = "passed"
    """Shown: it reaches its threshold, and so does the top intent."""
    AMBIGUOUS = "ambiguous"
    """Shown as one of the top two, too close to tell apart (whatever its own threshold)."""
    BELOW_THRESHOLD = "below_threshold"
    """Not shown: its confidence (raw score on the raw rule) is under its threshold."""
    NOT_SHOWN = "not_shown"
    """Not shown although it reaches its threshold: the top intent does not (no match), or
    the answer is ambiguous and shows only the top two."""
    HIDDEN = "hidden"
    """Never shown to users: a closed intent, or one outside the asked area (the admin page
    lists every intent; ``decide`` sees only the visible ones)."""


def outcome(score: IntentScore, answer: IntentDecision, extra_threshold: float = 0.0) -> Outcome:
    """What ``answer`` (``decide``'s, over a list holding ``score``) did with ``score``."""
    if any(s.index == score.index for s in answer.intents):
        return Outcome.AMBIGUOUS if answer.decision is Decision.AMBIGUOUS else Outcome.PASSED
    if not score.passes(extra_threshold):
        return Outcome.BELOW_THRESHOLD
    return Outcome.NOT_SHOWN
