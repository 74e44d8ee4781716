"""The live suggestion index: intents, article titles and popular queries, rebuilt and swapped.

Three sources feed it: the open intents exposed in the SUGGEST area (names, and hints short
enough to read as completions rather than descriptions), article titles read from Milvus,
and queries that earlier searches' feedback made popular. Popularity (of queries, and of the
titles and intents people click) comes from the table the ``refresh-suggestions`` job writes.
A new ``SuggestionIndex`` is built off the event loop and replaces the old one in a single
reference swap, so a request always reads one whole index. Rebuilds happen when the catalog
snapshot version changes (checked every ``tick_s``) and every ``refresh_s`` when titles and
popularity are reloaded; a source that is unavailable (no Milvus, a DB hiccup) keeps its last
known entries.

Titles also follow the articles: when the in-memory article tier's version moves (it loaded
the collection, or applied a write), they are reloaded, at most every ``follow_s``, and no
sooner than twenty times what the last reload and rebuild took (about 1.6 s of index build at
50,000 titles on this 2-core box: under steady publishing the follow then runs every ~30 s
and keeps to a twentieth of a core). Before, the first load ran before the demo articles were
indexed and the next one came ``refresh_s`` (five minutes) later: a first run suggested no
titles for its first five minutes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from chatda.catalog.models import Area
from chatda.catalog.service import CatalogService
from chatda.catalog.snapshot import CatalogSnapshot
from chatda.feedback.popularity import PopularityStore
from chatda.polling import Poller
from chatda.search.articles import ArticleIndex
from chatda.suggest.entries import SuggestEntry, Suggestion
from chatda.suggest.index import SuggestionIndex

log = logging.getLogger(__name__)


FOLLOW_COST_RATIO = 20.0
"""The follow waits at least this many times what its last reload and rebuild took."""


@dataclass(frozen=True)
class SuggestOptions:
    refresh_s: float = 300.0
    follow_s: float = 5.0
    """Titles are reloaded at most this often while the articles keep changing (less often
    when a reload costs more than a 1/FOLLOW_COST_RATIO share of it)."""
    tick_s: float = 1.0
    max_titles: int = 50_000
    max_hint_chars: int = 30
    max_queries: int = 1000


@dataclass(frozen=True)
class IndexInfo:
    """What the serving index was built from, for the API to show."""

    catalog_version: int | None
    entries: int
    intents: int
    titles: int
    queries: int
    built_at: float


def intent_entries(
    snapshot: CatalogSnapshot, max_hint_chars: int, clicks: dict[str, float]
) -> list[SuggestEntry]:
    """Open SUGGEST-area intents: the name, and each hint up to ``max_hint_chars`` long, all as
    popular as the intent's clicks."""
    entries: list[SuggestEntry] = []
    for intent in snapshot.intents:
        if not intent.open or Area.SUGGEST not in intent.areas:
            continue
        ref = str(intent.id)
        popularity = clicks.get(ref, 0.0)
        entries.append(SuggestEntry(intent.name, "intent", ref, popularity))
        entries.extend(
            SuggestEntry(hint, "hint", ref, popularity)
            for hint in intent.hints
            if len(hint) <= max_hint_chars
        )
    return entries


class SuggestService:
    def __init__(
        self,
        catalog: CatalogService,
        articles: ArticleIndex,
        popularity: PopularityStore,
        options: SuggestOptions,
        articles_version: Callable[[], int] = lambda: 0,
    ) -> None:
        """``articles_version``: a number that moves whenever the served articles change (the
        article tier's version); the default never moves (titles every ``refresh_s``)."""
        self.catalog = catalog
        self.articles = articles
        self.popularity = popularity
        self.options = options
        self.articles_version = articles_version
        self._articles_seen: int | None = None
        self._next_follow = float("-inf")
        self._titles: list[SuggestEntry] = []
        self._queries: list[SuggestEntry] = []
        self._clicks: dict[str, float] = {}
        self._serving = (SuggestionIndex(()), IndexInfo(None, 0, 0, 0, 0, time.time()))
        self._next_reload = 0.0
        self._poller = Poller("suggestion index refresh", self.tick, options.tick_s)

    @property
    def info(self) -> IndexInfo:
        return self._serving[1]

    def suggest(self, prefix: str, limit: int) -> list[Suggestion]:
        return self._serving[0].suggest(prefix, limit)

    async def start(self) -> None:
        self._poller.start()

    async def close(self) -> None:
        await self._poller.close()

    async def tick(self) -> None:
        """One round: reload the sources when ``refresh_s`` has passed, or the articles changed
        and the follow may run again; rebuild if they or the catalog version changed. A title
        read that fails after a change is tried again at the next follow."""
        now = time.monotonic()
        articles = self.articles_version()
        followed = articles != self._articles_seen and now >= self._next_follow
        if now >= self._next_reload or followed:
            self._articles_seen = articles  # a write during the reload moves it again
            changed, titles_read = await self.reload_sources()
            if not titles_read:
                self._articles_seen = None
            if changed:
                await self.rebuild()
            spent = time.monotonic() - now
            # titles and a rebuild cost ~1.6 s at 50,000 titles: the follow spends at most a
            # 1/FOLLOW_COST_RATIO share of a core on them, however often articles arrive
            self._next_follow = now + max(self.options.follow_s, FOLLOW_COST_RATIO * spent)
            self._next_reload = time.monotonic() + self.options.refresh_s
        version = self.catalog.snapshot.version if self.catalog.ready else None
        if version != self.info.catalog_version:
            await self.rebuild()

    async def reload_sources(self) -> tuple[bool, bool]:
        """Re-read popularity and titles; returns whether anything changed, and whether the
        titles were read (a source that fails keeps its last entries)."""
        queries, clicks = self._queries, self._clicks
        try:
            popular = await asyncio.to_thread(self.popularity.load, self.options.max_queries)
            queries = [SuggestEntry(text, "query", None, n) for text, n in popular.queries]
            clicks = popular.items
        except Exception as exc:
            log.warning("suggestion popularity unavailable: %s", exc)
        titles = self._titles
        titles_read = not self.articles.configured  # no Milvus: nothing to read, nothing to retry
        try:
            if await asyncio.to_thread(self.articles.connect):
                found = await asyncio.to_thread(self.articles.titles, self.options.max_titles)
                titles = [
                    SuggestEntry(title, "title", post_id, clicks.get(post_id, 0.0))
                    for post_id, title in found
                ]
                titles_read = True
        except Exception as exc:  # e.g. the alias does not exist before the first ingest
            log.warning("article titles for suggestions unavailable: %s", exc)
        changed = (titles, queries, clicks) != (self._titles, self._queries, self._clicks)
        self._titles, self._queries, self._clicks = titles, queries, clicks
        return changed, titles_read

    async def rebuild(self) -> None:
        """Build a new index from the current sources and swap it in."""
        snapshot = self.catalog.snapshot if self.catalog.ready else None
        intents = (
            intent_entries(snapshot, self.options.max_hint_chars, self._clicks) if snapshot else []
        )
        titles, queries = self._titles, self._queries
        index = await asyncio.to_thread(SuggestionIndex, [*intents, *titles, *queries])
        info = IndexInfo(
            catalog_version=snapshot.version if snapshot else None,
            entries=len(index),
            intents=len(intents),
            titles=len(titles),
            queries=len(queries),
            built_at=time.time(),
        )
        self._serving = (index, info)  # one reference: readers see the old or the new, whole
        log.info(
            "suggestion index: %d entries (catalog v%s, %d titles, %d queries)",
            len(index),
            info.catalog_version,
            len(titles),
            len(queries),
        )
