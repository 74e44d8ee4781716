"""Admission control: the per-process in-flight gate, and search when the encoder refuses.

The gate is driven as a raw ASGI app (requests held inside the app by an event), then through
the real app. The search cases fill the real batcher of the real app with work, so its own
estimate refuses the query embedding: no mock of the encoder or of time.
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
from query.admission import AdmissionGate
from query.app import create_app
from tests.search.conftest import CATALOG_YAML, wait_until_ready


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


async def call(app, path: str) -> tuple[int, dict[str, str], bytes]:
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await app({"type": "http", "method": "GET", "path": path, "headers": []}, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {k.decode().lower(): v.decode() for k, v in start.get("headers", [])}
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], headers, body


async def test_gate_refuses_past_the_limit_at_once_and_admits_again_after() -> None:
    held = Held()
    gate = AdmissionGate(held, limit=3)
    inside = [asyncio.ensure_future(call(gate, "/v1/search")) for _ in range(3)]
    while held.entered < 3:
        await asyncio.sleep(0)
    status, headers, body = await call(gate, "/v1/search")  # answered while 3 are held
    assert status == 429 and int(headers["retry-after"]) >= 1
    message = json.loads(body)["error"]["message"]
    assert "3 requests in flight (limit 3)" in message
    assert held.entered == 3  # the refused request never reached the app
    assert not any(task.done() for task in inside)
    held.release.set()
    assert [s for s, _, _ in await asyncio.gather(*inside)] == [200, 200, 200]
    assert (await call(gate, "/v1/search"))[0] == 200
    assert gate.in_flight == 0


async def test_probes_and_metrics_pass_a_full_gate() -> None:
    held = Held()
    gate = AdmissionGate(held, limit=1)
    inside = asyncio.ensure_future(call(gate, "/v1/embeddings"))
    while held.entered < 1:
        await asyncio.sleep(0)
    probes = [asyncio.ensure_future(call(gate, p)) for p in ("/healthz", "/readyz", "/metrics")]
    while held.entered < 4:  # the probes reached the app although the gate is full
        await asyncio.sleep(0)
    held.release.set()
    assert [s for s, _, _ in await asyncio.gather(inside, *probes)] == [200] * 4


async def test_a_limit_of_zero_admits_everything() -> None:
    held = Held()
    held.release.set()
    gate = AdmissionGate(held, limit=0)
    statuses = await asyncio.gather(*(call(gate, "/v1/search") for _ in range(50)))
    assert {s for s, _, _ in statuses} == {200}


PROFILES = """\
intents_only:
  budget_ms: 30
  sources: [intents]
"""


@pytest.fixture(scope="module")
def client(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data_dir = tmp_path_factory.mktemp("admission")
    catalog = data_dir / "catalog.yaml"
    catalog.write_text(CATALOG_YAML, encoding="utf-8")
    settings = Settings(
        data_dir=data_dir,
        models_dir_override=models_dir,
        device="cpu",
        catalog_file=catalog,
        profiles=PROFILES,
        max_in_flight=1,
        request_timeout_ms=120_000,  # the slow request below must not time out on a slow box
    )
    with TestClient(create_app(settings)) as c:
        wait_until_ready(c, titles=False)
        yield c


def in_flight(client: TestClient) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("chatda_api_in_flight "):
            return float(line.split()[1])
    raise AssertionError("no chatda_api_in_flight gauge")


def test_the_app_sheds_past_its_in_flight_limit(client: TestClient) -> None:
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
        while in_flight(client) < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert in_flight(client) == 1, "the slow request never got in"
        refused = client.post("/v1/feedback", json={"type": "click"})
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["Retry-After"]) >= 1
        assert "in flight" in refused.json()["error"]["message"]
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
