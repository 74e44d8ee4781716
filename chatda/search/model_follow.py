"""The API's query model follows the index: whatever model built the collection the alias serves.

Every few seconds each API process asks Milvus what the alias serves. When it moved to a
collection of another model, the process loads that model in the background, re-embeds the
intent catalog with it, and then, in one step of the event loop, makes it the model of new
requests together with its snapshot and its collection. Requests already running finish with
the model, snapshot and collection they started with (``ArticleIndex`` keeps the previous
collection mapped), so old and new are never mixed within one request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from prometheus_client import Counter, Gauge

from chatda.batching.batcher import DynamicBatcher
from chatda.catalog.service import CatalogService
from chatda.models.encoder import Encoder
from chatda.polling import Poller
from chatda.search.articles import ArticleIndex
from chatda.search.tier.follower import TierFollower
from chatda.storage.index_models import ServedIndex, served_index

log = logging.getLogger(__name__)

SWITCHES = Counter(
    "chatda_query_model_switches_total", "query model switches that followed the index alias"
)
SWITCH_FAILURES = Counter(
    "chatda_query_model_switch_failures_total", "failed attempts to follow the index alias"
)
SWITCH_SECONDS = Gauge(
    "chatda_query_model_switch_seconds", "load + catalog re-embedding time of the last switch"
)

EncoderLoader = Callable[[str], Encoder]


class ModelFollower:
    def __init__(
        self,
        index: ArticleIndex,
        batcher: DynamicBatcher,
        catalog: CatalogService,
        load_encoder: EncoderLoader,
        poll_s: float,
        tier: TierFollower | None = None,
    ) -> None:
        self.index = index
        self.batcher = batcher
        self.catalog = catalog
        self.load_encoder = load_encoder
        self.tier = tier
        self.served: ServedIndex | None = None
        # Milvus or a model load failing: keep serving, try again next round
        self._poller = Poller(
            "following the index alias",
            self.follow,
            poll_s,
            on_failure=lambda _exc: SWITCH_FAILURES.inc(),
        )

    async def start(self) -> None:
        self._poller.start()

    async def close(self) -> None:
        await self._poller.close()

    async def follow(self) -> bool:
        """One check; returns whether the served collection changed."""
        if not await asyncio.to_thread(self.index.connect):
            return False
        client = self.index.client
        served = await asyncio.to_thread(served_index, client, self.index.alias)
        if served is None and self.tier is not None:
            self.tier.tier.nothing_served()
        if served is None or served == self.served:
            return False
        if served.model is None:
            raise RuntimeError(f"collection {served.collection} does not record its model")
        if served.model == self.batcher.encoder.ref:
            await self._hold(served)
            self.index.serve(served.model, served.collection)
        else:
            loop = asyncio.get_running_loop()
            began = loop.time()
            log.info("index moved to %s (%s): loading it", served.collection, served.model)
            encoder = await asyncio.to_thread(self.load_encoder, served.model)
            self.index.serve(served.model, served.collection)  # unused until requests use it
            await self._hold(served)  # so is the tier's view of it
            await self.catalog.switch(encoder)
            self.batcher.swap_encoder(encoder)
            SWITCHES.inc()
            SWITCH_SECONDS.set(loop.time() - began)
            log.info("query model switched to %s in %.1fs", served.model, loop.time() - began)
        self.served = served
        return True

    async def _hold(self, served: ServedIndex) -> None:
        """The article tier loads the new collection before requests are sent to it; while it
        loads, requests keep the tier's previous view (or go to Milvus)."""
        if self.tier is not None:
            await self.tier.hold(served)
