"""Request body size limits: one pure-ASGI middleware in front of every route.

Why here and not in each route or in Starlette's own ``max_body_size``: the limit must hold
before anything reads or parses a body (an unauthenticated 100 MB ``POST /v1/feedback`` was
read whole and parsed), and the refusal must be the API's error body. Starlette's limiter
answers plain text and, for an oversize ``Content-Length``, only when the handler starts its
response, i.e. after the handler ran. This middleware refuses an oversize ``Content-Length``
before the app is called, and stops reading a chunked or streamed body at the first chunk that
passes the limit, so at most the limit plus one chunk is ever held.

Limits: ``CHATDA_MAX_BODY_BYTES`` for every route, larger ones only where a route's contract
needs it (``body_limits``), derived from the limits that contract already has.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatda.articles.message import (
    MAX_AUTHOR_CHARS,
    MAX_CATEGORY_BYTES,
    MAX_POST_ID_CHARS,
    MAX_SERIES_BYTES,
    MAX_TITLE_CHARS,
    MAX_URL_CHARS,
)
from chatda.settings import Settings
from chatda.storage.articles_schema import MAX_TAG_CHARS, MAX_TAGS
from query.errors import error_body
from query.routes.articles import MAX_ARTICLES_PER_REQUEST

JSON_BYTES_PER_CHAR = 6
"""A JSON encoder that escapes non-ASCII (Python's ``json`` by default, so ``requests``)
writes each Hangul syllable as ``\\uXXXX``: six bytes for one character of a limit."""

ARTICLE_ENVELOPE_CHARS = 512
"""Keys, quotes, ``op``, ``language`` and the two RFC 3339 timestamps of one article."""


def article_max_chars(max_text_chars: int) -> int:
    """Characters one valid article can hold: its body plus every other field at its maximum."""
    return (
        max_text_chars
        + MAX_POST_ID_CHARS
        + MAX_TITLE_CHARS
        + MAX_SERIES_BYTES
        + MAX_CATEGORY_BYTES
        + MAX_TAGS * (MAX_TAG_CHARS + 3)
        + MAX_AUTHOR_CHARS
        + MAX_URL_CHARS
        + ARTICLE_ENVELOPE_CHARS
    )


def body_limits(settings: Settings) -> dict[str, int]:
    """Per-path limits above the default: what the route's own contract can legitimately send.

    ``POST /v1/articles`` takes up to 500 articles of ``CHATDA_MAX_TEXT_CHARS`` each; the
    catalog import takes a whole catalog file, which has no intent count limit, so it has its
    own setting.
    """
    articles = MAX_ARTICLES_PER_REQUEST * article_max_chars(settings.max_text_chars)
    return {
        "/v1/articles": max(settings.max_body_bytes, articles * JSON_BYTES_PER_CHAR),
        "/v1/admin/intents:import": max(settings.max_body_bytes, settings.catalog_max_body_bytes),
    }


class BodyTooLarge(Exception):
    """Raised into the app from ``receive`` once a streamed body passes its limit; the 413 has
    already been sent, so the app's own answer to it is dropped."""


class BodyLimit:
    """Refuses a request body larger than its path's limit with 413 and the API's error body."""

    def __init__(self, app: ASGIApp, default_bytes: int, per_path: Mapping[str, int]) -> None:
        self.app = app
        self.default_bytes = default_bytes
        self.per_path = dict(per_path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope["path"], self.default_bytes)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(limit, scope, receive, send)
            return
        received = 0
        started = False
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if not started and not refused:
                        refused = True
                        await _refuse(limit, scope, receive, send)
                    raise BodyTooLarge(f"request body passed {limit} bytes")
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except BodyTooLarge:
            if not refused:
                raise


async def _refuse(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    response = error_body(413, f"request body too large: at most {limit} bytes", limit=limit)
    response.headers["Connection"] = "close"
    await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
