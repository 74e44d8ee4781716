"""Admission control: a bounded number of requests in flight per route class and API process.

Measured under overload (issue #23, py-spy on the API during 128 concurrent searches): the
event loop thread held the GIL in 86 % of samples (Kiwi analysis, FastAPI routing and
parameters, uvicorn I/O), so every admitted request slowed every other: the engine's deadline
timers fired hundreds of milliseconds late and answers came seconds after a 150 ms budget.
Latency under load is in-flight requests / throughput (Little's law); only bounding what is in
flight holds it. Past the bound a request is answered 429 with ``Retry-After`` before its body
is read or its route is resolved, so the admitted ones keep their budget and the rest can go to
another replica or come back later.

**Pools.** Routes differ in what a request costs and how long it may take, so each class has
its own limit, counters and retry hint (BENCHMARKS § 8: one shared limit of 32 over-refused
``/v1/embeddings``, whose requests carry up to 256 texts and a 2 s deadline, and told its
clients to wait as long as a search had taken):

- ``search``: ``/v1/search``, ``/v1/intents/match``, ``/v1/suggest``: one short query each,
  a budget of ~150 ms, most of their work on the event loop. ``CHATDA_MAX_IN_FLIGHT_SEARCH``.
- ``embeddings``: ``/v1/embeddings``: its work is in the model thread, priced per request by
  the batcher's own admission (``DynamicBatcher.admit`` refuses what the queue ahead makes
  late). This gate only bounds parsed bodies and tokenisation on the loop, so its default is
  two full batches of one-text requests (``2 x CHATDA_BATCH_MAX_SIZE``): one pass computing
  while the next fills, the most the model can use; beyond that a request only waits.
- ``admin``: the admin API and page and the publisher's ``/v1/articles``: few callers behind a
  token, large bodies (a catalog import, 500 articles). A small pool of their own bounds that
  memory, and no public flood can refuse an operator's edit or a publisher's article.
- ``other``: everything else (``/v1/feedback``, the OpenAPI pages, unknown paths): cheap,
  public, and kept out of search's slots.

Health, readiness and metrics are never refused nor counted: a probe failing because the
process is busy would get it restarted at the worst moment.

**Retry hint.** A refused request is told when a slot of its pool should be free for it: the
pool drains at its measured completion rate, and the refused requests of a burst queue up
virtually, the k-th told ~k / rate, so clients that honour the hint come back spread over the
time the pool needs to serve them, not together. The rate is the pool's completions per second
over the last ~second (exponentially decayed) or, when higher, what a full pool drains at
given its own mean time in the app (Little's law): that is the estimate at the onset of a
burst, before the pool has been full long enough for its completions to show its capacity.

**Cheap refusals.** Under a flood of clients that ignore the hint, refusals are most of what
the process does (5,300 a second in BENCHMARKS § 8), on the loop the admitted requests need. So
a refusal is two prebuilt ASGI messages (cached per pool and hint, in 10 ms steps) and a
counter: no routing, no JSON encoding, no logging.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

from prometheus_client import Counter, Gauge
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatda.settings import Settings
from query.errors import overloaded_messages

SEARCH, EMBEDDINGS, ADMIN, OTHER = "search", "embeddings", "admin", "other"
POOLS = (SEARCH, EMBEDDINGS, ADMIN, OTHER)

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_EXACT = {
    "/v1/search": SEARCH,
    "/v1/intents/match": SEARCH,
    "/v1/suggest": SEARCH,
    "/v1/embeddings": EMBEDDINGS,
}
_ADMIN_ROOTS = ("/v1/admin", "/admin", "/v1/articles")

MIN_RETRY_S = 0.05
"""The shortest hint: below it a client's next request would arrive before the slot frees."""
MAX_RETRY_S = 10.0
"""The longest hint: past it, the work ahead has changed too much for the estimate to hold."""
RATE_WINDOW_S = 1.0
"""Time constant of the completion rate: short enough to follow a burst within a second."""
HINT_STEP_S = 0.01
"""Hints are cached per pool in these steps: at most ``MAX_RETRY_S / HINT_STEP_S`` answers."""

IN_FLIGHT = Gauge(
    "chatda_api_in_flight", "HTTP requests being served (admission gate), per pool", ["pool"]
)
LIMIT = Gauge("chatda_api_in_flight_limit", "in-flight limit of the pool (0: none)", ["pool"])
SHED = Counter(
    "chatda_api_shed_total", "HTTP requests refused with 429 by the admission gate", ["pool"]
)


