"""The search API process: ``create_app`` wires settings, model, batcher and routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from chatda.batching.batcher import DynamicBatcher
from chatda.models.encoder import Encoder
from chatda.models.registry import ModelRegistry
from chatda.settings import Settings, get_settings
from query.errors import install_error_handlers
from query.routes import embeddings, health
from query.state import ApiState


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        registry = ModelRegistry(settings.models_dir)
        encoder = Encoder(
            registry.get(settings.model_name), settings.device, settings.cpu_threads
        )
        batcher = DynamicBatcher(
            encoder,
            max_batch_size=settings.batch_max_size,
            max_batch_tokens=settings.batch_max_tokens,
            queue_limit=settings.batch_queue_limit,
            default_timeout_s=settings.request_timeout_ms / 1000,
        )
        await batcher.start()
        app.state.chatda = ApiState(settings=settings, encoder=encoder, batcher=batcher)
        try:
            yield
        finally:
            await batcher.close()

    app = FastAPI(title="chatda 찾다", version="0.1.0", lifespan=lifespan)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(embeddings.router)
    return app
