"""The API's /metrics: HTTP requests by route template, search per source, partial answers,
intents per answer, the catalog and the served index. Each metric is read before and after
the action that should move it, on the search tests' app (Milvus over a small corpus)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from chatda.search.profiles import SourceName
from query.app import create_app
from tests.search.conftest import (  # noqa: F401 (fixtures)
    ADMIN_TOKEN,
    articles_alias,
    corpus_rows,
    make_settings,
    search_client,
    wait_until_ready,
)
from tests.search.test_search_api import BrokenLeg, swapped


def scrape(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of /metrics by (name, labels)."""
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


@pytest.fixture
def client(search_client: TestClient) -> TestClient:  # noqa: F811
    """The search tests' app: every engine, a small corpus in Milvus."""
    return search_client


@pytest.fixture
def alias(articles_alias: str) -> str:  # noqa: F811
    return articles_alias


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_http_requests_are_counted_by_route_template_and_status(client) -> None:
    before = scrape(client)
    assert client.get("/v1/search", params={"q": "환전"}).status_code == 200
    assert client.get("/v1/admin/intents/987654").status_code == 401
    assert client.get("/no/such/page-31337").status_code == 404
    after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("chatda_http_requests_total", route="/v1/search", method="GET", status="200") == 1
    admin = {"route": "/v1/admin/intents/{intent_id}", "method": "GET"}
    assert moved("chatda_http_requests_total", **admin, status="401") == 1
    assert moved("chatda_http_requests_total", route="unmatched", method="GET", status="404") == 1
    search = {"route": "/v1/search", "method": "GET"}
    assert moved("chatda_http_request_duration_seconds_count", **search) == 1
    assert moved("chatda_http_request_duration_seconds_sum", **search) > 0
    # the template, never the raw path: a scanner adds no series
    assert not any("987654" in str(labels) or "31337" in str(labels) for _, labels in after)


def test_search_sources_partial_answers_and_intents(client) -> None:
    before = scrape(client)
    ok = client.get("/v1/search", params={"q": "해외로 돈 보내는 방법", "profile": "patient"})
    with swapped(client, BrokenLeg(SourceName.DENSE)):
        broken = client.get("/v1/search", params={"q": "신용카드", "profile": "patient-milvus"})
    after = scrape(client)
    ok_body, broken_body = ok.json(), broken.json()
    assert ok_body["partial"] is False and broken_body["partial"] is True
    assert ok_body["intents"], "the query should pass an intent"

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("chatda_search_answers_total", profile="patient", partial="false") == 1
    assert moved("chatda_search_answers_total", profile="patient-milvus", partial="true") == 1
    assert moved("chatda_search_source_total", source="dense", status="ok") == 1
    assert moved("chatda_search_source_total", source="dense", status="error") == 1
    assert moved("chatda_search_source_total", source="bm25", status="ok") == 2
    assert moved("chatda_search_source_seconds_count", source="bm25") == 2
    bm25_s = ok_body["sources"]["bm25"]["ms"] / 1000 + broken_body["sources"]["bm25"]["ms"] / 1000
    assert moved("chatda_search_source_seconds_sum", source="bm25") == pytest.approx(bm25_s)
    assert moved("chatda_search_intents_passed_count") == 2
    passed = len(ok_body["intents"]) + len(broken_body["intents"])
    assert moved("chatda_search_intents_passed_sum") == passed
    assert moved("chatda_search_seconds_count", profile="patient") == 1
    assert moved("chatda_search_seconds_count", profile="patient-milvus") == 1


def test_served_index_names_the_alias_collection_and_model(client, alias) -> None:
    deadline = time.monotonic() + 30
    while True:  # the model follower reads the alias on its first poll
        info = {
            dict(labels)["alias"]: dict(labels)
            for (name, labels), v in scrape(client).items()
            if name == "chatda_served_index_info" and v == 1
        }
        if info.get(alias, {}).get("collection", "none") != "none":
            break
        assert time.monotonic() < deadline, info
        time.sleep(0.2)
    assert info[alias]["collection"].startswith("articles__searchtest_")
    assert info[alias]["model"] == client.get("/healthz").json()["model"]
    assert len(info) == 1, "only the label set served now is exported"


@pytest.fixture(scope="module")
def catalog_client(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """An app of its own (no engines): its catalog is edited here, which the search tests'
    shared app must not see."""
    settings = make_settings(tmp_path_factory.mktemp("metrics-catalog"), models_dir)
    with TestClient(create_app(settings)) as client:
        wait_until_ready(client, titles=False)
        yield client


def test_catalog_version_and_size_follow_an_edit(catalog_client) -> None:
    health = catalog_client.get("/healthz").json()["catalog"]
    samples = scrape(catalog_client)
    assert value(samples, "chatda_catalog_ready") == 1
    assert value(samples, "chatda_catalog_version") == health["version"]
    assert value(samples, "chatda_catalog_intents") == health["intents"]

    created = catalog_client.post(
        "/v1/admin/intents",
        json={"id": 90, "name": "지표 테스트", "hints": ["메트릭 확인"]},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert created.status_code == 201, created.text
    deadline = time.monotonic() + 30
    while catalog_client.get("/healthz").json()["catalog"]["version"] == health["version"]:
        assert time.monotonic() < deadline, "the edit never reached the serving snapshot"
        time.sleep(0.1)
    samples = scrape(catalog_client)
    assert value(samples, "chatda_catalog_version") > health["version"]
    assert value(samples, "chatda_catalog_intents") == health["intents"] + 1
