"""HTTP faces of chatda's errors: every failure is a JSON body with a message, never a bare 500."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Iterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import Message

from chatda.batching.errors import BatcherClosed, DeadlineExceeded, Overloaded, TooLarge
from chatda.catalog.errors import CatalogError
from chatda.catalog.service import CatalogNotReady

log = logging.getLogger(__name__)


def error_body(status: int, message: str, **extra: object) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"message": message, **extra}})


def retry_after_header(retry_after_s: float) -> str:
    """HTTP's ``Retry-After`` counts whole seconds: the estimate rounded up, at least 1."""
    return str(max(1, math.ceil(retry_after_s)))


def overloaded_response(exc: Overloaded) -> JSONResponse:
    """429 with ``Retry-After`` and the estimate in the body (``retry_after_s``)."""
    response = error_body(429, str(exc), retry_after_s=exc.retry_after_s)
    response.headers["Retry-After"] = retry_after_header(exc.retry_after_s)
    return response


def overloaded_messages(
    message: str, retry_after_s: float, **extra: object
) -> tuple[Message, Message]:
    """The same 429 as ASGI messages, for the admission gate to build once and send many
    times: a refusal flood must not cost a JSON encoding or a ``Response`` per refusal."""
    body = json.dumps(
        {"error": {"message": message, "retry_after_s": round(retry_after_s, 3), **extra}},
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", retry_after_header(retry_after_s).encode()),
    ]
    return (
        {"type": "http.response.start", "status": 429, "headers": headers},
        {"type": "http.response.body", "body": body},
    )


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        path = list(err.get("loc", ()))
        if path[:1] == ["body"]:
            path = path[1:]
        loc = ".".join(str(p) for p in path)
        if err.get("type") == "json_invalid":
            parts.append(f"invalid JSON: {err.get('ctx', {}).get('error', err.get('msg'))}")
            continue
        parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
    return "; ".join(parts) or "invalid request"


def _takes_json(request: Request) -> bool:
    """Whether the matched route's body is JSON (the catalog import takes YAML)."""
    body = getattr(request.scope.get("route"), "body_field", None)
    return body is not None and body.field_info.media_type == "application/json"


def _leaf_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """Every endpoint route; FastAPI keeps an included router as one route that wraps it."""
    for route in routes:
        included = getattr(route, "original_router", None)
        yield from _leaf_routes(included.routes) if included is not None else (route,)


def _allowed_methods(request: Request) -> set[str]:
    """Every method some route serves at the request's path. Starlette's 405 names only the
    route that matched the path first, and GET and POST on one path are two routes."""
    return {
        method
        for route in _leaf_routes(request.app.router.routes)
        if route.matches(request.scope)[0] is not Match.NONE
        for method in getattr(route, "methods", None) or ()
    }


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        """Tokens (401/403/429), unknown paths (404), wrong methods (405), unreadable bodies
        (400): the documented error shape instead of Starlette's ``{"detail"}``."""
        response = error_body(exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:
            response.headers["Allow"] = ", ".join(sorted(_allowed_methods(request)))
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()
        ]
        message = _validation_message(exc)
        content_type = request.headers.get("content-type", "")
        if (
            _takes_json(request)
            and "json" not in content_type.lower()
            and any(e.get("loc") == ("body",) for e in exc.errors())
        ):
            # curl -d sends a form: FastAPI then reads no JSON and says only that the body
            # "should be a valid dictionary", which names no field and no cause
            message = (
                "the body must be JSON, sent with Content-Type: application/json (this request "
                f"said {content_type or 'nothing'}); {message}"
            )
        return error_body(422, message, details=details)

    @app.exception_handler(Overloaded)
    async def _overloaded(_: Request, exc: Overloaded) -> JSONResponse:
        return overloaded_response(exc)

    @app.exception_handler(TooLarge)
    async def _too_large(_: Request, exc: TooLarge) -> JSONResponse:
        sizes = {"budget_ms": round(exc.budget_s * 1000)}
        if math.isfinite(exc.needed_s):
            sizes["needed_ms"] = round(exc.needed_s * 1000)
        return error_body(413, str(exc), **sizes)

    @app.exception_handler(DeadlineExceeded)
    async def _deadline(_: Request, exc: DeadlineExceeded) -> JSONResponse:
        return error_body(504, f"request timed out in the encoder queue: {exc}")

    @app.exception_handler(CatalogError)
    async def _catalog(_: Request, exc: CatalogError) -> JSONResponse:
        return error_body(exc.status, exc.message, **exc.detail)

    @app.exception_handler(CatalogNotReady)
    async def _not_ready(_: Request, exc: CatalogNotReady) -> JSONResponse:
        response = error_body(503, str(exc))
        response.headers["Retry-After"] = "2"
        return response

    @app.exception_handler(BatcherClosed)
    async def _closed(_: Request, exc: BatcherClosed) -> JSONResponse:
        return error_body(503, "the server is shutting down")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        """A bug: still the documented shape (Starlette's default is a text/plain 500), and no
        detail for the client; the traceback goes to the log, as before."""
        return error_body(500, "internal error; the server's log has the details")
