"""Liveness/readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter()


@router.get("/healthz", tags=["ops"])
async def healthz(request: Request) -> dict[str, object]:
    state = request.app.state.chatda
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


@router.get("/metrics", tags=["ops"], include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
