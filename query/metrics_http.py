"""HTTP requests by route template, method and status, with latency: the API's RED metrics.

Labels stay bounded: the route is the template a request matched (``/v1/admin/intents/{id}``),
never the raw path, so a scanner probing random URLs adds no series. A request that matched no
route (404, or refused before routing: 429 from the admission gate, 413 from the body limit)
is labelled ``unmatched``; a request under a mounted app (the docs' static assets) is labelled
with the mount's path.

Pure ASGI, outermost, so it sees what the client saw, refusals included, and a streamed
answer's latency runs until its last byte.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "unmatched"

REQUESTS = Counter(
    "chatda_http_requests_total",
    "HTTP requests answered, by route template, method and status code",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "chatda_http_request_duration_seconds",
    "Time from the request's arrival to the last byte of the answer, by route template",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_template(scope: Scope) -> str:
    """The template of the route the router matched into ``scope``, or ``unmatched``.

    Starlette's router updates the request's scope in place with the matched route (FastAPI
    routes put themselves under ``route``; a mount leaves its path in ``root_path``).
    """
    route = scope.get("route")
    if isinstance(route, Mount):
        return f"{route.path}/{{path}}"
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    return UNMATCHED


class HttpMetrics:
    """Counts and times every HTTP request; other scopes (lifespan) pass untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before any answer reaches the client as a 500

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            route = route_template(scope)
            method = scope["method"] if scope["method"] in _METHODS else "other"
            REQUESTS.labels(route, method, str(status)).inc()
            LATENCY.labels(route, method).observe(time.perf_counter() - started)
