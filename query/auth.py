"""Token checks for the admin and publisher faces: one guard class, constant-time comparisons,
and a per-address limit on wrong tokens (``query.auth_failures``: past it, 429 until the
address is back under it).

A ``TokenGuard`` is a FastAPI ``HTTPBearer`` security scheme, so the OpenAPI document declares
it and /docs can send a token; ``query.routing.ChatdaRoute`` runs it before the body is read.
The admin page signs in once with the admin token and then carries a signed, expiring session
cookie (never the token itself), which the admin guard accepts like a bearer token.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import HTTPException, Request
from fastapi.security import HTTPBearer
from pydantic import SecretStr

from chatda.settings import Settings
from query.dependencies import api_state

ADMIN_COOKIE = "chatda_admin"
ADMIN_SESSION_S = 12 * 3600
"""How long an admin page sign-in lasts (the cookie's Max-Age and the signed expiry)."""


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def refuse_if_throttled(request: Request) -> None:
    """429 with ``Retry-After`` while this client is over its wrong-token limit."""
    wait_s = api_state(request).auth_failures.retry_after_s(client_address(request))
    if wait_s is not None:
        raise HTTPException(
            429,
            "too many wrong tokens from this address; try again later",
            headers={"Retry-After": str(max(1, math.ceil(wait_s)))},
        )


def _raw(text: str) -> bytes:
    """Bytes to compare: ``compare_digest`` refuses non-ASCII ``str`` (a 500 on a hostile
    cookie), and a form field may carry lone surrogates that strict UTF-8 cannot encode."""
    return text.encode("utf-8", "surrogatepass")


def token_matches(expected: SecretStr | None, presented: str | None) -> bool:
    if expected is None or not expected.get_secret_value() or presented is None:
        return False
    return hmac.compare_digest(_raw(expected.get_secret_value()), _raw(presented))


def _session_signature(token: SecretStr, expires: int) -> str:
    key = hmac.digest(_raw(token.get_secret_value()), b"chatda admin session", hashlib.sha256)
    return hmac.new(key, str(expires).encode(), hashlib.sha256).hexdigest()


def admin_session(token: SecretStr, now: float | None = None) -> str:
    """A cookie value proving a sign-in until it expires: ``EXPIRES.HMAC``, no token inside.

    The key derives from the admin token, so rotating the token signs every page out.
    """
    expires = int(now if now is not None else time.time()) + ADMIN_SESSION_S
    return f"{expires}.{_session_signature(token, expires)}"


def session_valid(token: SecretStr | None, value: str | None, now: float | None = None) -> bool:
    if token is None or not token.get_secret_value() or not value:
        return False
    expires, _, signature = value.partition(".")
    if not expires.isascii() or not expires.isdigit() or len(expires) > 12:
        return False
    if int(expires) <= (now if now is not None else time.time()):
        return False
    return hmac.compare_digest(_raw(_session_signature(token, int(expires))), _raw(signature))


def bearer_token(request: Request) -> str | None:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" else None


@dataclass(frozen=True)
class Refusals:
    """What a face answers: when it is not configured, and to a missing or wrong token."""

    disabled_status: int
    disabled_message: str
    missing_message: str
    wrong_status: int
    wrong_message: str


class TokenGuard(HTTPBearer):
    """The bearer check of one face (a ``Settings`` secret), declared as an OpenAPI scheme.

    Guards run before FastAPI solves a route's dependencies (``query.routing``), so they take
    the process's state from the request through the same accessor as the ``State``
    dependency (``query.dependencies.api_state``).
    """

    def __init__(
        self,
        name: str,
        secret: Callable[[Settings], SecretStr | None],
        refusals: Refusals,
        session_cookie: str | None = None,
    ) -> None:
        super().__init__(scheme_name=name, auto_error=False, description=refusals.missing_message)
        self.secret = secret
        self.refusals = refusals
        self.session_cookie = session_cookie

    def _expected(self, request: Request) -> SecretStr | None:
        secret = self.secret(api_state(request).settings)
        return secret if secret is not None and secret.get_secret_value() else None

    def check(self, request: Request) -> None:
        """Return if the request may pass, else raise the face's 401/403/429/503."""
        r = self.refusals
        expected = self._expected(request)
        if expected is None:
            raise HTTPException(r.disabled_status, r.disabled_message)
        presented = bearer_token(request)
        if presented is None:
            cookie = request.cookies.get(self.session_cookie) if self.session_cookie else None
            if session_valid(expected, cookie):
                return
            raise HTTPException(401, r.missing_message, headers={"WWW-Authenticate": "Bearer"})
        if self.accepts(request, presented):
            return
        headers = {"WWW-Authenticate": "Bearer"} if r.wrong_status == 401 else None
        raise HTTPException(r.wrong_status, r.wrong_message, headers=headers)

    def accepts(self, request: Request, presented: str) -> bool:
        """Whether ``presented`` is this face's token. A miss counts against the client's
        address; while it is over the limit this raises 429 instead of comparing."""
        refuse_if_throttled(request)
        if token_matches(self._expected(request), presented):
            return True
        api_state(request).auth_failures.record(client_address(request))
        return False

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        """As a dependency: the same check again, so a route mounted without the route class
        is still guarded (on success it costs one constant-time compare)."""
        self.check(request)


require_admin = TokenGuard(
    "admin",
    lambda settings: settings.admin_token,
    Refusals(
        disabled_status=403,
        disabled_message="admin API disabled: set CHATDA_ADMIN_TOKEN",
        missing_message="admin token required (CHATDA_ADMIN_TOKEN as a bearer token)",
        wrong_status=403,
        wrong_message="invalid admin token",
    ),
    session_cookie=ADMIN_COOKIE,
)
require_publisher = TokenGuard(
    "publisher",
    lambda settings: settings.publisher_token,
    Refusals(
        disabled_status=503,
        disabled_message="publishing is disabled: set CHATDA_PUBLISHER_TOKEN to enable it",
        missing_message="a valid bearer token is required to publish articles",
        wrong_status=401,
        wrong_message="a valid bearer token is required to publish articles",
    ),
)
