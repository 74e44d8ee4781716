"""Liveness and readiness are different answers (issue 23, item 9).

``/healthz`` answers while the process does; ``/readyz`` only while the model and the catalog
are loaded and the configured Milvus answers, naming what is missing otherwise, and
``/metrics`` carries the same as ``chatda_dependency_up``. Milvus going away and coming back is
tests/faults/test_milvus_restart.py.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chatda.catalog.service import CatalogService
from chatda.catalog.snapshot import Fusion
from chatda.settings import Settings
from chatda.text.morphemes import default_morphemes
from query.app import create_app
from query.readiness import TTL_S

CATALOG = """\
version: 1
intents:
  - id: 1
    name: 송금
    hints: [돈 보내기]
"""


@pytest.fixture(scope="module")
def client(
    models_dir: Path,
    milvus_uri: str,
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("readiness")
    (root / "catalog.yaml").write_text(CATALOG, encoding="utf-8")
    settings = Settings(
        data_dir=root,
        models_dir_override=models_dir,
        device="cpu",
        catalog_file=root / "catalog.yaml",
        milvus_uri=milvus_uri,
        kafka_bootstrap=kafka_bootstrap,
        events_topic=f"search-events-{uuid.uuid4().hex[:8]}",
    )
    with TestClient(create_app(settings)) as c:
        deadline = time.monotonic() + 120
        while c.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, c.get("/readyz").text
            time.sleep(0.2)
        yield c


def readyz_until(client: TestClient, status: int) -> dict:
    """/readyz once it answers ``status`` (its checks are cached for TTL_S)."""
    deadline = time.monotonic() + 10 * TTL_S
    while (response := client.get("/readyz")).status_code != status:
        assert time.monotonic() < deadline, response.text
        time.sleep(TTL_S / 4)
    return response.json()


def gauge(client: TestClient, dependency: str) -> float:
    line = f'chatda_dependency_up{{dependency="{dependency}"}} '
    for row in client.get("/metrics").text.splitlines():
        if row.startswith(line):
            return float(row.removeprefix(line))
    raise AssertionError(f"no {line.strip()} in /metrics")


def test_ready_names_every_dependency(client: TestClient) -> None:
    body = readyz_until(client, 200)
    assert body["status"] == "ready"
    assert {name: d["up"] for name, d in body["dependencies"].items()} == {
        "model": True,
        "catalog": True,
        "milvus": True,
        "article_tier": True,
        "kafka": True,
    }
    assert body["dependencies"]["model"]["detail"] == "e5-small-ko@base"
    # the tier gates readiness: it holds the served collection (or knows none is served yet)
    assert body["dependencies"]["article_tier"]["required"] is True
    # feedback falls back to SQL without Kafka: reported, but it does not gate readiness
    assert body["dependencies"]["kafka"]["required"] is False
    for dependency in ("model", "catalog", "milvus", "article_tier", "kafka"):
        assert gauge(client, dependency) == 1, dependency


def test_not_ready_while_the_catalog_loads(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = client.app.state.chatda  # type: ignore[attr-defined]
    # a real catalog service that has not loaded yet, as every process has at start-up
    loading = CatalogService(
        state.store, state.batcher, default_morphemes(), 0.9, Fusion.from_settings(Settings())
    )
    monkeypatch.setattr(state, "catalog", loading)
    body = readyz_until(client, 503)
    assert body["error"]["failing"] == ["catalog"]
    assert "catalog" in body["error"]["message"]
    assert body["error"]["dependencies"]["catalog"] == {
        "up": False,
        "required": True,
        "detail": "loading",
    }
    assert gauge(client, "catalog") == 0
    assert client.get("/healthz").status_code == 200  # alive all the same: no restart
    monkeypatch.undo()
    readyz_until(client, 200)
    assert gauge(client, "catalog") == 1
