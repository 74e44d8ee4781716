"""Liveness (``/healthz``), readiness (``/readyz``) and Prometheus metrics.

Kubernetes restarts a process whose liveness fails and takes a replica out of its Service while
readiness fails, so the two must differ: ``/healthz`` answers whenever the process and its
event loop do (it also describes the model and catalog, for people), ``/readyz`` only while
the replica can serve (query.readiness).
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from query.dependencies import State
from query.errors import error_body
from query.metrics_serving import refresh as refresh_serving
from query.readiness import as_json, failing, ready
from query.routing import ChatdaRoute

router = APIRouter(route_class=ChatdaRoute)


@router.get("/healthz", tags=["ops"])
async def healthz(state: State) -> dict[str, object]:
    catalog = state.catalog
    return {
        "status": "ok",
        "model": state.encoder.ref,
        "device": state.encoder.device,
        "backend": state.encoder.backend,
        "catalog": {
            "ready": catalog.ready,
            "version": catalog.snapshot.version if catalog.ready else None,
            "intents": catalog.snapshot.size if catalog.ready else 0,
        },
    }


@router.get(
    "/readyz",
    tags=["ops"],
    responses={503: {"description": "not ready: the body names each failing dependency"}},
)
async def readyz(state: State) -> JSONResponse:
    dependencies = await state.readiness.check()
    if ready(dependencies):
        return JSONResponse({"status": "ready", "dependencies": as_json(dependencies)})
    down = failing(dependencies)
    response = error_body(
        503, f"not ready: {', '.join(down)}", failing=down, dependencies=as_json(dependencies)
    )
    response.headers["Retry-After"] = "1"
    return response


@router.get("/metrics", tags=["ops"], include_in_schema=False)
async def metrics(state: State) -> Response:
    await state.readiness.check()  # chatda_dependency_up as of now (cached for a second)
    refresh_serving(state)  # catalog and served index as of now
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
