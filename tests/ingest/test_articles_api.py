"""``POST /v1/articles`` and ``DELETE /v1/articles/{post_id}`` against the session broker.

The router runs in a minimal app with the real error handlers, so these tests need neither the
model nor the catalog; ``create_app`` is only checked to mount it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from chatda.articles.message import ArticleMessage
from chatda.process import free_port
from chatda.settings import Settings
from query.app import create_app
from tests.ingest.helpers import articles_app, read_topic, sample_article, unique

TOKEN = "s3cret-publisher-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def make_client(settings: Settings) -> TestClient:
    return TestClient(articles_app(settings))


def payload(i: int) -> dict:
    return sample_article(i, "api").model_dump(mode="json")


@pytest.fixture(scope="module")
def topic() -> str:
    return unique("articles-api")


@pytest.fixture(scope="module")
def client(kafka_bootstrap: str, topic: str, tmp_path_factory) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("api"),
        kafka_bootstrap=kafka_bootstrap,
        articles_topic=topic,
        publisher_token=SecretStr(TOKEN),
        max_text_chars=2000,
    )
    with make_client(settings) as c:
        yield c


def test_create_app_mounts_the_article_routes(tmp_path: Path) -> None:
    paths = create_app(Settings(data_dir=tmp_path)).openapi()["paths"]
    assert "post" in paths["/v1/articles"]
    assert "delete" in paths["/v1/articles/{post_id}"]


def test_publishing_without_a_configured_token_is_disabled(tmp_path: Path) -> None:
    with make_client(Settings(data_dir=tmp_path, kafka_bootstrap="127.0.0.1:1")) as c:
        r = c.post("/v1/articles", json=payload(1), headers=AUTH)
        d = c.delete("/v1/articles/a-1", headers=AUTH)
    assert r.status_code == d.status_code == 503
    assert "publishing is disabled" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": "Basic x"}],
    ids=["missing", "wrong", "no-scheme", "basic"],
)
def test_bad_or_missing_token_is_401(client: TestClient, headers: dict) -> None:
    r = client.post("/v1/articles", json={"not": "even valid"}, headers=headers)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert client.delete("/v1/articles/a-1", headers=headers).status_code == 401


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({**payload(1), "post_id": "bad id"}, "post_id"),
        ({**payload(1), "body": "가" * 2001}, "body: must be at most 2000 characters"),
        ({**payload(1), "tags": ["t" * 65]}, "tags.0"),
        ({**payload(1), "category": "a\x00b"}, "category: filter value contains"),
        ({"articles": []}, "articles"),
        ({"articles": [payload(1)] * 501}, "articles"),
        ({"articles": [payload(1), {**payload(2), "updated_at": "어제"}]}, "articles.1.updated_at"),
        ([payload(1)], "dictionary"),
    ],
)
def test_invalid_articles_are_422_naming_the_field(
    client: TestClient, body: object, fragment: str
) -> None:
    r = client.post("/v1/articles", json=body, headers=AUTH)
    assert r.status_code == 422
    assert fragment in r.json()["error"]["message"]


def test_invalid_json_is_422(client: TestClient) -> None:
    r = client.post("/v1/articles", content=b'{"post_id": ', headers=AUTH)
    assert r.status_code == 422
    assert "invalid JSON" in r.json()["error"]["message"]


def test_single_and_bulk_publish_answer_202_with_offsets(
    client: TestClient, kafka_bootstrap: str, topic: str
) -> None:
    single = client.post("/v1/articles", json=payload(0), headers=AUTH)
    assert single.status_code == 202
    (placed,) = single.json()["articles"]
    assert single.json()["topic"] == topic and placed["post_id"] == "api-0000"
    bulk = client.post(
        "/v1/articles", json={"articles": [payload(i) for i in range(1, 4)]}, headers=AUTH
    )
    assert bulk.status_code == 202
    placed_all = [placed, *bulk.json()["articles"]]
    assert [a["post_id"] for a in placed_all] == [f"api-{i:04d}" for i in range(4)]

    records = read_topic(kafka_bootstrap, topic, 4)
    on_kafka = {(r.partition, r.offset): r for r in records}
    for article in placed_all:
        record = on_kafka[(article["partition"], article["offset"])]
        assert record.key == article["post_id"].encode()
        message = ArticleMessage.model_validate_json(record.value)
        assert message == sample_article(int(article["post_id"][-4:]), "api")


def test_delete_publishes_a_delete_message(
    client: TestClient, kafka_bootstrap: str, topic: str
) -> None:
    r = client.delete(
        "/v1/articles/api-0009", params={"updated_at": "2026-07-01T00:00:00Z"}, headers=AUTH
    )
    assert r.status_code == 202
    (placed,) = r.json()["articles"]
    records = read_topic(kafka_bootstrap, topic, 5)
    (record,) = [x for x in records if (x.partition, x.offset) == (placed["partition"],
                                                                  placed["offset"])]  # fmt: skip
    assert json.loads(record.value) | {"op": "delete"} == json.loads(record.value)
    message = ArticleMessage.model_validate_json(record.value)
    assert message.post_id == "api-0009"
    assert message.updated_at == datetime(2026, 7, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "path, params",
    [("/v1/articles/bad%20id", {}), ("/v1/articles/a-1", {"updated_at": "2026-07-01T00:00:00"})],
)
def test_invalid_delete_is_422(client: TestClient, path: str, params: dict) -> None:
    assert client.delete(path, params=params, headers=AUTH).status_code == 422


@pytest.mark.parametrize("bootstrap", [None, f"127.0.0.1:{free_port()}"], ids=["unset", "down"])
def test_no_broker_is_a_quick_503(tmp_path: Path, bootstrap: str | None) -> None:
    settings = Settings(
        data_dir=tmp_path, kafka_bootstrap=bootstrap, publisher_token=SecretStr(TOKEN)
    )
    started = time.monotonic()
    with make_client(settings) as c:
        r = c.post("/v1/articles", json=payload(1), headers=AUTH)
    assert r.status_code == 503
    assert "Kafka broker" in r.json()["error"]["message"]
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    "raw, fragment",
    [
        (b"[" * 100_000 + b"]" * 100_000, "invalid JSON"),
        (b'{"post_id": "a-1", "body": "\\udfff"}', "invalid JSON"),
        (b'{"post_id": "a-1", "n": ' + b"9" * 5000 + b"}", "invalid JSON"),
        (b'{"post_id": "\xff\xfe"}', "invalid JSON"),
    ],
    ids=["deep-nesting", "lone-surrogate", "5000-digits", "invalid-utf8"],
)
def test_undecodable_bodies_are_422(client: TestClient, raw: bytes, fragment: str) -> None:
    """Issue #23 items 1 and 6: these answered 500 (RecursionError, UnicodeEncodeError...)."""
    r = client.post("/v1/articles", content=raw, headers=AUTH)
    assert r.status_code == 422
    assert fragment in r.json()["error"]["message"]


