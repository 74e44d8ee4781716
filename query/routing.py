"""The API's route class: tokens are checked before a body is read, JSON is decoded safely.

FastAPI reads and validates a declared body before it solves any dependency, so a token check
declared as a dependency ran after the body: an unauthenticated caller with a bad body got 422
naming the fields of the admin contract, and the server parsed a stranger's body first.
``ChatdaRoute`` runs the route's ``TokenGuard``\\ s (declared with ``Security``, so OpenAPI and
/docs know the schemes) before anything else.

Its request decodes JSON with ``chatda.json_input.loads``: deep nesting, lone surrogates and
numbers beyond a double raise ``JSONDecodeError``, which FastAPI answers with 422, where the
standard library raised ``RecursionError`` (a 500) or let a lone surrogate through to fail
later. Every router passes ``route_class=ChatdaRoute``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from chatda.json_input import loads
from query.auth import TokenGuard


class JsonInputRequest(Request):
    """A request whose ``json()`` is the one decoder for untrusted JSON."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json


def _guards(dependant: Dependant) -> Iterator[TokenGuard]:
    for sub in dependant.dependencies:
        if isinstance(sub.call, TokenGuard):
            yield sub.call
        yield from _guards(sub)


class ChatdaRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        guards = list(dict.fromkeys(_guards(self.dependant)))

        async def guarded(request: Request) -> Response:
            request = JsonInputRequest(request.scope, request.receive)
            for guard in guards:
                guard.check(request)
            return await handler(request)

        return guarded
