"""What one API process holds: its settings, the batcher (and through it the serving query
model), the intent catalog with its store, the search services and the article publisher."""

from __future__ import annotations

from dataclasses import dataclass

from chatda.batching.batcher import DynamicBatcher
from chatda.catalog.service import CatalogService
from chatda.catalog.store import CatalogStore
from chatda.models.encoder import Encoder
from chatda.settings import Settings
from query.services import PublisherSlot, SearchServices


@dataclass
class ApiState:
    settings: Settings
    batcher: DynamicBatcher
    store: CatalogStore
    catalog: CatalogService
    search: SearchServices
    publisher: PublisherSlot

    @property
    def encoder(self) -> Encoder:
        """The serving query model (it follows the index alias: chatda.search.model_follow)."""
        return self.batcher.encoder
