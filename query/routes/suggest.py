"""``GET /v1/suggest``: completions while the user types (intents, titles, popular queries)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi import APIRouter, Query
from pydantic import BaseModel

from chatda.suggest.entries import Suggestion
from chatda.suggest.index import MAX_QUERY_CHARS
from query.dependencies import State
from query.documented_errors import documented
from query.routing import ChatdaRoute

router = APIRouter(route_class=ChatdaRoute)

MAX_LIMIT = 50


class SuggestionOut(BaseModel):
    text: str
    kind: str
    ref: str | None
    score: float
    match: str
    highlight: list[tuple[int, int]]

    @classmethod
    def of(cls, suggestion: Suggestion) -> SuggestionOut:
        return cls(
            text=suggestion.text,
            kind=suggestion.kind,
            ref=suggestion.ref,
            score=suggestion.score,
            match=suggestion.match,
            highlight=suggestion.highlight,
        )


class IndexOut(BaseModel):
    catalog_version: int | None
    entries: int
    intents: int
    titles: int
    queries: int
    built_at: datetime


class SuggestResponse(BaseModel):
    query: str
    suggestions: list[SuggestionOut]
    index: IndexOut
    took_ms: float


@router.get(
    "/v1/suggest", response_model=SuggestResponse, tags=["search"], responses=documented(422, 429)
)
async def suggest(
    state: State,
    q: str = Query(max_length=MAX_QUERY_CHARS * 4, description="what is typed so far"),
    limit: int = Query(default=10, ge=1, le=MAX_LIMIT),
) -> SuggestResponse:
    started = time.perf_counter()
    service = state.search.suggest
    found = service.suggest(q, limit)
    info = service.info
    return SuggestResponse(
        query=q,
        suggestions=[SuggestionOut.of(s) for s in found],
        index=IndexOut(
            catalog_version=info.catalog_version,
            entries=info.entries,
            intents=info.intents,
            titles=info.titles,
            queries=info.queries,
            built_at=datetime.fromtimestamp(info.built_at, UTC),
        ),
        took_ms=round((time.perf_counter() - started) * 1000, 3),
    )
