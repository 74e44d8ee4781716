"""Intents as they cross every boundary (file, HTTP, store), validated once, here.

Every integer is an ``Int64``/``PositiveInt64`` (``chatda.integers``): it reaches SQL, so it is
bounded to 64 bits here, for the HTTP API and the catalog file alike.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from chatda.integers import Int64, PositiveInt64
from chatda.text.normalize import normalize_query

MAX_HINTS = 200
MAX_HINT_CHARS = 500
MAX_NAME_CHARS = 200


class Area(StrEnum):
    SEARCH = "SEARCH"
    RECO = "RECO"
    SUGGEST = "SUGGEST"


class IntentFields(BaseModel):
    """What an operator edits; the id and bookkeeping live on ``Intent``."""

    model_config = ConfigDict(extra="forbid")

    parent_id: PositiveInt64 | None = None
    service_id: Int64 | None = None
    name: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    hints: list[str] = Field(default_factory=list, max_length=MAX_HINTS)
    memo: str = Field(default="", max_length=5000)
    open: bool = True
    areas: list[Area] = Field(default_factory=lambda: list(Area), min_length=1)
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        text = normalize_query(value, MAX_NAME_CHARS).text
        if not text:
            raise ValueError("name must not be empty")
        return text

    @field_validator("hints")
    @classmethod
    def _hints(cls, values: list[str]) -> list[str]:
        out: list[str] = []
        for i, raw in enumerate(values):
            if len(raw) > MAX_HINT_CHARS:
                raise ValueError(f"hint {i} is longer than {MAX_HINT_CHARS} characters")
            text = normalize_query(raw, MAX_HINT_CHARS).text
            if text and text not in out:
                out.append(text)
        return out

    @field_validator("areas")
    @classmethod
    def _areas(cls, values: list[Area]) -> list[Area]:
        return sorted(set(values), key=list(Area).index)


class IntentIn(IntentFields):
    id: PositiveInt64


class Intent(IntentIn):
    updated_at: datetime
    version: PositiveInt64 = 1


READ_ONLY = ("path", "updated_at")
"""What GET shows besides the fields an update carries: derived, or the store's own."""


class IntentUpdate(IntentFields):
    """A full replacement of the editable fields, guarded by the version the editor saw.

    Every field must be given (``null`` where it is empty): a field left out would otherwise
    take its default, so ``{"name": …, "threshold": 0.5, "version": 3}`` would move the intent
    to the root and drop its hints, where the sender meant to change one threshold. The body
    GET returns is a valid update as it is: what GET adds (``path``, ``updated_at``) is
    ignored, and ``id`` only has to name the intent being replaced.
    """

    model_config = ConfigDict(
        json_schema_extra={"required": [*IntentFields.model_fields, "version"]},
    )

    version: PositiveInt64 = Field(
        description="the version being replaced (optimistic concurrency)"
    )
    id: PositiveInt64 | None = Field(
        default=None, exclude=True, description="optional, as GET returns it: the URL's id"
    )

    @model_validator(mode="before")
    @classmethod
    def _whole(cls, data: object) -> object:
        if isinstance(data, dict):
            missing = [name for name in IntentFields.model_fields if name not in data]
            if missing:
                raise ValueError(
                    f"an update replaces the whole intent: {', '.join(missing)} missing "
                    "(send the intent as GET returns it, with your change)"
                )
            data = {k: v for k, v in data.items() if k not in READ_ONLY}
        return data


class CatalogFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Int64 = 1
    intents: list[IntentIn]
