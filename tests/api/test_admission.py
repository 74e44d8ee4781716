"""Admission control: per-route-class in-flight pools, their retry hints, and search when the
encoder refuses.

The gate is driven as a raw ASGI app (requests held inside the app by an event, or served in a
fixed time by a sleep), then through the real app. The search cases fill the real batcher of
the real app with work, so its own estimate refuses the query embedding: no mock of the encoder
or of time.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chatda.settings import Settings
from query.admission import EMBEDDINGS, MAX_RETRY_S, POOLS, SEARCH, AdmissionGate, pool_limits
from query.app import create_app
from tests.search.conftest import make_settings, wait_until_ready

POOL_PATHS = {
    "search": "/v1/search",
    "embeddings": "/v1/embeddings",
    "admin": "/v1/admin/intents",
    "other": "/v1/feedback",
}


class Held:
    """A raw ASGI app whose requests stay in flight until ``release`` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = 0

    async def __call__(self, scope, receive, send) -> None:
        self.entered += 1
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


class Paced(Held):
    """Serves each request in ``service_s``; one whose query string is ``hold`` stays in
    flight until ``release`` is set."""

    def __init__(self, service_s: float) -> None:
        super().__init__()
        self.service_s = service_s

    async def __call__(self, scope, receive, send) -> None:
        if scope["query_string"] == b"hold":
            await super().__call__(scope, receive, send)
            return
        await asyncio.sleep(self.service_s)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def call(app, path: str, query: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "query_string": query, "headers": []}
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {k.decode().lower(): v.decode() for k, v in start.get("headers", [])}
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], headers, body


async def fill(gate: AdmissionGate, held: Held, path: str, n: int) -> list[asyncio.Future]:
    """``n`` requests to ``path`` held inside the app."""
    before = held.entered
    inside = [asyncio.ensure_future(call(gate, path, b"hold")) for _ in range(n)]
    while held.entered < before + n:
        answered = [task.result()[0] for task in inside if task.done()]
        assert not answered, f"{path} answered {answered} instead of entering the app"
        await asyncio.sleep(0)
    return inside


async def refused(gate: AdmissionGate, path: str) -> tuple[dict[str, str], dict]:
    """A request the gate must refuse at once: one it admits instead would stay held."""
    try:
        status, headers, body = await asyncio.wait_for(call(gate, path), 10)
    except TimeoutError:
        raise AssertionError(f"{path} was admitted, not refused") from None
    assert status == 429, status
    assert int(headers["content-length"]) == len(body)
    return headers, json.loads(body)["error"]


async def test_gate_refuses_past_the_limit_at_once_and_admits_again_after() -> None:
    held = Held()
    gate = AdmissionGate(held, limits={SEARCH: 3})
    inside = await fill(gate, held, "/v1/search", 3)
    headers, error = await refused(gate, "/v1/search")  # answered while 3 are held
    assert int(headers["retry-after"]) >= 1
    assert headers["content-type"] == "application/json"
    assert "3 search requests in flight" in error["message"]
    assert error["pool"] == "search" and error["retry_after_s"] > 0
    assert held.entered == 3  # the refused request never reached the app
    assert not any(task.done() for task in inside)
    held.release.set()
    assert [s for s, _, _ in await asyncio.gather(*inside)] == [200, 200, 200]
    assert (await call(gate, "/v1/search"))[0] == 200
    assert gate.pools[SEARCH].in_flight == 0


async def test_search_like_routes_share_the_search_pool() -> None:
    held = Held()
    gate = AdmissionGate(held, limits={SEARCH: 2})
    await fill(gate, held, "/v1/suggest", 1)
    await fill(gate, held, "/v1/intents/match", 1)
    await refused(gate, "/v1/search")
    held.release.set()


