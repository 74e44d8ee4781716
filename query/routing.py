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

A query parameter that takes one value and is given twice is a 422: FastAPI keeps the last one,
so ``:import?mode=merge&mode=replace`` replaced the whole catalog (a client that appends its
own ``mode`` to a URL that already has one). Parameters that take a list (``tag``) repeat.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from fastapi import HTTPException, Request, Response
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


def _takes_many(annotation: Any) -> bool:
    """Whether a parameter of this type collects every repeat (``list[str] | None``)."""
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        return any(_takes_many(arg) for arg in get_args(annotation))
    if origin is Annotated:
        return _takes_many(get_args(annotation)[0])
    return (origin or annotation) in (list, set, tuple, frozenset)


def _single_valued(dependant: Dependant) -> Iterator[str]:
    for param in dependant.query_params:
        if not _takes_many(param.field_info.annotation):
            yield param.alias
    for sub in dependant.dependencies:
        yield from _single_valued(sub)


def _check_single(request: Request, names: frozenset[str]) -> None:
    for name in names:
        given = len(request.query_params.getlist(name))
        if given > 1:
            raise HTTPException(
                422, f"query parameter {name!r} is given {given} times; it takes one value"
            )


class ChatdaRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        guards = list(dict.fromkeys(_guards(self.dependant)))
        single = frozenset(_single_valued(self.dependant))

        async def guarded(request: Request) -> Response:
            request = JsonInputRequest(request.scope, request.receive)
            for guard in guards:
                guard.check(request)
            _check_single(request, single)
            return await handler(request)

        return guarded
