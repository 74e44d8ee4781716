"""Integers from untrusted input: never a boolean, always within SQL's signed 64-bit range.

Pydantic's lax mode turns ``true`` into 1, so ``{"top_k": true}`` or ``{"version": true}`` was
accepted as a number nobody meant. And an id of 2**63 validated fine, then overflowed SQLite's
INTEGER (PostgreSQL's BIGINT) and answered 500. Every integer a client sends is an ``Int64`` or
``PositiveInt64``, or for a narrower range ``Annotated[int, Field(...), NOT_A_BOOLEAN]``, so
both are a 422 naming the field. Strings of digits stay accepted: GET query parameters arrive
as strings.

Bounds go inside the ``Annotated``, ahead of ``NOT_A_BOOLEAN``: bounds added around a type that
carries a before-validator are enforced but leave the JSON Schema (and so OpenAPI) as
non-standard ``ge``/``le`` keys.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def _not_a_boolean(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer, not a boolean")
    return value


NOT_A_BOOLEAN = BeforeValidator(_not_a_boolean)

Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX), NOT_A_BOOLEAN]
PositiveInt64 = Annotated[int, Field(ge=1, le=INT64_MAX), NOT_A_BOOLEAN]
"""Ids and versions: 1 .. 2**63 - 1."""
