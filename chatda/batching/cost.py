"""What a model pass costs, learnt from the passes themselves: admission prices queued work.

A pass takes a fixed part (kernel launches, the post-step, Python around the model) plus a part
that grows with its padded tokens. Neither alone predicts both a pass of one short query and
one of 64 long catalog hints (here ~50 ms and ~2.7 s): priced per pass, the long ones made
every short request look late; priced per token, a burst of short queries looked free, then
the first small pass made the next burst look ten times dearer than it was. So both parts are
fitted, by least squares over recent passes with exponential forgetting, which follows a
machine that slows down or speeds up within a few dozen passes.

The fit starts from a prior it never forgets: two imaginary passes, an empty one and a long
one, priced by the constructor's defaults and weighing half a real pass each. Recent real
passes of many sizes outweigh them some twenty to one. Real passes all of one size (queries
of 8 and 9 tokens, for minutes) fix the cost near that size and leave the per-token part to
the prior: read off the noise between 8 and 9 tokens, it once priced a 1,088-token catalog
pass at 21 s (it took 0.5 s), and every search behind it was refused for a pass that was
almost over.

**What a request needs at least.** Refusing a request as too large for its deadline even on an
idle encoder (``DynamicBatcher.admit_alone``) is a 4xx its client will not retry, so it must
rest on passes this process has measured, never on the prior or on a line extrapolated past
them: the prior is a CPU's price (a GPU's token costs a small fraction of it). So the cost also
keeps the passes it has measured, and ``least_seconds`` prices a request by the fastest of them
whose rows were no longer and whose pass was no smaller than the request's: such a pass costs
less per token (attention grows with row length; the fixed part weighs less per token in a
larger pass), so the price is a floor. A pass is dropped only when another beats it (rows no
longer, a pass no smaller, no more time per token), so a fast pass of one shape never hides the
only measure of another. None is forgotten with time (a size once refused would never run
again to be re-measured; the fastest pass is already the most hopeful reading of a noisy
machine), only when the model changes (``forget_fastest``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

FORGET = 0.95
"""Weight of the past at each new pass: an observation's half-life is about 14 passes."""

PRIOR_WEIGHT = 0.5
"""Weight of each imaginary pass, against 1 for each real one (~20 recent ones count)."""

PRIOR_TOKENS = 1024
"""Padded tokens of the long imaginary pass: about one full batch of catalog hints."""


class Measured(NamedTuple):
    """A real pass: seconds per padded token, its longest row and its padded tokens."""

    token_s: float
    longest: int
    padded: int


class PassCost:
    def __init__(self, overhead_s: float = 0.01, token_s: float = 0.0005) -> None:
        self.overhead_s = overhead_s
        self.token_s = token_s
        self._w = self._x = self._y = self._xx = self._xy = 0.0
        self._prior = [
            (0.0, overhead_s),
            (float(PRIOR_TOKENS), overhead_s + token_s * PRIOR_TOKENS),
        ]
        self._fastest: list[Measured] = []
        """The measured passes no other beats (see the module docstring)."""

    def observe(self, padded_tokens: int, seconds: float, longest: int = 0) -> None:
        """One finished pass of ``padded_tokens`` (rows x ``longest`` row) that took
        ``seconds``; a pass whose ``longest`` is not given only teaches the fit."""
        if longest > 0 and padded_tokens > 0:
            self._remember(Measured(seconds / padded_tokens, longest, padded_tokens))
        x, y = float(padded_tokens), seconds
        self._w = FORGET * self._w + 1.0
        self._x = FORGET * self._x + x
        self._y = FORGET * self._y + y
        self._xx = FORGET * self._xx + x * x
        self._xy = FORGET * self._xy + x * y
        w, sx, sy, sxx, sxy = self._w, self._x, self._y, self._xx, self._xy
        for px, py in self._prior:
            w, sx, sy = w + PRIOR_WEIGHT, sx + PRIOR_WEIGHT * px, sy + PRIOR_WEIGHT * py
            sxx, sxy = sxx + PRIOR_WEIGHT * px * px, sxy + PRIOR_WEIGHT * px * py
        slope = (w * sxy - sx * sy) / (w * sxx - sx * sx)
        intercept = (sy - slope * sx) / w
        if slope < 0:  # the passes say longer is cheaper (noise, a machine speeding up): per pass
            slope, intercept = 0.0, sy / w
        elif intercept < 0:
            slope, intercept = sxy / sxx, 0.0
        self.token_s, self.overhead_s = slope, intercept

    def _remember(self, pass_: Measured) -> None:
        if any(_beats(known, pass_) for known in self._fastest):
            return
        self._fastest = [known for known in self._fastest if not _beats(pass_, known)]
        self._fastest.append(pass_)

    def least_seconds(self, tokens: int, row_tokens: float, pass_tokens: float) -> float | None:
        """The fewest seconds ``tokens`` tokens, in rows of up to ``row_tokens`` and passes of
        ``pass_tokens`` padded tokens on average, can take: priced by the fastest measured pass
        with rows no longer and at least as many padded tokens. ``None`` when no such pass was
        measured: then nothing is known for sure. For rows of one length it is a floor; for
        rows much shorter than the longest it may overstate their rate a little (attention),
        and it counts no padding, which understates far more in a pass that holds both."""
        rates = [
            m.token_s for m in self._fastest if m.longest <= row_tokens and m.padded >= pass_tokens
        ]
        return tokens * min(rates) if rates else None

    def forget_fastest(self) -> None:
        """Another model serves: the passes measured say nothing of its speed."""
        self._fastest.clear()

    def seconds(self, tokens: int, passes: int) -> float:
        """Expected time of ``passes`` passes holding ``tokens`` tokens in all."""
        return passes * self.overhead_s + tokens * self.token_s

    def passes(self, texts: int, tokens: int, max_texts: int, max_tokens: int) -> int:
        """How many passes ``texts`` texts of ``tokens`` tokens need, at the batch limits."""
        if texts <= 0:
            return 0
        return max(math.ceil(texts / max_texts), math.ceil(tokens / max(1, max_tokens)))


def _beats(a: Measured, b: Measured) -> bool:
    """``a`` prices every request ``b`` can, at least as low: rows no longer, a pass no smaller,
    no more time per token."""
    return a.longest <= b.longest and a.padded >= b.padded and a.token_s <= b.token_s
