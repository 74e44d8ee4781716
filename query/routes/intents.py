"""``GET /v1/intents/match``: which of the app's services does this text ask for?"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from chatda.catalog.decision import Decision, decide
from chatda.catalog.models import Area
from chatda.catalog.snapshot import CatalogSnapshot, IntentScore
from chatda.search.request import VERBATIM, searchable_query
from chatda.search.understanding import understand
from query.dependencies import State
from query.documented_errors import documented
from query.routing import ChatdaRoute
from query.state import ApiState

router = APIRouter(route_class=ChatdaRoute)

UNDERSTOOD_AS = (
    "what was searched instead of the query, which looked like Korean typed with the Latin "
    "layout on (thdrma → 송금) or like 초성 initials of a known name (ㅅㄱ → 송금); null when "
    "the query was searched as typed. Show it as 이것을 찾으셨나요? with a way to search "
    "verbatim."
)


class IntentMatch(BaseModel):
    id: int
    name: str
    path: str
    service_id: int | None
    areas: list[Area]
    open: bool
    score: float
    """The raw fused score (dense + lexical weight x lexical)."""
    confidence: float | None
    """Calibrated probability that this is the right intent; null on the raw rule."""
    dense: float
    lexical: float
    matched_hint: str
    threshold: float
    """On ``confidence`` when calibrated, else on ``score``."""
    margin: float
    passed: bool
    ambiguous: bool
    """One of the top two of an ambiguous answer."""


class MatchResponse(BaseModel):
    query: str
    normalized: str
    decision: Decision
    """passed, ambiguous (the top two are in ``intents``) or no_match (``intents`` is empty)."""
    intents: list[IntentMatch]
    catalog_version: int
    model: str
    understood_as: str | None = Field(description=UNDERSTOOD_AS)


def understand_query(state: ApiState, normalized: str, verbatim: bool) -> str | None:
    """The converted query to search for (chatda.search.understanding), or None."""
    if verbatim:
        return None
    found = understand(normalized, state.search.suggest)
    return found.text if found else None


def describe(snap: CatalogSnapshot, score: IntentScore) -> IntentMatch:
    intent = snap.intents[score.index]
    return IntentMatch(
        id=intent.id,
        name=intent.name,
        path=snap.paths[score.index],
        service_id=intent.service_id,
        areas=intent.areas,
        open=intent.open,
        score=round(score.score, 5),
        confidence=round(score.confidence, 5) if score.confidence is not None else None,
        dense=round(score.dense, 5),
        lexical=round(score.lexical, 5),
        matched_hint=snap.row_texts[score.row],
        threshold=round(score.threshold, 5),
        margin=round(score.margin, 5),
        passed=score.passed,
        ambiguous=score.ambiguous,
    )


@router.get(
    "/v1/intents/match",
    response_model=MatchResponse,
    tags=["intents"],
    responses=documented(422, 429, 503, 504),
)
async def match(
    state: State,
    q: str = Query(min_length=1, max_length=1000, description="what the user typed"),
    area: Area | None = Query(default=None, description="exposure area"),
    top_k: int = Query(default=5, ge=1, le=50),
    verbatim: bool = Query(default=False, description=VERBATIM),
) -> MatchResponse:
    try:
        normalized = searchable_query(q)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    understood = understand_query(state, normalized, verbatim)
    normalized = understood or normalized
    # at least two: an ambiguous answer shows both
    snap, scores, _ = await state.catalog.match(normalized, area=area, top_k=max(2, top_k))
    answer = decide(scores, snap.ambiguity_margin)
    return MatchResponse(
        query=q,
        normalized=normalized,
        decision=answer.decision,
        intents=[describe(snap, s) for s in answer.intents[: max(2, top_k)]]
        if answer.decision is Decision.AMBIGUOUS
        else [describe(snap, s) for s in answer.intents[:top_k]],
        catalog_version=snap.version,
        model=snap.model_ref,
        understood_as=understood,
    )
