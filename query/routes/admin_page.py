"""The operator's catalog page: browse the intent tree, create, edit, delete, try a query live.

The page is a shell: its scripts read and write the catalog through ``/v1/admin/intents``
(``query.routes.admin_intents``), so the page and the API cannot disagree about what an intent
is, and this module touches no SQL. The scripts are three files with one job each (the API
helper, the tree and editor, the try box) served from ``query/static``; the try box talks to
the editor only through DOM events, so it can change without touching the editor.

Signing in exchanges the admin token for a session cookie (``query.auth.admin_session``): a
signed expiry, HttpOnly and SameSite=Strict, so the token itself never sits in the browser and
a stolen cookie stops working after ``ADMIN_SESSION_S``. Wrong tokens typed into the form
count towards the same per-address limit as wrong bearer tokens.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from chatda.settings import Settings
from query.auth import (
    ADMIN_COOKIE,
    ADMIN_SESSION_S,
    admin_session,
    require_admin,
)
from query.dependencies import State
from query.routing import ChatdaRoute

router = APIRouter(include_in_schema=False, route_class=ChatdaRoute)
templates = Jinja2Templates(directory=str(Path(__file__).parents[1] / "templates"))

STATIC_DIR = Path(__file__).parents[1] / "static"
ASSETS = {
    "admin.css": "text/css",
    "admin-api.js": "text/javascript",
    "admin.js": "text/javascript",
    "admin-try.js": "text/javascript",
}
"""The page's own files, named one by one: nothing else under ``static`` is served from here."""


def _threshold(settings: Settings) -> str:
    """The global threshold of the rule in force (issue #27); a catalog too small to calibrate
    is served on the raw one, which the try box's rule line shows."""
    if settings.intent_decision == "calibrated":
        return f"신뢰도 임계값 {settings.intent_min_confidence}"
    return f"기본 임계값 {settings.intent_threshold}"


@router.get("/admin", response_class=HTMLResponse)
async def admin(request: Request, state: State, q: str | None = None) -> Response:
    try:
        require_admin.check(request)
    except HTTPException:
        return templates.TemplateResponse(request, "login.html", {"error": None})
    return templates.TemplateResponse(
        request,
        "admin.html",
        {
            "q": q or "",
            "threshold": _threshold(state.settings),
            "model": state.encoder.ref,
        },
    )


@router.get("/admin/static/{name}")
async def asset(name: str) -> Response:
    """No-cache (revalidated by ETag), so an upgrade never runs yesterday's script."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise HTTPException(status_code=404, detail=f"no admin asset {name!r}")
    return FileResponse(
        STATIC_DIR / name,
        media_type=f"{media_type}; charset=utf-8",
        headers={"cache-control": "no-cache"},
    )


@router.post("/admin/login")
async def login(request: Request, state: State, token: str = Form(...)) -> Response:
    if not require_admin.accepts(request, token):
        return templates.TemplateResponse(
            request,
            "login.html",
            {"error": "토큰이 올바르지 않습니다 (invalid token)"},
            status_code=403,
        )
    secret = state.settings.admin_token
    assert secret is not None  # accepts() refuses every token when none is configured
    response = RedirectResponse("/admin", status_code=303)
    response.set_cookie(
        ADMIN_COOKIE,
        admin_session(secret),
        max_age=ADMIN_SESSION_S,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",  # plain http stays usable on 127.0.0.1
    )
    return response


@router.post("/admin/logout")
async def logout() -> Response:
    response = RedirectResponse("/admin", status_code=303)
    response.delete_cookie(ADMIN_COOKIE)
    return response
