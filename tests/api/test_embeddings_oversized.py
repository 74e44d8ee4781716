"""An embeddings request too large for its own deadline, through the app with the real model:
refused at once with 413 (not 504 after its deadline, nor 429 inviting it back), and the encoder
stays free for the next request."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from query.app import create_app
from tests.search.conftest import make_settings, wait_until_ready

OVERSIZED = {"input": ["가 " * 700] * 16}
"""16 texts of 512 tokens (the model's limit): 4 passes of 2,048 padded tokens here, each about
a second on this CPU, for a 1 s deadline."""


@pytest.fixture(scope="module")
def client(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = make_settings(
        tmp_path_factory.mktemp("oversized"),
        models_dir,
        batch_max_size=4,
        batch_max_tokens=2048,
        request_timeout_ms=1000,
    )
    with TestClient(create_app(settings)) as c:
        wait_until_ready(c, titles=False)
        yield c


def served(client: TestClient) -> bool:
    return client.post("/v1/embeddings", json={"input": "송금"}).status_code == 200


def test_oversized_request_is_413_at_once_and_the_next_request_is_served(
    client: TestClient,
) -> None:
    # nothing this size measured yet: admitted as before, timed out; its first pass measures it
    first = client.post("/v1/embeddings", json=OVERSIZED)
    assert first.status_code in (413, 504), first.text
    deadline = time.monotonic() + 60
    while not served(client) and time.monotonic() < deadline:  # the pass it was in has ended
        time.sleep(0.05)

    started = time.monotonic()
    refused = client.post("/v1/embeddings", json=OVERSIZED)
    took = time.monotonic() - started
    assert refused.status_code == 413, refused.text
    assert "Retry-After" not in refused.headers
    error = refused.json()["error"]
    assert error["budget_ms"] == pytest.approx(1000, abs=100)
    assert error["needed_ms"] > error["budget_ms"]
    assert "16 texts (8192 tokens)" in error["message"]
    assert "send fewer or shorter texts" in error["message"]
    assert took < 1.0  # refused before its deadline, not at it

    match = client.get("/v1/intents/match", params={"q": "송금하는 방법"})
    assert match.status_code == 200, match.text
    small = client.post("/v1/embeddings", json={"input": ["적금 금리", "환전 수수료"]})
    assert small.status_code == 200, small.text
