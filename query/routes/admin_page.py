"""The operator's catalog page: search the intents, edit one, try a query against it, live.

Signing in exchanges the admin token for a session cookie (``query.auth.admin_session``): a
signed expiry, HttpOnly and SameSite=Strict, so the token itself never sits in the browser and
a stolen cookie stops working after ``ADMIN_SESSION_S``. Wrong tokens typed into the form
count towards the same per-address limit as wrong bearer tokens.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from chatda.catalog.store import matches
from chatda.catalog.tree import paths
from query.auth import (
    ADMIN_COOKIE,
    ADMIN_SESSION_S,
    admin_session,
    require_admin,
)
from query.routing import ChatdaRoute

router = APIRouter(include_in_schema=False, route_class=ChatdaRoute)
templates = Jinja2Templates(directory=str(Path(__file__).parents[1] / "templates"))


@router.get("/admin", response_class=HTMLResponse)
async def admin(request: Request, q: str | None = None) -> Response:
    state = request.app.state.chatda
    try:
        require_admin.check(request)
    except HTTPException:
        return templates.TemplateResponse(request, "login.html", {"error": None})
    everything = state.store.list()
    shown = [i for i in everything if matches(i, q)] if q else everything
    path_of = paths({i.id: i.name for i in everything}, {i.id: i.parent_id for i in everything})
    return templates.TemplateResponse(
        request,
        "admin.html",
        {
            "intents": [(i, path_of[i.id]) for i in shown],
            "q": q or "",
            "catalog_version": state.store.version(),
            "default_threshold": state.settings.intent_threshold,
            "model": state.encoder.ref,
        },
    )


@router.post("/admin/login")
async def login(request: Request, token: str = Form(...)) -> Response:
    if not require_admin.accepts(request, token):
        return templates.TemplateResponse(
            request,
            "login.html",
            {"error": "토큰이 올바르지 않습니다 (invalid token)"},
            status_code=403,
        )
    response = RedirectResponse("/admin", status_code=303)
    response.set_cookie(
        ADMIN_COOKIE,
        admin_session(request.app.state.chatda.settings.admin_token),
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
