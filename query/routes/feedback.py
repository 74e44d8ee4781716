"""``POST /v1/feedback``: what a search answer showed and what was clicked, for ranking work.

Answers 202 once the event is durable (acknowledged by Kafka, or written to SQL). Events for a
query id this replica did not issue recently are still accepted, flagged ``known_query:
false``: the id may come from another replica or an older page, and dropping it would bias the
data towards fresh sessions.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Body
from pydantic import BaseModel

from chatda.feedback.events import FeedbackEvent, FeedbackRecord
from query.dependencies import State
from query.documented_errors import documented
from query.routing import ChatdaRoute

router = APIRouter(route_class=ChatdaRoute)


class FeedbackAccepted(BaseModel):
    event_id: uuid.UUID
    known_query: bool
    stored_via: Literal["kafka", "sql"]


@router.post(
    "/v1/feedback",
    status_code=202,
    response_model=FeedbackAccepted,
    tags=["search"],
    responses=documented(413, 422, 429),
)
async def feedback(state: State, event: Annotated[FeedbackEvent, Body()]) -> FeedbackAccepted:
    services = state.search
    record = FeedbackRecord.accepted(event, services.recent.get(event.query_id))
    destination = await services.feedback.send(record)
    return FeedbackAccepted(
        event_id=record.event_id, known_query=record.known_query, stored_via=destination
    )
