"""Everything the search, suggest, feedback and article routes use, built and torn down by the
app's lifespan (query/app.py).

The API's lifespan opens this once, after the catalog service exists. Start-up never waits on
Milvus or Kafka for long: an unreachable Milvus leaves the document legs "skipped" until the
refresh loop connects, an unreachable broker sends feedback straight to SQL.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import Engine

from chatda.articles.publisher import Publisher
from chatda.batching.batcher import DynamicBatcher
from chatda.catalog.service import CatalogService
from chatda.feedback.popularity import PopularityStore
from chatda.feedback.sink import FeedbackSink, open_sink
from chatda.feedback.store import FeedbackStore
from chatda.models.encoder import encoder_loader
from chatda.models.registry import ModelRegistry
from chatda.search.articles import ArticleIndex
from chatda.search.engine import SearchEngine
from chatda.search.legs import Bm25Leg, DenseLeg
from chatda.search.model_follow import ModelFollower
from chatda.search.profiles import SourceName, load_profiles
from chatda.search.recent import RecentQueries
from chatda.search.suggestions import SuggestOptions, SuggestService
from chatda.search.tier.follower import TierFollower
from chatda.search.tier.tier import ArticleTier
from chatda.settings import Settings
from chatda.text.morphemes import default_morphemes

log = logging.getLogger(__name__)

_FIRST_CONNECT_S = 5.0


@dataclass
class SearchServices:
    engine: SearchEngine
    suggest: SuggestService
    recent: RecentQueries
    feedback: FeedbackSink
    articles: ArticleIndex
    pool: ThreadPoolExecutor
    follower: ModelFollower
    tier: ArticleTier
    tier_follower: TierFollower | None

    @classmethod
    async def open(
        cls, settings: Settings, catalog: CatalogService, batcher: DynamicBatcher, sql: Engine
    ) -> SearchServices:
        """Build and start; raises ``ProfileError`` on a bad profiles configuration."""
        profiles = load_profiles(settings.profiles, settings.profiles_file)
        articles = ArticleIndex(settings.milvus_uri, settings.data_dir, settings.articles_alias)
        if articles.configured:
            try:
                await asyncio.wait_for(asyncio.to_thread(articles.connect), _FIRST_CONNECT_S)
            except TimeoutError:
                log.warning(
                    "milvus did not answer in %.0fs; search retries in the background",
                    _FIRST_CONNECT_S,
                )
        pool = ThreadPoolExecutor(settings.search_workers, thread_name_prefix="chatda-search")
        store = FeedbackStore(sql)
        recent = RecentQueries(settings.search_recent_queries)
        # the tier follows writes through the broker's announcements: without one it would
        # go stale, so it is on only with both engines
        following = articles.configured and settings.kafka_bootstrap is not None
        encoder = batcher.encoder
        tier = ArticleTier(
            articles,
            settings.article_tier_max_bytes if following else 0,
            encoder.device,
            encoder.dim,
        )
        tier_follower = (
            TierFollower(
                tier,
                settings.kafka_bootstrap,
                settings.articles_indexed_topic,
                settings.article_partitions,  # as the ingest workers create it
            )
            if tier.enabled and settings.kafka_bootstrap is not None
            else None
        )
        suggest = SuggestService(
            catalog,
            articles,
            PopularityStore(sql),
            SuggestOptions(
                refresh_s=settings.suggest_refresh_s,
                max_titles=settings.suggest_max_titles,
                max_hint_chars=settings.suggest_max_hint_chars,
                max_queries=settings.suggest_max_queries,
            ),
            articles_version=lambda: tier.version,
        )
        engine = SearchEngine(
            profiles,
            settings.search_default_profile,
            catalog,
            batcher,
            articles,
            {SourceName.DENSE: DenseLeg(articles, pool), SourceName.BM25: Bm25Leg(articles, pool)},
            suggest,
            default_morphemes(),
            recent,
            settings.search_snippet_chars,
            tier,
        )
        feedback = await open_sink(
            settings.kafka_bootstrap,
            settings.events_topic,
            settings.events_partitions,
            store,
            settings.feedback_send_timeout_s,
        )
        follower = ModelFollower(
            articles,
            batcher,
            catalog,
            encoder_loader(ModelRegistry(settings.models_dir), settings),
            settings.index_follow_s,
            tier_follower,
        )
        if tier_follower is not None:
            tier_follower.start()
        await suggest.start()
        await follower.start()
        return cls(engine, suggest, recent, feedback, articles, pool, follower, tier, tier_follower)

    async def close(self) -> None:
        await self.follower.close()
        if self.tier_follower is not None:
            await asyncio.to_thread(self.tier_follower.close)
        await self.suggest.close()
        # legs the engine stopped waiting for end on their own gRPC timeouts; don't wait here
        self.pool.shutdown(wait=False, cancel_futures=True)
        await asyncio.to_thread(self.feedback.close)
        await asyncio.to_thread(self.articles.close)


class PublisherSlot:
    """The process's one article producer, connected on first use and again after a failed
    connect (a broker down at start-up must not stop the API from starting)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._publisher: Publisher | None = None

    def get(self) -> Publisher:
        with self._lock:
            if self._publisher is None:
                self._publisher = Publisher.from_settings(self.settings)
            return self._publisher

    def close(self) -> None:
        with self._lock:
            if self._publisher is not None:
                self._publisher.close()
                self._publisher = None
