"""Request body limits: 413 in the API's error shape, before parsing, never buffering more.

The middleware is driven as a raw ASGI app (a scripted server ``receive`` that counts what was
pulled), then through the real app, where FastAPI's own body parsing sits behind it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chatda.articles.message import (
    MAX_AUTHOR_CHARS,
    MAX_CATEGORY_BYTES,
    MAX_POST_ID_CHARS,
    MAX_SERIES_BYTES,
    MAX_TITLE_CHARS,
    MAX_URL_CHARS,
    ArticleMessage,
)
from chatda.settings import Settings
from chatda.storage.articles_schema import MAX_TAG_CHARS, MAX_TAGS
from query.app import create_app
from query.limits import BodyLimit, body_limits
from query.routes.articles import MAX_ARTICLES_PER_REQUEST

CHUNK = 1000


class Echo:
    """A raw ASGI app that reads the whole body and answers 200 with its size."""

    def __init__(self) -> None:
        self.called = False

    async def __call__(self, scope, receive, send) -> None:
        self.called = True
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(size).encode()})


async def drive(app, path: str, chunks: int, content_length: int | None = None):
    """One request of ``chunks`` chunks of ``CHUNK`` bytes; returns (status, body, pulled)."""
    pulled = 0
    sent: list[dict] = []

    async def receive():
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x" * CHUNK, "more_body": pulled < chunks}

    async def send(message):
        sent.append(message)

    headers = [] if content_length is None else [(b"content-length", str(content_length).encode())]
    scope = {"type": "http", "method": "POST", "path": path, "headers": headers}
    await app(scope, receive, send)
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1, sent  # exactly one answer, never the app's after the 413
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return starts[0]["status"], body, pulled


async def test_declared_length_over_limit_is_refused_before_the_app_runs() -> None:
    echo = Echo()
    app = BodyLimit(echo, default_bytes=10 * CHUNK, per_path={})
    status, body, pulled = await drive(app, "/v1/feedback", 50, content_length=50 * CHUNK)
    assert status == 413
    assert "at most 10000 bytes" in json.loads(body)["error"]["message"]
    assert not echo.called and pulled == 0


async def test_streamed_body_stops_at_the_first_chunk_past_the_limit() -> None:
    echo = Echo()
    app = BodyLimit(echo, default_bytes=10 * CHUNK, per_path={})
    status, body, pulled = await drive(app, "/v1/feedback", 10_000)
    assert status == 413
    assert json.loads(body)["error"]["message"].startswith("request body too large")
    assert pulled == 11  # ten chunks fit, the eleventh passes the limit: nothing more is read


async def test_body_within_limit_reaches_the_app() -> None:
    app = BodyLimit(Echo(), default_bytes=10 * CHUNK, per_path={})
    assert await drive(app, "/v1/feedback", 10, content_length=10 * CHUNK) == (200, b"10000", 10)
    assert await drive(app, "/v1/feedback", 10) == (200, b"10000", 10)


async def test_a_route_with_a_larger_limit_takes_a_larger_body() -> None:
    app = BodyLimit(Echo(), default_bytes=10 * CHUNK, per_path={"/v1/articles": 100 * CHUNK})
    status, body, _ = await drive(app, "/v1/articles", 50, content_length=50 * CHUNK)
    assert (status, body) == (200, b"50000")
    status, _, pulled = await drive(app, "/v1/articles", 1000)
    assert status == 413 and pulled == 101


def test_articles_limit_holds_a_full_request_of_maximal_articles() -> None:
    """The derived limit must accept every request the articles contract accepts, written by
    an encoder that escapes non-ASCII (six bytes per Hangul syllable)."""
    settings = Settings(max_text_chars=200, max_body_bytes=1000)
    now = datetime(2026, 12, 6, 23, 59, 59, 999999, tzinfo=UTC).isoformat()
    article = ArticleMessage.model_validate(
        {
            "post_id": "p" * MAX_POST_ID_CHARS,
            "title": "가" * MAX_TITLE_CHARS,
            "body": "가" * settings.max_text_chars,
            "series": "s" * MAX_SERIES_BYTES,
            "category": "c" * MAX_CATEGORY_BYTES,
            "tags": [f"{i:02d}" + "t" * (MAX_TAG_CHARS - 2) for i in range(MAX_TAGS)],
            "author": "가" * MAX_AUTHOR_CHARS,
            "url": "가" * MAX_URL_CHARS,
            "published_at": now,
            "updated_at": now,
            "language": "ko-Kore-KR",
        },
        context={"max_text_chars": settings.max_text_chars},
    )
    payload = {"articles": [article.model_dump(mode="json")] * MAX_ARTICLES_PER_REQUEST}
    size = len(json.dumps(payload, ensure_ascii=True).encode())
    assert size <= body_limits(settings)["/v1/articles"]


@pytest.fixture(scope="module")
def client(models_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("limits"),
        models_dir_override=models_dir,
        device="cpu",
        max_body_bytes=64 * 1024,
    )
    with TestClient(create_app(settings)) as c:
        yield c


def _stream(size: int) -> Iterator[bytes]:
    yield b'{"type": "click", "query_id": "'
    for _ in range(size // 4096):
        yield b"x" * 4096
    yield b'"}'


def test_oversize_feedback_is_413_in_the_error_shape(client) -> None:
    r = client.post("/v1/feedback", content=b"x" * (200 * 1024))
    assert r.status_code == 413
    assert "at most 65536 bytes" in r.json()["error"]["message"]


def test_oversize_chunked_body_is_413_not_a_parse_error(client) -> None:
    """FastAPI turns any failure while reading a body into 400; the limit must still be 413."""
    r = client.post(
        "/v1/feedback", content=_stream(300 * 1024), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    assert "request body too large" in r.json()["error"]["message"]


def test_body_under_the_limit_is_validated_as_before(client) -> None:
    r = client.post(
        "/v1/feedback", content=_stream(8 * 1024), headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
