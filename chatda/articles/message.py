"""``ArticleMessage``: one article (or its deletion) as publishers send it to Kafka.

The worker writes every accepted message into Milvus, so the limits here mirror the Milvus
schema (``chatda.storage.articles_schema``): a message that passes validation can always be
written, and a write failure therefore means infrastructure trouble, never bad data. Milvus
counts VARCHAR lengths in UTF-8 bytes (a Hangul syllable is 3), so the facet fields that are
indexed with a small limit are checked in bytes as well as characters.

The facets (category, series, tags) are what searches filter on, and a search's filter value
passes ``chatda.storage.filters.check_value``; a facet value is checked by the same function,
so every value the index takes can be filtered on (a tag with a NUL or U+E000 was once
accepted and indexed, and no search could ever ask for it).

The body limit comes from ``CHATDA_MAX_TEXT_CHARS`` at validation time (pass
``context={"max_text_chars": n}`` to override), so it is enforced but not part of the static
JSON Schema. Oversize text is rejected, never silently truncated: the publisher must learn
that its article is not searchable in full.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from chatda.settings import get_settings
from chatda.storage.articles_schema import MAX_TAG_CHARS, MAX_TAGS
from chatda.storage.filters import check_value
from chatda.text.normalize import normalize_query


def _rfc3339_text(value: object) -> object:
    """Date-times are RFC 3339 text: Pydantic alone also reads a number, or a numeric string,
    as epoch seconds (``updated_at=0.5`` was accepted as 1970-01-01T00:00:00.5Z)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise PydanticCustomError("datetime_format", "must be an RFC 3339 date-time")


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text)]

POST_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
MAX_POST_ID_CHARS = 128
MAX_TITLE_CHARS = 500
MAX_SERIES_BYTES = 256
MAX_CATEGORY_BYTES = 128
MAX_AUTHOR_CHARS = 200
MAX_URL_CHARS = 2048
SIZE_ERROR_TYPES = frozenset({"string_too_long", "too_long", "utf8_too_long", "text_too_long"})
PUBLISHED_MIN = datetime(1970, 1, 1, tzinfo=UTC)
PUBLISHED_MAX = datetime(2100, 12, 31, 23, 59, 59, tzinfo=UTC)
MAX_CLOCK_SKEW = timedelta(days=1)
FACET_CHARACTERS = "letters, marks, digits, punctuation, symbols and plain spaces"
"""What ``check_value`` lets into a filter, in a publisher's words."""


def _utf8_at_most(limit: int) -> AfterValidator:
    def check(value: str) -> str:
        size = len(value.encode("utf-8"))
        if size > limit:
            raise PydanticCustomError(
                "utf8_too_long",
                "must be at most {limit} UTF-8 bytes, got {size}",
                {"limit": limit, "size": size},
            )
        return value

    return AfterValidator(check)


def _filterable(value: str) -> str:
    """A facet value a search can filter on (module docstring); empty means none."""
    if value:
        try:
            check_value(value)
        except ValueError as exc:
            raise PydanticCustomError(
                "not_filterable",
                "{reason}: a search could never filter on it (allowed: {allowed})",
                {"reason": str(exc), "allowed": FACET_CHARACTERS},
            ) from exc
    return value


Filterable = AfterValidator(_filterable)

Tag = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_TAG_CHARS),
    _utf8_at_most(MAX_TAG_CHARS),
    Filterable,
]
Series = Annotated[
    str,
    StringConstraints(max_length=MAX_SERIES_BYTES),
    _utf8_at_most(MAX_SERIES_BYTES),
    Filterable,
]
Category = Annotated[
    str,
    StringConstraints(max_length=MAX_CATEGORY_BYTES),
    _utf8_at_most(MAX_CATEGORY_BYTES),
    Filterable,
]


