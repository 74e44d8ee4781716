"""``POST /v1/articles`` and ``DELETE /v1/articles/{post_id}``: publishing into the ingest.

The API validates and puts the message on Kafka; the ingest worker makes it searchable
shortly after. So the answer is 202 Accepted with where each record landed (partition and
offset), which is also what a caller needs to tell whether a given version was indexed.

Publishing needs ``CHATDA_PUBLISHER_TOKEN``: without one configured the endpoints refuse
(503) instead of running open. The Kafka producer is created on first use, so the search API
starts and serves without a broker. The token is checked before the body is read
(``query.routing.ChatdaRoute``): an unauthenticated caller learns nothing about the contract.
The body is decoded by hand, with ``chatda.json_input``, because it is one article or a batch.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Path, Query, Request, Security
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from chatda.articles.message import POST_ID_PATTERN, ArticleMessage, Timestamp
from chatda.articles.publisher import BrokerUnavailable, Delivery
from chatda.input_errors import error_summary
from chatda.json_input import JSONDecodeError, loads
from query.auth import require_publisher
from query.dependencies import State
from query.documented_errors import documented
from query.errors import error_body
from query.routing import ChatdaRoute
from query.state import ApiState

MAX_ARTICLES_PER_REQUEST = 500


class BulkArticles(BaseModel):
    model_config = ConfigDict(extra="forbid")

    articles: list[ArticleMessage] = Field(min_length=1, max_length=MAX_ARTICLES_PER_REQUEST)


class PublishedArticle(BaseModel):
    post_id: str
    partition: int
    offset: int


class PublishResponse(BaseModel):
    topic: str
    articles: list[PublishedArticle]


router = APIRouter(
    dependencies=[Security(require_publisher)],
    route_class=ChatdaRoute,
    responses=documented(401, 429, 503),
)

_SINGLE_SCHEMA = ArticleMessage.model_json_schema()
_REQUEST_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    _SINGLE_SCHEMA,
                    {
                        "type": "object",
                        "required": ["articles"],
                        "properties": {
                            "articles": {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": MAX_ARTICLES_PER_REQUEST,
                                "items": _SINGLE_SCHEMA,
                            }
                        },
                    },
                ]
            }
        }
    },
}


def _invalid(exc: ValidationError) -> JSONResponse:
    """422 in the app's error shape, every failing field named by its full path.

    Built here rather than by raising RequestValidationError: the app's handler drops every
    path part called "body", which would hide the article's own ``body`` field.
    """
    details = [
        {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False)
    ]
    return error_body(422, error_summary(exc), details=details)


async def _publish(state: ApiState, messages: list[ArticleMessage]) -> JSONResponse:
    def send() -> tuple[str, list[Delivery]]:
        publisher = state.publisher.get()
        return publisher.topic, publisher.publish_many(messages)

    try:
        topic, deliveries = await run_in_threadpool(send)
    except BrokerUnavailable as exc:
        return error_body(503, f"articles cannot be published right now: {exc}")
    body = PublishResponse(
        topic=topic,
        articles=[
            PublishedArticle(post_id=m.post_id, partition=d.partition, offset=d.offset)
            for m, d in zip(messages, deliveries, strict=True)
        ],
    )
    return JSONResponse(status_code=202, content=body.model_dump())


@router.post(
    "/v1/articles",
    status_code=202,
    response_model=PublishResponse,
    tags=["articles"],
    openapi_extra={"requestBody": _REQUEST_BODY},
    responses=documented(413, 422),
)
async def publish_articles(request: Request, state: State) -> JSONResponse:
    """Publish one article, or ``{"articles": [...]}`` (at most 500), for indexing."""
    try:
        payload: Any = loads(await request.body())
    except JSONDecodeError as exc:
        return error_body(422, f"invalid JSON: {exc}")
    context = {"max_text_chars": state.settings.max_text_chars}
    try:
        if isinstance(payload, dict) and "articles" in payload:
            messages = BulkArticles.model_validate(payload, context=context).articles
        else:
            messages = [ArticleMessage.model_validate(payload, context=context)]
    except ValidationError as exc:
        return _invalid(exc)
    return await _publish(state, messages)


@router.delete(
    "/v1/articles/{post_id}",
    status_code=202,
    response_model=PublishResponse,
    tags=["articles"],
    responses=documented(422),
)
async def delete_article(
    state: State,
    post_id: str = Path(pattern=POST_ID_PATTERN),
    updated_at: Timestamp | None = Query(
        None, description="version of the deletion; default now (older content loses)"
    ),
) -> JSONResponse:
    """Publish the removal of every chunk of ``post_id``."""
    try:
        message = ArticleMessage(
            post_id=post_id, op="delete", updated_at=updated_at or datetime.now(UTC)
        )
    except ValidationError as exc:  # e.g. an updated_at beyond the allowed clock skew
        return _invalid(exc)
    return await _publish(state, [message])
