"""``GET`` and ``POST /v1/search``: intents, suggestions and articles for one query, on a budget.

Both methods take the same request (``chatda.search.request.SearchRequest``): POST as a JSON
body, GET as query parameters (``area``, ``category``, ``series`` and ``tag`` repeat). GET
parameters are handed to the same model as strings, so both methods validate, and fail with
422, identically. The answer always comes back within the budget: a source that could not
answer in time is reported in ``sources`` and the answer is ``partial``. docs/search.md is the
full contract.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from chatda.articles.message import published_datetime
from chatda.catalog.decision import Decision
from chatda.search.engine import SearchOutcome, Status, UnknownProfile
from chatda.search.request import VERBATIM, SearchRequest
from query.dependencies import State
from query.documented_errors import documented
from query.metrics_search import record_search
from query.routes.intents import UNDERSTOOD_AS, IntentMatch, describe, understand_query
from query.routes.suggest import SuggestionOut
from query.routing import ChatdaRoute
from query.state import ApiState

router = APIRouter(route_class=ChatdaRoute)


class LegPlace(BaseModel):
    rank: int
    score: float
    chunk_id: str


class DocumentOut(BaseModel):
    rank: int
    post_id: str
    title: str
    chunk_id: str
    chunk_no: int
    snippet: str
    highlights: list[tuple[int, int]]
    category: str
    series: str
    tags: list[str]
    published_at: datetime
    score: float
    legs: dict[str, LegPlace]


class SourceOut(BaseModel):
    status: Status
    ms: float
    candidates: int
    message: str | None
    path: Literal["memory", "milvus"] | None = Field(
        default=None,
        description="document legs: served by the in-memory article tier or by Milvus",
    )


class Timings(BaseModel):
    total_ms: float
    fusion_ms: float


class SearchResponse(BaseModel):
    query_id: UUID
    query: str
    normalized: str
    profile: str
    budget_ms: int
    partial: bool
    catalog_version: int | None
    intent_decision: Decision | None
    """Issue #27: passed, ambiguous (the top two in ``intents``) or no_match; null: no catalog."""
    intents: list[IntentMatch]
    suggestions: list[SuggestionOut]
    documents: list[DocumentOut]
    sources: dict[str, SourceOut]
    timings: Timings
    understood_as: str | None = Field(description=UNDERSTOOD_AS)


def _decision(outcome: SearchOutcome) -> Decision:
    if not outcome.intents:
        return Decision.NO_MATCH
    return Decision.AMBIGUOUS if outcome.intents[0].ambiguous else Decision.PASSED


def _answer(query: str, outcome: SearchOutcome, understood_as: str | None) -> SearchResponse:
    snap = outcome.snapshot
    return SearchResponse(
        query_id=outcome.query_id,
        query=query,
        understood_as=understood_as,
        normalized=outcome.normalized,
        profile=outcome.profile,
        budget_ms=outcome.budget_ms,
        partial=outcome.partial,
        catalog_version=snap.version if snap else None,
        intent_decision=_decision(outcome) if snap else None,
        intents=[describe(snap, s) for s in outcome.intents] if snap else [],
        suggestions=[SuggestionOut.of(s) for s in outcome.suggestions],
        documents=[
            DocumentOut(
                rank=doc.rank,
                post_id=doc.post_id,
                title=doc.chunk.title,
                chunk_id=doc.chunk.chunk_id,
                chunk_no=doc.chunk.chunk_no,
                snippet=doc.snippet,
                highlights=doc.highlights,
                category=doc.chunk.category,
                series=doc.chunk.series,
                tags=list(doc.chunk.tags),
                published_at=published_datetime(doc.chunk.published_at),
                score=round(doc.score, 6),
                legs={
                    leg.value: LegPlace(
                        rank=hit.rank, score=round(hit.score, 6), chunk_id=hit.chunk.chunk_id
                    )
                    for leg, hit in doc.legs.items()
                },
            )
            for doc in outcome.documents
        ],
        sources={
            source.value: SourceOut(
                status=r.status, ms=r.ms, candidates=r.candidates, message=r.message, path=r.path
            )
            for source, r in outcome.sources.items()
        },
        timings=Timings(total_ms=outcome.took_ms, fusion_ms=outcome.fusion_ms),
    )


async def _search(state: ApiState, body: SearchRequest, where: str) -> SearchResponse:
    typed = body.q
    understood = understand_query(state, body.normalized, body.verbatim)
    if understood is not None:
        body = body.model_copy(update={"q": understood})
    try:
        outcome = await state.search.engine.search(body)
    except UnknownProfile as exc:
        raise RequestValidationError(
            [{"loc": (where, "profile"), "msg": str(exc), "type": "value_error"}]
        ) from exc
    record_search(outcome)
    return _answer(typed, outcome, understood)


@router.post(
    "/v1/search",
    response_model=SearchResponse,
    tags=["search"],
    responses=documented(413, 422, 429),
)
async def search_post(body: SearchRequest, state: State) -> SearchResponse:
    return await _search(state, body, "body")


@router.get(
    "/v1/search", response_model=SearchResponse, tags=["search"], responses=documented(422, 429)
)
async def search_get(
    state: State,
    q: str = Query(description="what the user typed"),
    profile: str | None = Query(default=None, description="SLA profile"),
    area: list[str] | None = Query(default=None, description="exposure area (repeat)"),
    category: list[str] | None = Query(default=None, description="(repeat)"),
    series: list[str] | None = Query(default=None, description="(repeat)"),
    tag: list[str] | None = Query(default=None, description="(repeat)"),
    published_from: str | None = Query(default=None, description="RFC 3339 or YYYY-MM-DD"),
    published_to: str | None = Query(default=None, description="RFC 3339 or YYYY-MM-DD"),
    top_k: str | None = Query(default=None, description="articles to return, 1..50"),
    budget_ms: str | None = Query(default=None, description="at most the profile's budget"),
    verbatim: str | None = Query(default=None, description=VERBATIM),
) -> SearchResponse:
    raw: dict[str, Any] = {
        "q": q,
        "profile": profile,
        "areas": area,
        "top_k": top_k,
        "budget_ms": budget_ms,
        "verbatim": verbatim,
    }
    filters = {
        "category": category,
        "series": series,
        "tags": tag,
        "published_from": published_from,
        "published_to": published_to,
    }
    raw["filters"] = {k: v for k, v in filters.items() if v is not None}
    try:
        body = SearchRequest.model_validate({k: v for k, v in raw.items() if v is not None})
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_context=False)]
        ) from exc
    return await _search(state, body, "query")
