"""Token checks for the admin and publisher faces (constant-time, one place)."""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request
from pydantic import SecretStr

ADMIN_COOKIE = "chatda_admin"


def presented_token(request: Request, cookie: str | None = None) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    if cookie:
        return request.cookies.get(cookie)
    return None


def token_matches(expected: SecretStr | None, presented: str | None) -> bool:
    if expected is None or not expected.get_secret_value() or presented is None:
        return False
    return hmac.compare_digest(expected.get_secret_value().encode(), presented.encode())


def require_admin(request: Request) -> None:
    """401 without a token, 403 with a wrong one (or when no admin token is configured)."""
    expected = request.app.state.chatda.settings.admin_token
    presented = presented_token(request, ADMIN_COOKIE)
    if presented is None:
        raise HTTPException(401, "admin token required", headers={"WWW-Authenticate": "Bearer"})
    if expected is None or not expected.get_secret_value():
        raise HTTPException(403, "admin API disabled: set CHATDA_ADMIN_TOKEN")
    if not token_matches(expected, presented):
        raise HTTPException(403, "invalid admin token")
