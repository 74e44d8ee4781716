"""Feedback events as clients send them, and as records once the server has accepted them.

A client reports what it showed (an impression: ids and positions) and what was picked (a
click: id, position, dwell time), always with the ``query_id`` a search answer carried. The
server adds an event id, the time, and the query text when it still knows the id; that record
is what travels over Kafka and what the consumer stores, so both paths store the same thing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from chatda.integers import NOT_A_BOOLEAN

MAX_SHOWN = 200
MAX_POSITION = 1000
MAX_DWELL_MS = 24 * 3600 * 1000

ResultId = Annotated[
    str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")
]
"""An article's post id, or an intent's id, as the search answer showed it."""
Position = Annotated[
    int, Field(ge=1, le=MAX_POSITION, description="1-based place on the page"), NOT_A_BOOLEAN
]


class Shown(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: ResultId
    position: Position


class Impression(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["impression"]
    query_id: UUID
    shown: list[Shown] = Field(min_length=1, max_length=MAX_SHOWN)

    @model_validator(mode="after")
    def _distinct_positions(self) -> Impression:
        positions = [item.position for item in self.shown]
        if len(set(positions)) != len(positions):
            raise ValueError("shown positions must be distinct")
        return self


class Click(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["click"]
    query_id: UUID
    clicked_id: ResultId
    position: Position
    dwell_ms: Annotated[int, Field(ge=0, le=MAX_DWELL_MS), NOT_A_BOOLEAN] | None = None
    kind: Literal["intent", "article"] | None = Field(
        default=None,
        description="what was clicked; omitted: not said (an id can name an intent and an "
        "article alike, so an unsaid click counts for both)",
    )


FeedbackEvent = Annotated[Impression | Click, Field(discriminator="type")]


def _as_utc(moment: datetime) -> datetime:
    """The same instant in UTC, the zone every stored time is in.

    ``0001-01-01T00:00:00+14:00`` is a valid datetime whose UTC instant lies in year 0: SQL
    stores it, and then every read of the row (PostgreSQL answers in UTC) fails, so the jobs
    that aggregate events would stop on it forever. It is refused here instead.
    """
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:
        raise PydanticCustomError(
            "datetime_range", "must be within the years 1 to 9999 in UTC"
        ) from exc


StoredText = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$")]
"""Text a SQL store can hold: PostgreSQL refuses NUL characters in text columns."""


class FeedbackRecord(BaseModel):
    """An accepted event plus what the server knew when it accepted it.

    Records also arrive from Kafka, where anything may have written them, so every field is
    held to what the SQL store can keep and read back.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: UUID
    received_at: Annotated[AwareDatetime, AfterValidator(_as_utc)]
    query: StoredText | None = Field(description="the normalised query, when the id was known")
    known_query: bool
    event: FeedbackEvent

    @classmethod
    def accepted(cls, event: Impression | Click, query: str | None) -> FeedbackRecord:
        """``event`` as the server accepts it now, with the normalised query it issued the
        event's ``query_id`` for (``None``: it does not know the id)."""
        return cls(
            event_id=uuid4(),
            received_at=datetime.now(UTC),
            query=query,
            known_query=query is not None,
            event=event,
        )

    def row(self) -> dict[str, Any]:
        """The record as a ``search_events`` row."""
        event = self.event
        common: dict[str, Any] = {
            "event_id": str(self.event_id),
            "type": event.type,
            "query_id": str(event.query_id),
            "query": self.query,
            "known_query": self.known_query,
            "received_at": self.received_at,
        }
        if isinstance(event, Impression):
            shown = [item.model_dump() for item in event.shown]
            return {
                **common,
                "shown": shown,
                "clicked_id": None,
                "clicked_kind": None,
                "position": None,
                "dwell_ms": None,
            }
        return {
            **common,
            "shown": None,
            "clicked_id": event.clicked_id,
            "clicked_kind": event.kind,
            "position": event.position,
            "dwell_ms": event.dwell_ms,
        }