@pytest.mark.parametrize(
    "field, value",
    [
        ("published_at", "0001-01-01T00:00:00+14:00"),
        ("published_at", "9999-12-31T23:59:59-12:00"),
        ("published_at", "1969-12-31T23:59:59Z"),
        ("updated_at", "9999-12-31T23:59:59-12:00"),
        ("updated_at", "2100-01-01T00:00:00Z"),
    ],
)
def test_dates_outside_the_window_are_422(client: TestClient, field: str, value: str) -> None:
    """Issue #23 item 3: an extreme published_at broke search; a far-future updated_at made the
    article impossible to delete (every later version is older)."""
    r = client.post("/v1/articles", json={**payload(1), field: value}, headers=AUTH)
    assert r.status_code == 422
    assert f"{field}: must be between" in r.json()["error"]["message"]


def test_delete_with_a_far_future_version_is_422(client: TestClient) -> None:
    r = client.delete(
        "/v1/articles/a-1", params={"updated_at": "9999-12-31T23:59:59-12:00"}, headers=AUTH
    )
    assert r.status_code == 422
    assert "updated_at" in r.json()["error"]["message"]


def test_token_is_checked_before_the_body(client: TestClient) -> None:
    for raw in (b"[" * 100_000, b"{not json", b'{"post_id": "a-1", "body": "\\udfff"}'):
        r = client.post("/v1/articles", content=raw, headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401
        assert r.json() == {"error": {"message": r.json()["error"]["message"]}}


def test_openapi_declares_the_publisher_bearer_scheme(tmp_path: Path) -> None:
    spec = create_app(Settings(data_dir=tmp_path)).openapi()
    assert spec["components"]["securitySchemes"]["publisher"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["publisher"]["description"],
    }
    for method, path in (("post", "/v1/articles"), ("delete", "/v1/articles/{post_id}")):
        assert spec["paths"][path][method]["security"] == [{"publisher": []}]
