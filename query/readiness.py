"""Readiness of one API process: which dependencies it can use now (``/readyz``, ``/metrics``).

Liveness (``/healthz``) says only that the process and its event loop answer; restarting a
process because Milvus is down would not bring Milvus back. Readiness says whether this
replica should get traffic: the model is loaded (true once the app serves at all: start-up
loads it before the first request), the intent catalog is loaded (intents answer 503 until
then), Milvus answers when one is configured, and the in-memory article tier holds the served
collection (until then the document legs go to Milvus, slower under load). Kafka is reported
but does not gate readiness: feedback falls back to SQL without it, and the tier keeps its
last state.

Checks are cheap (one ``GetVersion`` call, a TCP connect) with a short timeout, and their result
is kept for ``TTL_S``: probes from several kubelets, load balancers and Prometheus cannot turn
into a stream of calls to Milvus, and only one check runs at a time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import Gauge

from chatda.process import port_accepts
from chatda.storage.milvus_client import ping

if TYPE_CHECKING:  # the state holds its Readiness: query.state imports this module
    from query.state import ApiState

TTL_S = 1.0
TIMEOUT_S = 1.0

DEPENDENCY_UP = Gauge(
    "chatda_dependency_up",
    "1 when this API process can use the dependency, 0 when not (as of the last check)",
    ["dependency"],
)


@dataclass(frozen=True)
class Dependency:
    up: bool
    required: bool
    """Whether it gates readiness."""
    detail: str


Dependencies = dict[str, Dependency]


def ready(dependencies: Dependencies) -> bool:
    return all(d.up for d in dependencies.values() if d.required)


def failing(dependencies: Dependencies) -> list[str]:
    """The required dependencies that are down, by name."""
    return [name for name, d in dependencies.items() if d.required and not d.up]


def as_json(dependencies: Dependencies) -> dict[str, dict[str, object]]:
    return {name: asdict(d) for name, d in dependencies.items()}


def _kafka_answers(bootstrap: str, timeout_s: float) -> bool:
    """Whether any bootstrap server accepts a TCP connection (``host:port,host:port``)."""
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        if host and port.isdigit() and port_accepts(host.strip("[]"), int(port), timeout_s):
            return True
    return False


class Readiness:
    def __init__(self, state: ApiState, ttl_s: float = TTL_S, timeout_s: float = TIMEOUT_S):
        self.state = state
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self._lock = asyncio.Lock()
        self._checked_at = float("-inf")
        self._last: Dependencies = {}

    async def check(self) -> Dependencies:
        """Every dependency's state, at most ``ttl_s`` old; updates the gauges."""
        async with self._lock:
            if time.monotonic() - self._checked_at >= self.ttl_s:
                self._last = await self._check_now()
                self._checked_at = time.monotonic()
                for name, dependency in self._last.items():
                    DEPENDENCY_UP.labels(dependency=name).set(1 if dependency.up else 0)
            return self._last

    async def _check_now(self) -> Dependencies:
        state = self.state
        catalog = state.catalog
        found: Dependencies = {
            "model": Dependency(True, True, state.encoder.ref),
            "catalog": Dependency(
                catalog.ready,
                True,
                f"version {catalog.snapshot.version}" if catalog.ready else catalog.progress,
            ),
        }
        articles = state.search.articles
        if articles.configured:
            if not articles.connected:
                found["milvus"] = Dependency(False, True, "not connected yet")
            else:
                up = await self._within_timeout(ping, articles.client, self.timeout_s)
                found["milvus"] = Dependency(up, True, "answers" if up else "does not answer")
        tier = state.search.tier
        if tier.enabled:
            found["article_tier"] = Dependency(tier.status.ready, True, tier.status.detail)
        bootstrap = state.settings.kafka_bootstrap
        if bootstrap:
            up = await self._within_timeout(_kafka_answers, bootstrap, self.timeout_s)
            detail = "accepts connections" if up else "unreachable (feedback goes to SQL)"
            found["kafka"] = Dependency(up, False, detail)
        return found

    async def _within_timeout(self, probe: Callable[..., bool], *args: Any) -> bool:
        """Run a blocking probe on a thread; False when it has not answered in time."""
        try:
            return bool(
                await asyncio.wait_for(asyncio.to_thread(probe, *args), self.timeout_s + 0.5)
            )
        except TimeoutError:
            return False
