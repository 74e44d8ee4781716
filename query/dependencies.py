"""Typed FastAPI dependencies: what a route needs from the process, named in its signature.

Routes declare ``state: State`` instead of reaching into ``request.app.state``, so a reader sees
what each route uses, and a type checker checks it; the app's lifespan (query/app.py) is the
one place that builds what these return. ``api_state`` is the one reader of ``app.state``: the
token guards (query.auth), which run before FastAPI solves dependencies, call it directly.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from query.state import ApiState


def api_state(request: Request) -> ApiState:
    """The process's state, built by the lifespan in ``query.app``."""
    state: ApiState = request.app.state.chatda
    return state


State = Annotated[ApiState, Depends(api_state)]
