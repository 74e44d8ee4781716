"""The search API process: ``create_app`` wires settings, model, batcher and routes."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from chatda.batching.batcher import DynamicBatcher
from chatda.catalog.calibration_fit import config_from_settings
from chatda.catalog.embedding_cache import EmbeddingCache
from chatda.catalog.file_format import read_catalog
from chatda.catalog.service import CatalogService
from chatda.catalog.snapshot import Fusion
from chatda.catalog.store import CatalogStore
from chatda.db.engine import make_engine, upgrade
from chatda.feedback.store import FeedbackStore
from chatda.models.encoder import open_encoder
from chatda.models.registry import ModelRegistry
from chatda.settings import Settings, get_settings
from chatda.text.morphemes import default_morphemes
from query.admission import AdmissionGate, pool_limits
from query.docs_pages import install_docs
from query.errors import install_error_handlers
from query.limits import BodyLimit, body_limits
from query.metrics_http import HttpMetrics
from query.routes import (
    admin_intents,
    admin_page,
    articles,
    embeddings,
    feedback,
    health,
    intents,
    search,
    suggest,
)
from query.services import PublisherSlot, SearchServices
from query.state import ApiState


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        registry = ModelRegistry(settings.models_dir)
        encoder = open_encoder(registry.get(settings.model_name, settings.model_version), settings)
        batcher = DynamicBatcher(
            encoder,
            max_batch_size=settings.batch_max_size,
            max_batch_tokens=settings.batch_max_tokens,
            queue_limit=settings.batch_queue_limit,
            default_timeout_s=settings.request_timeout_ms / 1000,
        )
        await batcher.start()
        engine = make_engine(settings.sql_url)
        upgrade(engine)
        store = CatalogStore(engine)
        if settings.catalog_file and not store.list():
            store.import_intents(read_catalog(settings.catalog_file))
        catalog = CatalogService(
            store,
            batcher,
            default_morphemes(),
            settings.intent_threshold,
            Fusion.from_settings(settings),
            settings.catalog_poll_s,
            EmbeddingCache.in_data_dir(settings.data_dir),
            calibration=config_from_settings(settings),
            clicks=FeedbackStore(engine),
        )
        await catalog.start()
        search_services = await SearchServices.open(settings, catalog, batcher, engine)
        publisher = PublisherSlot(settings)
        app.state.chatda = ApiState(
            settings=settings,
            batcher=batcher,
            store=store,
            catalog=catalog,
            search=search_services,
            publisher=publisher,
        )
        # Everything loaded so far (torch, transformers, the model, the routes: some 380,000
        # objects) lives as long as the process. Left to the cycle collector, each full
        # collection walked all of it: 190-330 ms with every thread stopped, about once a
        # second under load, which made a tenth of admitted searches miss their budget
        # (BENCHMARKS § 8). Frozen, it is never walked again; what requests allocate is
        # collected as before. Collected first, so that no garbage of the start-up is frozen
        # with it (frozen cycles are never freed).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await asyncio.to_thread(publisher.close)
            await search_services.close()
            await catalog.close()
            await batcher.close()
            engine.dispose()

    app = FastAPI(
        title="chatda 찾다", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None
    )
    install_docs(app)  # /docs and /redoc from local assets, not a CDN
    install_error_handlers(app)
    app.add_middleware(
        BodyLimit, default_bytes=settings.max_body_bytes, per_path=body_limits(settings)
    )
    app.add_middleware(AdmissionGate, limits=pool_limits(settings))  # cheapest refusal
    app.add_middleware(HttpMetrics)  # outermost: counts refusals too
    app.include_router(health.router)
    app.include_router(embeddings.router)
    app.include_router(articles.router)
    app.include_router(intents.router)
    app.include_router(admin_intents.router)
    app.include_router(admin_page.router)
    app.include_router(search.router)
    app.include_router(suggest.router)
    app.include_router(feedback.router)
    return app
