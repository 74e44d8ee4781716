"""The error answers each route documents in OpenAPI, in the one shape ``query.errors`` writes.

A route declares every status it can answer (``responses=documented(401, 403)``, on the router
for what all its routes share), so the schema a client is generated from, and the Schemathesis
run over it in tests/api/test_schema_fuzz.py, know each error and its body. Declaring 422 here
also replaces FastAPI's default 422 (``{"detail": [...]}``), which the handlers never send.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class ErrorDetail(BaseModel):
    """``message`` always; some errors add fields (``id``, ``details``, ``retry_after_s``)."""

    model_config = ConfigDict(extra="allow")

    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before trying again",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}

_DESCRIPTIONS = {
    401: "no token, or a wrong publisher token",
    403: "a wrong admin token, or the admin API is disabled",
    404: "no such id",
    409: "a stale version or a duplicate id; nothing was written",
    413: "the request body is over the size limit",
    422: "invalid input; the message names the field",
    429: (
        "overloaded (too many requests in flight, or a full encoder queue), or too many wrong"
        " tokens from this client: retry after Retry-After"
    ),
    503: "a dependency is not ready (the catalog is loading, publishing is off or unreachable)",
    504: "the request timed out in the encoder queue",
}


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, each with the error body."""
    return {
        status: {
            "model": ErrorBody,
            "description": _DESCRIPTIONS[status],
            **({"headers": _RETRY_AFTER} if status in (429, 503) else {}),
        }
        for status in statuses
    }
