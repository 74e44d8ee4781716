"""``/v1/admin/intents``: the operator's JSON API over the catalog (admin token required).

The store's SQL runs on a worker thread (``asyncio.to_thread``): these routes are async because
a write awaits the catalog's refresh, and a blocking query on the event loop would stall every
search of the process for as long as the database takes.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Body, Query, Response, Security
from pydantic import AliasChoices, BaseModel, Field, field_validator

from chatda.catalog.decision import Decision, Outcome, decide, outcome
from chatda.catalog.errors import InvalidCatalog
from chatda.catalog.file_format import dump_catalog, parse_catalog
from chatda.catalog.models import Area, CatalogFile, Intent, IntentIn, IntentUpdate
from chatda.catalog.snapshot import CatalogSnapshot, IntentScore
from chatda.catalog.store import matches
from chatda.catalog.tree import paths
from chatda.integers import PositiveInt64
from chatda.search.request import MAX_QUERY_CHARS, searchable_query
from query.auth import require_admin
from query.dependencies import State
from query.documented_errors import documented
from query.routes.intents import IntentMatch, describe
from query.routing import ChatdaRoute
from query.state import ApiState

router = APIRouter(
    prefix="/v1/admin",
    dependencies=[Security(require_admin)],
    tags=["admin"],
    route_class=ChatdaRoute,
    responses=documented(401, 403, 429),
)


class IntentView(Intent):
    path: str


class IntentList(BaseModel):
    intents: list[IntentView]
    catalog_version: int


class ImportResult(BaseModel):
    imported: int
    catalog_version: int


class TestRequest(BaseModel):
    q: str = Field(
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        validation_alias=AliasChoices("q", "query"),
        description="what the user typed; `query`, its name before 2026-12-07, is still read",
    )
    area: Area | None = None

    @field_validator("q")
    @classmethod
    def _searchable(cls, value: str) -> str:
        searchable_query(value)
        return value


class TriedIntent(IntentMatch):
    outcome: Outcome
    """Why it is or is not in the answer users would get."""
    threshold_source: Literal["override", "global"]
    """``override``: the intent's own ``threshold``; ``global``: the rule's global one."""
    rival: str | None
    """The other intent of an ambiguous pair; for ``not_shown``, the top intent."""


class TestResponse(BaseModel):
    query: str
    normalized: str
    default_threshold: float
    """The global threshold on the raw score (the raw rule, uncalibrated catalogs)."""
    catalog_version: int
    decision: Decision
    """What ``/v1/intents/match`` answers for the query (in ``area`` when given)."""
    calibrated: bool
    """Thresholds apply to ``confidence``; false: to ``score`` (the raw rule)."""
    global_threshold: float
    """The threshold of intents without an override, in the units of the rule in force."""
    ambiguity_margin: float
    """Top two within this confidence of each other: ``ambiguous`` (0 on the raw rule)."""
    intents: list[TriedIntent]


def _views(items: list[Intent], everything: list[Intent]) -> list[IntentView]:
    """``items`` with their paths in ``everything``.

    A write's result is shown as it was written even when a concurrent DELETE removed it before
    ``everything`` was read: the write did succeed, and a 500 would tell the editor otherwise.
    """
    tree = {i.id: i for i in everything} | {i.id: i for i in items}
    path_of = paths({k: i.name for k, i in tree.items()}, {k: i.parent_id for k, i in tree.items()})
    return [IntentView(**i.model_dump(), path=path_of[i.id]) for i in items]


async def _after_write(state: ApiState) -> None:
    await state.catalog.refresh()


@router.get("/intents", response_model=IntentList, responses=documented(422))
async def list_intents(
    state: State, q: str | None = Query(default=None, max_length=200)
) -> IntentList:
    store = state.store
    everything = await asyncio.to_thread(store.list)
    found = [i for i in everything if matches(i, q)] if q else everything
    version = await asyncio.to_thread(store.version)
    return IntentList(intents=_views(found, everything), catalog_version=version)


@router.get("/intents/{intent_id}", response_model=IntentView, responses=documented(404, 422))
async def get_intent(state: State, intent_id: PositiveInt64) -> IntentView:
    store = state.store
    found = await asyncio.to_thread(store.get, intent_id)
    return _views([found], await asyncio.to_thread(store.list))[0]


@router.post(
    "/intents", response_model=IntentView, status_code=201, responses=documented(409, 413, 422)
)
async def create_intent(state: State, item: IntentIn) -> IntentView:
    store = state.store
    created = await asyncio.to_thread(store.create, item)
    await _after_write(state)
    return _views([created], await asyncio.to_thread(store.list))[0]


@router.put(
    "/intents/{intent_id}", response_model=IntentView, responses=documented(404, 409, 413, 422)
)
async def update_intent(state: State, intent_id: PositiveInt64, item: IntentUpdate) -> IntentView:
    if item.id is not None and item.id != intent_id:
        raise InvalidCatalog(f"the body is intent {item.id}, the URL intent {intent_id}")
    store = state.store
    updated = await asyncio.to_thread(store.update, intent_id, item)
    await _after_write(state)
    return _views([updated], await asyncio.to_thread(store.list))[0]


@router.delete("/intents/{intent_id}", status_code=204, responses=documented(404, 409, 422))
async def delete_intent(
    state: State,
    intent_id: PositiveInt64,
    version: PositiveInt64 | None = Query(default=None),
) -> Response:
    await asyncio.to_thread(state.store.delete, intent_id, version)
    await _after_write(state)
    return Response(status_code=204)


@router.post("/intents:import", response_model=ImportResult, responses=documented(413, 422))
async def import_intents(
    state: State,
    body: str = Body(media_type="application/yaml", description="a catalog file (YAML or JSON)"),
    mode: Literal["replace", "merge"] = Query(default="replace"),
) -> ImportResult:
    store = state.store
    catalog = await asyncio.to_thread(parse_catalog, body, "request body")  # up to 32 MiB
    count = await asyncio.to_thread(store.import_intents, catalog, mode)
    await _after_write(state)
    return ImportResult(imported=count, catalog_version=await asyncio.to_thread(store.version))


@router.get(
    "/intents:export",
    response_class=Response,
    response_model=CatalogFile,
    openapi_extra={
        "responses": {
            "200": {
                "description": "the catalog file",
                "content": {
                    "application/yaml": {"schema": {"$ref": "#/components/schemas/CatalogFile"}}
                },
            }
        }
    },
)
async def export_intents(state: State) -> Response:
    """The catalog file as YAML: ``response_model`` puts its model in the document, which the
    YAML answer refers to (errors stay JSON)."""
    text = dump_catalog(await asyncio.to_thread(state.store.list))
    return Response(text, media_type="application/yaml; charset=utf-8")


def _explained(
    snap: CatalogSnapshot,
    scores: list[IntentScore],
    area: Area | None,
    global_threshold: float,
) -> tuple[Decision, list[TriedIntent]]:
    """The answer users would get, and every intent with why it is or is not in it.

    The decision is taken over the intents users may see, as ``/v1/intents/match`` takes it;
    the confidences come from one pass over every intent, closed ones included, so with closed
    intents they can differ from the served ones in the last digits (the z-score's mean).
    """

    def visible(s: IntentScore) -> bool:
        intent = snap.intents[s.index]
        return intent.open and (area is None or area in intent.areas)

    answer = decide([s for s in scores if visible(s)], snap.ambiguity_margin)
    shown = [s.index for s in answer.intents]
    top = next((s for s in scores if visible(s)), None)

    def tried(s: IntentScore) -> TriedIntent:
        intent = snap.intents[s.index]
        why = outcome(s, answer) if visible(s) else Outcome.HIDDEN
        rival = None
        if why is Outcome.AMBIGUOUS:
            rival = snap.intents[shown[1] if shown[0] == s.index else shown[0]].name
        elif why is Outcome.NOT_SHOWN and top is not None:
            rival = snap.intents[top.index].name
        own = intent.threshold is not None and abs(s.threshold - global_threshold) > 1e-6
        return TriedIntent(
            **describe(snap, s).model_dump(),
            outcome=why,
            threshold_source="override" if own else "global",
            rival=rival,
        )

    return answer.decision, [tried(s) for s in scores]


@router.post("/intents:test", response_model=TestResponse, responses=documented(413, 422, 503, 504))
async def test_query(state: State, body: TestRequest) -> TestResponse:
    """Every intent's scores for a query, the decision users would get, and why each intent
    is or is not in it (the admin page's try box)."""
    normalized = searchable_query(body.q)
    snap, scores, _ = await state.catalog.match(normalized, area=body.area, everything=True)
    config = state.catalog.calibration
    calibrated = snap.calibrator is not None and config is not None
    global_threshold = config.min_confidence if calibrated and config else snap.default_threshold
    decision, intents = _explained(snap, scores, body.area, global_threshold)
    return TestResponse(
        query=body.q,
        normalized=normalized,
        default_threshold=snap.default_threshold,
        catalog_version=snap.version,
        decision=decision,
        calibrated=calibrated,
        global_threshold=global_threshold,
        ambiguity_margin=snap.ambiguity_margin if calibrated else 0.0,
        intents=intents,
    )
