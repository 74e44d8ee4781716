"""The OpenAI-compatible embeddings endpoint, health and metrics, over real HTTP semantics."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from chatda.models.encoder import Encoder
from chatda.settings import Settings
from query.app import create_app


@pytest.fixture(scope="module")
def client(models_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("api"), models_dir_override=models_dir, device="cpu"
    )
    with TestClient(create_app(settings)) as c:
        yield c


def test_healthz_names_the_model(client) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["model"] == "e5-small-ko@base"
    assert body["device"] == "cpu" and "ready" in body["catalog"]


def test_single_input_openai_shape(client, encoder: Encoder) -> None:
    r = client.post("/v1/embeddings", json={"input": "송금하는 방법", "model": "whatever"})
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "list" and body["model"] == "e5-small-ko@base"
    item = body["data"][0]
    assert item["object"] == "embedding" and item["index"] == 0
    vec = np.array(item["embedding"], dtype=np.float32)
    assert np.allclose(vec, encoder.encode(["송금하는 방법"], "query")[0], atol=1e-4)
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 3


def test_passage_input_type_and_base64(client, encoder: Encoder) -> None:
    texts = ["적금 금리 비교", "해외 송금 수수료 안내"]
    r = client.post(
        "/v1/embeddings",
        json={"input": texts, "input_type": "passage", "encoding_format": "base64"},
    )
    assert r.status_code == 200
    got = np.vstack(
        [np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in r.json()["data"]]
    )
    assert np.allclose(got, encoder.encode(texts, "passage"), atol=1e-4)


@pytest.mark.parametrize(
    "payload, fragment",
    [
        ({}, "input"),
        ({"input": []}, "empty"),
        ({"input": ["x"] * 300}, "at most 256"),
        ({"input": [1, 2, 3]}, "input"),
        ({"input": "x", "input_type": "document"}, "input_type"),
        ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
    ],
)
def test_invalid_requests_get_422_with_message(client, payload, fragment) -> None:
    r = client.post("/v1/embeddings", json=payload)
    assert r.status_code == 422
    assert fragment in r.json()["error"]["message"]


def test_hostile_text_never_crashes(client) -> None:
    hostile = ["", "\x00\x07제어문자", "😀🙏🏽👨‍👩‍👧", "가" * 50_000]
    r = client.post("/v1/embeddings", json={"input": hostile})
    assert r.status_code == 200
    assert len(r.json()["data"]) == len(hostile)


def test_a_lone_surrogate_is_refused_at_the_door(client) -> None:
    """It can never be encoded as UTF-8 again, so ``chatda.json_input`` refuses it (422)."""
    body = json.dumps({"input": ["\ud800 외톨이 서러게이트"]})  # \ud800 escaped
    r = client.post("/v1/embeddings", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert "invalid JSON" in r.json()["error"]["message"]


def test_invalid_utf8_body_is_a_client_error(client) -> None:
    r = client.post(
        "/v1/embeddings",
        content=b'{"input": "\xff\xfe broken"}',
        headers={"content-type": "application/json"},
    )
    assert 400 <= r.status_code < 500


def test_metrics_expose_batcher(client) -> None:
    client.post("/v1/embeddings", json={"input": "지표"})
    text = client.get("/metrics").text
    assert "chatda_batch_size_count" in text
    assert "chatda_batch_queue_wait_seconds_bucket" in text


def test_overload_maps_to_429_and_more_than_the_queue_holds_to_413(
    models_dir: Path, tmp_path: Path
) -> None:
    """A full queue is 429 with Retry-After; a request the queue could never hold is 413 (no
    retry can succeed), not 429."""
    settings = Settings(
        data_dir=tmp_path,
        models_dir_override=models_dir,
        device="cpu",
        batch_queue_limit=4,
        batch_max_size=1,
    )
    with TestClient(create_app(settings)) as c:
        whole = c.post("/v1/embeddings", json={"input": ["하나", "둘", "셋", "넷", "다섯"]})
        batcher = c.app.state.chatda.batcher  # type: ignore[attr-defined]
        assert c.portal is not None
        long_rows = ["긴 문서입니다. " * 100] * 4  # one 512-token row a pass: 3 stay queued
        busy = c.portal.start_task_soon(
            batcher.encode, long_rows, "passage", time.monotonic() + 600
        )
        deadline = time.monotonic() + 30
        while batcher.queued != 3 and time.monotonic() < deadline:
            time.sleep(0.002)
        full = c.post("/v1/embeddings", json={"input": ["하나", "둘"]})
        busy.result(60)
    assert whole.status_code == 413, whole.text
    assert "send at most 4 texts" in whole.json()["error"]["message"]
    assert full.status_code == 429, full.text
    assert int(full.headers["Retry-After"]) >= 1
    assert "queue full" in full.json()["error"]["message"]
