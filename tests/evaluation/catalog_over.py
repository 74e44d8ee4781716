"""A refreshed catalog service over an eval corpus, on a private SQLite store: what the oracle
tests compare ``chatda eval``'s batched answers against."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from chatda.batching.batcher import DynamicBatcher
from chatda.catalog.calibration_fit import CalibrationConfig
from chatda.catalog.service import CatalogService
from chatda.catalog.snapshot import Fusion
from chatda.catalog.store import CatalogStore
from chatda.db.engine import make_engine, upgrade
from chatda.evaluation.data import CorpusItem
from chatda.evaluation.intents_eval import corpus_to_intents
from chatda.evaluation.window import QUEUE_TIMEOUT_S
from chatda.models.encoder import Encoder
from chatda.settings import Settings
from chatda.text.morphemes import default_morphemes


@asynccontextmanager
async def catalog_over(
    encoder: Encoder,
    corpus: list[CorpusItem],
    settings: Settings,
    calibration: CalibrationConfig | None = None,
) -> AsyncIterator[tuple[CatalogService, DynamicBatcher]]:
    """The corpus imported as intents and the snapshot built (no SLA on the queue); the
    batcher is closed and the store disposed on leaving."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'catalog.db'}")
        upgrade(engine)
        store = CatalogStore(engine)
        store.import_intents(corpus_to_intents(corpus))
        batcher = DynamicBatcher(encoder, default_timeout_s=QUEUE_TIMEOUT_S)
        service = CatalogService(
            store,
            batcher,
            default_morphemes(),
            settings.intent_threshold,
            Fusion.from_settings(settings),
            calibration=calibration,
        )
        try:
            await service.refresh()
            yield service, batcher
        finally:
            await batcher.close()
            engine.dispose()