def route_class(path: str, exempt: frozenset[str] = EXEMPT_PATHS) -> str | None:
    """The pool a request path belongs to; ``None`` for a path that is never refused."""
    if path in exempt:
        return None
    pool = _EXACT.get(path)
    if pool is not None:
        return pool
    for root in _ADMIN_ROOTS:
        if path == root or path.startswith(root + "/"):
            return ADMIN
    return OTHER


def pool_limits(settings: Settings) -> dict[str, int]:
    """Each pool's in-flight limit from the settings (0: no limit); see the module docstring."""
    embeddings = settings.max_in_flight_embeddings
    return {
        SEARCH: settings.max_in_flight_search,
        EMBEDDINGS: 2 * settings.batch_max_size if embeddings is None else embeddings,
        ADMIN: settings.max_in_flight_admin,
        OTHER: settings.max_in_flight_other,
    }


class Pool:
    """One route class's slots, completion rate and virtual queue of refused requests.

    The event loop runs one callback at a time, so nothing here needs a lock.
    """

    def __init__(self, name: str, limit: int) -> None:
        self.name = name
        self.limit = limit
        self.in_flight = 0
        self._message = f"server busy: {limit} {name} requests in flight (the pool's limit)"
        self._completions = 0.0
        """Completions, each decayed by ``exp(-age / RATE_WINDOW_S)``, as of ``_counted_at``."""
        self._counted_at = time.monotonic()
        self._service_s = 0.1
        """Moving average of this pool's time in the app: its drain rate when full, at first."""
        self._next_slot = 0.0
        """When the last refused request was told a slot would be free for it."""
        self._answers: dict[int, tuple[Message, Message]] = {}
        self._gauge = IN_FLIGHT.labels(name)
        self._shed = SHED.labels(name)
        LIMIT.labels(name).set(limit)

    def full(self) -> bool:
        return 0 < self.limit <= self.in_flight

    def enter(self) -> None:
        self.in_flight += 1
        self._gauge.inc()

    def leave(self, started: float) -> None:
        now = time.monotonic()
        self.in_flight -= 1
        self._gauge.dec()
        self._completions = self._decayed(now) + 1.0
        self._counted_at = now
        self._service_s += 0.1 * (now - started - self._service_s)

    def _decayed(self, now: float) -> float:
        return self._completions * math.exp((self._counted_at - now) / RATE_WINDOW_S)

    def drain_rate(self, now: float) -> float:
        """Requests per second this pool frees its slots at (see the module docstring)."""
        measured = self._decayed(now) / RATE_WINDOW_S
        return max(measured, self.limit / max(self._service_s, 1e-3))

    def retry_after_s(self, now: float) -> float:
        """The next place in the virtual queue of refused requests, in seconds from ``now``."""
        slot = max(self._next_slot, now) + 1.0 / self.drain_rate(now)
        self._next_slot = min(slot, now + MAX_RETRY_S)
        return min(max(slot - now, MIN_RETRY_S), MAX_RETRY_S)

    def refusal(self, now: float) -> tuple[Message, Message]:
        """The 429's two ASGI messages, built once per hint step and reused."""
        self._shed.inc()
        step = round(self.retry_after_s(now) / HINT_STEP_S)
        answer = self._answers.get(step)
        if answer is None:
            answer = overloaded_messages(self._message, step * HINT_STEP_S, pool=self.name)
            self._answers[step] = answer
        return answer


class AdmissionGate:
    """Pure ASGI: counts requests in flight per pool; one past its pool's limit gets 429 at once.

    ``limits`` maps a pool to its limit; a pool not named, or a limit of 0, admits everything
    (still counted, so its gauge and drain rate stay meaningful).
    """

    def __init__(
        self, app: ASGIApp, limits: Mapping[str, int], exempt: frozenset[str] = EXEMPT_PATHS
    ) -> None:
        self.app = app
        self.exempt = exempt
        self.pools = {name: Pool(name, limits.get(name, 0)) for name in POOLS}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        name = route_class(scope["path"], self.exempt)
        if name is None:
            await self.app(scope, receive, send)
            return
        pool = self.pools[name]
        if pool.full():
            start, body = pool.refusal(time.monotonic())
            # fresh containers: a server or middleware may add headers to what it is sent
            await send({**start, "headers": list(start["headers"])})
            await send(dict(body))
            return
        pool.enter()
        started = time.monotonic()
        try:
            await self.app(scope, receive, send)
        finally:
            pool.leave(started)