@pytest.mark.parametrize(
    ("saturated", "free"),
    [
        ("embeddings", "search"),
        ("search", "embeddings"),
        ("search", "other"),
        ("other", "admin"),
        ("admin", "search"),
        ("embeddings", "admin"),
    ],
)
async def test_a_saturated_pool_refuses_only_its_own_routes(saturated: str, free: str) -> None:
    held = Held()
    gate = AdmissionGate(held, limits=dict.fromkeys(POOLS, 2))
    inside = await fill(gate, held, POOL_PATHS[saturated], 2)
    assert (await refused(gate, POOL_PATHS[saturated]))[1]["pool"] == saturated
    other = await fill(gate, held, POOL_PATHS[free], 2)  # waits until both reached the app
    assert gate.pools[free].in_flight == 2
    held.release.set()
    assert {s for s, _, _ in await asyncio.gather(*inside, *other)} == {200}


async def test_probes_and_metrics_pass_every_full_pool_uncounted() -> None:
    held = Held()
    gate = AdmissionGate(held, limits=dict.fromkeys(POOLS, 1))
    inside = [task for pool in POOLS for task in await fill(gate, held, POOL_PATHS[pool], 1)]
    assert [(await refused(gate, POOL_PATHS[pool]))[1]["pool"] for pool in POOLS] == list(POOLS)
    probes = [  # they reach the app although every pool is full
        task
        for path in ("/healthz", "/readyz", "/metrics")
        for task in await fill(gate, held, path, 1)
    ]
    assert all(pool.in_flight == 1 for pool in gate.pools.values())
    held.release.set()
    assert {s for s, _, _ in await asyncio.gather(*inside, *probes)} == {200}


async def test_a_limit_of_zero_admits_everything() -> None:
    held = Held()
    held.release.set()
    gate = AdmissionGate(held, limits={SEARCH: 0})
    statuses = await asyncio.gather(*(call(gate, "/v1/search") for _ in range(50)))
    assert {s for s, _, _ in statuses} == {200}