class ArticleMessage(BaseModel):
    """An article upsert, or with ``op="delete"`` the removal of every chunk of ``post_id``.

    ``updated_at`` orders versions: the index never replaces content with an older version.
    The Kafka key is ``post_id``, so all versions of one article share a partition and arrive
    in publish order.
    """

    model_config = ConfigDict(extra="forbid", title="ArticleMessage")

    post_id: str = Field(
        pattern=POST_ID_PATTERN,
        min_length=1,
        max_length=MAX_POST_ID_CHARS,
        description="stable article id; letters, digits and . _ : -",
    )
    op: Literal["upsert", "delete"] = Field(
        default="upsert", description="delete needs only post_id and updated_at"
    )
    title: str | None = Field(
        default=None, min_length=1, max_length=MAX_TITLE_CHARS, description="required to upsert"
    )
    body: str | None = Field(
        default=None,
        description="required to upsert; at most CHATDA_MAX_TEXT_CHARS characters (20000)",
    )
    series: Series = Field(
        default="",
        description=f"at most 256 UTF-8 bytes of {FACET_CHARACTERS}; searches filter on it",
    )
    category: Category = Field(
        default="",
        description=f"at most 128 UTF-8 bytes of {FACET_CHARACTERS}; searches filter on it",
    )
    tags: list[Tag] = Field(
        default_factory=list,
        max_length=MAX_TAGS,
        description=(
            "at most 16 tags of at most 64 characters and 64 UTF-8 bytes each, of "
            f"{FACET_CHARACTERS}; searches filter on them"
        ),
    )
    author: str = Field(default="", max_length=MAX_AUTHOR_CHARS)
    url: str = Field(default="", max_length=MAX_URL_CHARS)
    published_at: Timestamp | None = Field(default=None, description="required to upsert")
    updated_at: Timestamp = Field(description="version of this content; newer wins")
    language: str = Field(default="ko", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")

    @field_validator("title")
    @classmethod
    def _title_visible(cls, title: str | None) -> str | None:
        """The title as ingest indexes it (``normalize_query``) must keep a character: one of
        spaces or direction marks alone was accepted and indexed as an empty title."""
        if title is not None and not normalize_query(title, MAX_TITLE_CHARS).text:
            raise PydanticCustomError("title_empty", "must have a visible character", {})
        return title

    @field_validator("body")
    @classmethod
    def _body_within_limit(cls, body: str | None, info: ValidationInfo) -> str | None:
        context = info.context or {}
        limit = int(context.get("max_text_chars") or get_settings().max_text_chars)
        if body is not None and len(body) > limit:
            raise PydanticCustomError(
                "text_too_long",
                "must be at most {limit} characters, got {size}",
                {"limit": limit, "size": len(body)},
            )
        return body

    @field_validator("published_at")
    @classmethod
    def _published_in_window(cls, value: datetime | None) -> datetime | None:
        """1970..2100: every such moment is an epoch second that converts back to a date.

        ``0001-01-01T00:00:00+14:00`` is a valid RFC 3339 time whose UTC day is in year 0:
        indexed, it made every search that ranked it fail to render the date (500).
        """
        if value is not None and not PUBLISHED_MIN <= value <= PUBLISHED_MAX:
            raise PydanticCustomError(
                "date_out_of_range",
                "must be between {min} and {max}",
                {"min": PUBLISHED_MIN.isoformat(), "max": PUBLISHED_MAX.isoformat()},
            )
        return value

    @field_validator("updated_at")
    @classmethod
    def _updated_not_in_future(cls, value: datetime) -> datetime:
        """From 1970 to now plus ``MAX_CLOCK_SKEW``: a version is when the content changed.

        Versions only move forward (newer wins), so a far-future ``updated_at`` would make the
        article permanent: every later upsert and every DELETE (which defaults to now) would be
        older and ignored. A day of skew tolerates publishers' clocks; time only passes, so a
        message valid when published stays valid when a worker or a re-index replays it.
        """
        latest = datetime.now(UTC) + MAX_CLOCK_SKEW
        if not PUBLISHED_MIN <= value <= latest:
            raise PydanticCustomError(
                "date_out_of_range",
                "must be between {min} and the current time plus {skew}",
                {"min": PUBLISHED_MIN.isoformat(), "skew": "1 day"},
            )
        return value

    @model_validator(mode="after")
    def _upsert_is_complete(self) -> ArticleMessage:
        if self.op == "upsert":
            missing = [
                name for name in ("title", "body", "published_at") if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(f"an upsert needs {', '.join(missing)}")
        return self

    @property
    def key(self) -> bytes:
        """The Kafka record key: one article, one partition, publish order kept."""
        return self.post_id.encode("ascii")

    @property
    def updated_epoch(self) -> int:
        """``updated_at`` in the index's unit (whole epoch seconds)."""
        return math.floor(self.updated_at.timestamp())

    @property
    def published_epoch(self) -> int:
        """``published_at`` in epoch seconds; every upsert has one (validated above)."""
        if self.published_at is None:
            raise ValueError(f"{self.post_id}: a {self.op} message has no published_at")
        return math.floor(self.published_at.timestamp())

    def to_wire(self) -> bytes:
        """The Kafka record value: compact UTF-8 JSON with unset optional fields left out."""
        return self.model_dump_json(exclude_none=True).encode("utf-8")


def is_post_id(value: object) -> bool:
    """Whether ``value`` is an id an article can have (``POST_ID_PATTERN``), for readers of ids
    that did not come through ``ArticleMessage``: an id that fails here names no article."""
    return isinstance(value, str) and re.fullmatch(POST_ID_PATTERN, value) is not None


def published_datetime(epoch: int) -> datetime:
    """An indexed ``published_at`` (epoch seconds) as a UTC datetime, clamped to the window.

    Rows indexed before ``ArticleMessage`` checked the window may hold any int64; a search
    that ranks one must still answer, so the date is shown at the nearest edge instead.
    """
    low, high = int(PUBLISHED_MIN.timestamp()), int(PUBLISHED_MAX.timestamp())
    return datetime.fromtimestamp(min(max(epoch, low), high), UTC)
