"""The per-address limit on wrong tokens: past it, 429 until the address is back under it.

One ``AuthFailures`` per API process, held by its state (``query.state.ApiState``), so every
token guard and the admin sign-in form count against the same limit.
"""

from __future__ import annotations

import time
from collections import deque

MAX_AUTH_FAILURES = 20
AUTH_FAILURE_WINDOW_S = 60.0
_MAX_TRACKED_ADDRESSES = 10_000


class AuthFailures:
    """Wrong tokens per client address over a sliding window; past the limit, 429 for a while.

    Per process on purpose: with R replicas a guesser gets R x ``MAX_AUTH_FAILURES`` tries a
    minute instead of 100 a second, which is what the limit is for (tokens are long random
    strings; the limiter stops online guessing and log flooding, it is not the secret's only
    defence). A shared counter (Redis, SQL) would put a network dependency and a new outage
    mode in front of every authenticated request. While an address is over the limit even the
    right token is refused, or the limiter would still confirm a guess. Memory is bounded: at
    most ``_MAX_TRACKED_ADDRESSES`` addresses, the stalest forgotten first.
    """

    def __init__(
        self, limit: int = MAX_AUTH_FAILURES, window_s: float = AUTH_FAILURE_WINDOW_S
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self._failures.get(address, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def retry_after_s(self, address: str) -> float | None:
        """Seconds until ``address`` may try again, or None when it may try now."""
        now = time.monotonic()
        times = self._recent(address, now)
        if len(times) < self.limit:
            return None
        return times[-self.limit] + self.window_s - now

    def record(self, address: str) -> None:
        now = time.monotonic()
        times = self._recent(address, now)
        self._failures.pop(address, None)
        times.append(now)
        self._failures[address] = times  # re-inserted: the dict's order is staleness
        while len(self._failures) > _MAX_TRACKED_ADDRESSES:
            del self._failures[next(iter(self._failures))]
