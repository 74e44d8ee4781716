"""What a model pass costs, learnt from the passes themselves: admission prices queued work.

A pass takes a fixed part (kernel launches, the post-step, Python around the model) plus a part
that grows with its padded tokens. Neither alone predicts both a pass of one short query and
one of 64 long catalog hints (here ~50 ms and ~2.7 s): priced per pass, the long ones made
every short request look late; priced per token, a burst of short queries looked free, then
the first small pass made the next burst look ten times dearer than it was. So both parts are
fitted, by least squares over recent passes with exponential forgetting, which follows a
machine that slows down or speeds up within a few dozen passes. When recent passes are too
alike to separate the parts, the whole cost is put on the pass, not the token: that errs
towards admitting a larger burst (whose deadline timer still holds), where pricing the
burst per token from tiny passes would refuse it, and a refused burst never runs the large
pass that would correct the fit.
"""

from __future__ import annotations

import math

FORGET = 0.95
"""Weight of the past at each new pass: an observation's half-life is about 14 passes."""


class PassCost:
    def __init__(self, overhead_s: float = 0.01, token_s: float = 0.0005) -> None:
        self.overhead_s = overhead_s
        self.token_s = token_s
        self._w = self._x = self._y = self._xx = self._xy = 0.0

    def observe(self, padded_tokens: int, seconds: float) -> None:
        """One finished pass of ``padded_tokens`` (rows x longest row) that took ``seconds``."""
        x, y = float(padded_tokens), seconds
        self._w = FORGET * self._w + 1.0
        self._x = FORGET * self._x + x
        self._y = FORGET * self._y + y
        self._xx = FORGET * self._xx + x * x
        self._xy = FORGET * self._xy + x * y
        spread = self._w * self._xx - self._x * self._x
        slope = (self._w * self._xy - self._x * self._y) / spread if spread > 1e-9 else -1.0
        intercept = (self._y - slope * self._x) / self._w
        if slope < 0:  # passes too alike (or too noisy) to see a per-token part: all per pass
            slope, intercept = 0.0, self._y / self._w
        elif intercept < 0:
            slope, intercept = self._xy / self._xx, 0.0
        self.token_s, self.overhead_s = slope, intercept

    def seconds(self, tokens: int, passes: int) -> float:
        """Expected time of ``passes`` passes holding ``tokens`` tokens in all."""
        return passes * self.overhead_s + tokens * self.token_s

    def passes(self, texts: int, tokens: int, max_texts: int, max_tokens: int) -> int:
        """How many passes ``texts`` texts of ``tokens`` tokens need, at the batch limits."""
        if texts <= 0:
            return 0
        return max(math.ceil(texts / max_texts), math.ceil(tokens / max(1, max_tokens)))
