"""What one API process holds: its settings, the batcher (and through it the serving query
model), the intent catalog with its store, the search services, the article publisher, the
wrong-token limiter and the readiness check cache.

The app's lifespan (``query.app``) builds one per start-up; routes receive it as the typed
dependency ``query.dependencies.State``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chatda.batching.batcher import DynamicBatcher
from chatda.catalog.service import CatalogService
from chatda.catalog.store import CatalogStore
from chatda.models.encoder import Encoder
from chatda.settings import Settings
from query.auth_failures import AuthFailures
from query.readiness import Readiness
from query.services import PublisherSlot, SearchServices


@dataclass
class ApiState:
    settings: Settings
    batcher: DynamicBatcher
    store: CatalogStore
    catalog: CatalogService
    search: SearchServices
    publisher: PublisherSlot
    auth_failures: AuthFailures = field(default_factory=AuthFailures)
    """One limit for every token guard and the admin sign-in form."""
    readiness: Readiness = field(init=False)
    """One check cache for every probe (/readyz, /metrics)."""

    def __post_init__(self) -> None:
        self.readiness = Readiness(self)

    @property
    def encoder(self) -> Encoder:
        """The serving query model (it follows the index alias: chatda.search.model_follow)."""
        return self.batcher.encoder