async def refusal_hints(gate: AdmissionGate, path: str, n: int) -> list[float]:
    hints = []
    for _ in range(n):
        headers, error = await refused(gate, path)
        hint = error["retry_after_s"]
        assert int(headers["retry-after"]) == max(1, -int(-hint // 1))
        hints.append(hint)
    return hints


async def test_retry_after_follows_each_pools_drain_rate_not_its_latency() -> None:
    """Both pools serve a request in 100 ms; search keeps 8 in flight (drains ~80/s),
    embeddings 2 (~20/s). A burst of refused requests is told to come back spread over the
    time its own pool needs to free that many slots: ~k / rate for the k-th, ~4x longer for
    embeddings. A moving average of latency would tell both the same."""
    app = Paced(0.1)
    limits = {SEARCH: 8, EMBEDDINGS: 2}
    gate = AdmissionGate(app, limits=limits)

    async def closed_loop(path: str, until: float) -> None:
        while time.monotonic() < until:
            assert (await call(gate, path))[0] == 200

    until = time.monotonic() + 1.5
    await asyncio.gather(
        *(closed_loop(POOL_PATHS[pool], until) for pool, n in limits.items() for _ in range(n))
    )
    for pool, n in limits.items():
        await fill(gate, app, POOL_PATHS[pool], n)
    search = await refusal_hints(gate, "/v1/search", 16)
    embeddings = await refusal_hints(gate, "/v1/embeddings", 16)
    for hints in (search, embeddings):  # spread: the k-th refused comes back after the (k-1)-th
        assert hints == sorted(hints) and hints[-1] > hints[0]
    assert 0.1 <= search[-1] <= 0.6, search  # 16 slots at ~80/s: 0.2 s (slower if loaded)
    assert 0.4 <= embeddings[-1] <= 2.4, embeddings  # 16 slots at ~20/s: 0.8 s
    assert 2.5 <= embeddings[-1] / search[-1] <= 8, (search, embeddings)
    await asyncio.sleep(search[-1] + 0.1)  # the virtual queue has been served meanwhile
    assert (await refusal_hints(gate, "/v1/search", 1))[0] <= search[1]
    app.release.set()


async def test_a_flood_of_refusals_is_told_at_most_the_longest_hint() -> None:
    held = Held()
    gate = AdmissionGate(held, limits={EMBEDDINGS: 1})
    await fill(gate, held, "/v1/embeddings", 1)
    hints = await refusal_hints(gate, "/v1/embeddings", 200)
    assert max(hints) == MAX_RETRY_S
    held.release.set()


def test_embeddings_pool_defaults_to_two_batches() -> None:
    assert pool_limits(Settings(batch_max_size=48))[EMBEDDINGS] == 96
    assert pool_limits(Settings(max_in_flight_embeddings=5))[EMBEDDINGS] == 5


PROFILES = """\
intents_only:
  budget_ms: 30
  sources: [intents]
"""


@pytest.fixture(scope="module")
def client(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = make_settings(
        tmp_path_factory.mktemp("admission"),
        models_dir,
        profiles=PROFILES,
        max_in_flight_search=1,
        max_in_flight_embeddings=1,
        max_in_flight_other=1,
        request_timeout_ms=120_000,  # the slow request below must not time out on a slow box
    )
    with TestClient(create_app(settings)) as c:
        wait_until_ready(c, titles=False)
        yield c


def in_flight(client: TestClient, pool: str) -> float:
    prefix = f'chatda_api_in_flight{{pool="{pool}"}} '
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(prefix):
            return float(line.split()[1])
    raise AssertionError(f"no chatda_api_in_flight gauge for {pool}")


def test_the_app_sheds_a_full_pool_and_serves_the_others(client: TestClient) -> None:
    """One slow /v1/embeddings fills its pool of 1: the next one is refused at once, while a
    search-like route and feedback (pools of 1 too) are served."""
    texts = [f"{'긴 문서입니다. ' * 60}{i}" for i in range(64)]
    slow: dict[str, int] = {}
    worker = threading.Thread(
        target=lambda: slow.update(
            status=client.post("/v1/embeddings", json={"input": texts}).status_code
        )
    )
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while in_flight(client, "embeddings") < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert in_flight(client, "embeddings") == 1, "the slow request never got in"
        refused = client.post("/v1/embeddings", json={"input": "송금"})
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.json()["error"]["pool"] == "embeddings"
        assert "in flight" in refused.json()["error"]["message"]
        assert client.get("/v1/suggest", params={"q": "송금"}).status_code == 200
        assert client.post("/v1/feedback", json={"type": "click"}).status_code != 429
        assert in_flight(client, "embeddings") == 1, "the slow request ended too soon to tell"
    finally:
        worker.join(120)
    assert slow == {"status": 200}


@pytest.fixture
def busy_encoder(client: TestClient) -> Iterator[None]:
    """Thousands of texts queued in the app's own batcher: dozens of passes ahead of any
    query, far beyond a 30 ms budget whatever this machine's speed."""
    batcher = client.app.state.chatda.batcher  # type: ignore[attr-defined]
    texts = [f"송금 방법 {i}" for i in range(3000)]
    assert client.portal is not None
    work = client.portal.start_task_soon(batcher.encode, texts, "query", time.monotonic() + 600)
    deadline = time.monotonic() + 30
    while batcher.queued < 1000 and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield
    finally:
        work.cancel()


def test_search_answers_without_the_encoder_when_it_cannot_in_time(
    client: TestClient, busy_encoder: None
) -> None:
    r = client.get("/v1/search", params={"q": "송금", "profile": "instant"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["partial"] is True
    assert body["sources"]["suggest"]["status"] == "ok"
    assert body["sources"]["intents"]["status"] == "skipped"
    assert "cannot answer in time" in body["sources"]["intents"]["message"]


def test_search_that_needs_only_the_encoder_is_429(client: TestClient, busy_encoder: None) -> None:
    r = client.get("/v1/search", params={"q": "송금", "profile": "intents_only"})
    assert r.status_code == 429, r.text
    assert int(r.headers["Retry-After"]) >= 1
    assert "cannot answer in time" in r.json()["error"]["message"]
