"""Admission control: at most ``CHATDA_MAX_IN_FLIGHT`` requests in flight per API process.

Measured under overload (issue #23, py-spy on the API during 128 concurrent searches): the
event loop thread held the GIL in 86 % of samples (Kiwi analysis, FastAPI routing and
parameters, uvicorn I/O), so every admitted request slowed every other: the engine's deadline
timers fired hundreds of milliseconds late and answers came seconds after a 150 ms budget.
Latency under load is in-flight requests / throughput (Little's law); only bounding what is in
flight holds it. Past the bound a request is answered 429 with ``Retry-After`` before its body
is read or its route is resolved, which costs the loop a small fraction of serving it, so the
admitted ones keep their budget and the rest can go to another replica or come back later.

The encoder's own admission (``DynamicBatcher.admit``) is the second gate: it refuses, per
request, what the queue ahead makes late; this one protects the event loop all routes share.
Health, readiness and metrics are never refused: a probe failing because the process is busy
would get it restarted at the worst moment.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge
from starlette.types import ASGIApp, Receive, Scope, Send

from chatda.batching.errors import Overloaded
from query.errors import overloaded_response

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

IN_FLIGHT = Gauge("chatda_api_in_flight", "HTTP requests being served (admission gate)")
SHED = Counter("chatda_api_shed_total", "HTTP requests refused with 429 by the admission gate")


class AdmissionGate:
    """Pure ASGI: counts requests in flight; one past ``limit`` gets 429 at once (0: no limit).

    The event loop runs one callback at a time, so the count needs no lock.
    """

    def __init__(self, app: ASGIApp, limit: int, exempt: frozenset[str] = EXEMPT_PATHS) -> None:
        self.app = app
        self.limit = limit
        self.exempt = exempt
        self.in_flight = 0
        self._recent_s = 0.1
        """Moving average of an admitted request's time in the app: when a slot frees up."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.limit <= 0 or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            SHED.inc()
            refusal = Overloaded(
                f"server busy: {self.in_flight} requests in flight (limit {self.limit})",
                round(self._recent_s, 3),
            )
            await overloaded_response(refusal)(scope, receive, send)
            return
        self.in_flight += 1
        IN_FLIGHT.inc()
        started = time.monotonic()
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            IN_FLIGHT.dec()
            self._recent_s = 0.9 * self._recent_s + 0.1 * (time.monotonic() - started)
