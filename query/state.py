"""What one API process holds: its settings, the batcher (and through it the serving query
model), the intent catalog with its store, and the search services."""

from __future__ import annotations

from dataclasses import dataclass

from chatda.batching.batcher import DynamicBatcher
from chatda.catalog.service import CatalogService
from chatda.catalog.store import CatalogStore
from chatda.models.encoder import Encoder
from chatda.search.services import SearchServices
from chatda.settings import Settings


@dataclass
class ApiState:
    settings: Settings
    batcher: DynamicBatcher
    store: CatalogStore
    catalog: CatalogService
    search: SearchServices

    @property
    def encoder(self) -> Encoder:
        """The serving query model (it follows the index alias: chatda.search.model_follow)."""
        return self.batcher.encoder
