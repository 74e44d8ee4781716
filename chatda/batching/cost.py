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
"""

from __future__ import annotations

import math

FORGET = 0.95
"""Weight of the past at each new pass: an observation's half-life is about 14 passes."""

PRIOR_WEIGHT = 0.5
"""Weight of each imaginary pass, against 1 for each real one (~20 recent ones count)."""

PRIOR_TOKENS = 1024
"""Padded tokens of the long imaginary pass: about one full batch of catalog hints."""


class PassCost:
    def __init__(self, overhead_s: float = 0.01, token_s: float = 0.0005) -> None:
        self.overhead_s = overhead_s
        self.token_s = token_s
        self._w = self._x = self._y = self._xx = self._xy = 0.0
        self._prior = [
            (0.0, overhead_s),
            (float(PRIOR_TOKENS), overhead_s + token_s * PRIOR_TOKENS),
        ]

    def observe(self, padded_tokens: int, seconds: float) -> None:
        """One finished pass of ``padded_tokens`` (rows x longest row) that took ``seconds``."""
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

    def seconds(self, tokens: int, passes: int) -> float:
        """Expected time of ``passes`` passes holding ``tokens`` tokens in all."""
        return passes * self.overhead_s + tokens * self.token_s

    def passes(self, texts: int, tokens: int, max_texts: int, max_tokens: int) -> int:
        """How many passes ``texts`` texts of ``tokens`` tokens need, at the batch limits."""
        if texts <= 0:
            return 0
        return max(math.ceil(texts / max_texts), math.ceil(tokens / max(1, max_tokens)))
