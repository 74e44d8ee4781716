"""What a search request may say, validated once: GET query strings and POST bodies alike.

Facet values reach Milvus only through ``chatda.storage.filters.build_filter``, and only after
``check_value`` accepted them here, so a hostile value is a 422 naming the field, never an
expression. Dates must carry an offset (RFC 3339) or be plain dates, which mean whole UTC days.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from chatda.articles.message import Timestamp
from chatda.catalog.models import Area
from chatda.integers import NOT_A_BOOLEAN
from chatda.search.profiles import MAX_BUDGET_MS, PROFILE_NAME_PATTERN
from chatda.storage.filters import MAX_VALUES, build_filter, check_value
from chatda.text.normalize import normalize_query

MAX_QUERY_CHARS = 1000
MAX_TOP_K = 50
VERBATIM = "search exactly what was typed: no QWERTY or 초성 understanding (understood_as)"

FacetValue = Annotated[str, AfterValidator(check_value)]
Facet = Annotated[list[FacetValue], Field(max_length=MAX_VALUES)]
ProfileName = Annotated[str, StringConstraints(pattern=PROFILE_NAME_PATTERN)]
_PLAIN_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def _whole_day(value: Any, at: time) -> Any:
    """A plain date ("2026-01-31") as the UTC moment ``at`` on that day; anything else as is."""
    if isinstance(value, str) and _PLAIN_DATE.fullmatch(value):
        try:
            value = date.fromisoformat(value)
        except ValueError:
            return value  # "2026-02-30": let the datetime validator explain
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, at, UTC)
    return value


class SearchFilters(BaseModel):
    """Facets: alternatives within one facet, all facets together (see ``build_filter``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    category: Facet = Field(default_factory=list)
    series: Facet = Field(default_factory=list)
    tags: Facet = Field(default_factory=list)
    published_from: Timestamp | None = None
    published_to: Timestamp | None = None

    @field_validator("published_from", mode="before")
    @classmethod
    def _from_date(cls, value: Any) -> Any:
        return _whole_day(value, time.min)

    @field_validator("published_to", mode="before")
    @classmethod
    def _to_date(cls, value: Any) -> Any:
        return _whole_day(value, time(23, 59, 59))  # bounds are inclusive

    @model_validator(mode="after")
    def _window(self) -> SearchFilters:
        if self.published_from and self.published_to and self.published_from > self.published_to:
            raise ValueError("published_from is after published_to")
        return self

    def expression(self, templated: bool) -> tuple[str, dict[str, Any]]:
        """The Milvus filter (and its parameters) for the backend's filter form."""
        return build_filter(
            self.category or None,
            self.series or None,
            self.tags or None,
            self.published_from,
            self.published_to,
            templated=templated,
        )


def searchable_query(q: str) -> str:
    """``q`` as it is searched (normalised); ``ValueError`` when nothing searchable is left
    (spaces, NULs or direction marks alone): ``/v1/search`` and ``/v1/intents/match`` refuse
    the same input alike."""
    text = normalize_query(q, MAX_QUERY_CHARS).text
    if not text:
        raise ValueError("q has no searchable characters")
    return text


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    q: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="what the user typed")
    profile: ProfileName | None = Field(default=None, description="SLA profile; server default")
    areas: list[Area] = Field(
        default_factory=lambda: [Area.SEARCH],
        min_length=1,
        max_length=len(Area),
        description="exposure areas whose intents may answer",
    )
    filters: SearchFilters = Field(default_factory=SearchFilters)
    top_k: Annotated[int, Field(ge=1, le=MAX_TOP_K), NOT_A_BOOLEAN] = Field(
        default=10, description="articles to return"
    )
    budget_ms: Annotated[int, Field(ge=1, le=MAX_BUDGET_MS), NOT_A_BOOLEAN] | None = Field(
        default=None, description="lower the profile's budget"
    )
    verbatim: bool = Field(default=False, description=VERBATIM)

    @field_validator("q")
    @classmethod
    def _searchable(cls, value: str) -> str:
        searchable_query(value)
        return value

    @field_validator("areas")
    @classmethod
    def _unique_areas(cls, values: list[Area]) -> list[Area]:
        return list(dict.fromkeys(values))

    @property
    def normalized(self) -> str:
        return normalize_query(self.q, MAX_QUERY_CHARS).text
