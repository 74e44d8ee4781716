"""Exponential backoff, the one schedule for waiting after a failure: a consumer retrying a
batch through an outage (``chatda.broker.retry``) and ``chatda up`` restarting a child that
exited (``cli.supervisor``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """``first_s`` after the first failure, doubled after each further one, up to ``max_s``."""

    first_s: float = 0.5
    max_s: float = 30.0

    def delay(self, failures_in_a_row: int) -> float:
        return float(min(self.first_s * 2 ** (failures_in_a_row - 1), self.max_s))
