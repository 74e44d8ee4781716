"""The article tier of one API process: which collection it holds, loading it, keeping it fresh.

The tier mirrors the collection the serving alias points at. It loads it whole with a query
iterator (progress in the log and in ``/readyz``), then applies each announced write by
fetching that article's current rows by ``post_id`` (``announcements``): a fetch returns the
state Milvus holds now, so applying the same announcement twice, or late, is harmless, and a
deleted article simply comes back with no rows.

A fetch that fails is retried later (the follower keeps the ids), but only while the failure
is Milvus's: when the collection still answers, the failing group is halved until the id it
fails on is alone, and that id is skipped with a warning. Retrying it could never succeed and
would hold back every id announced with or after it. A group whose rows reach the query's row
limit may have come back cut, so it is halved too.

Requests read ``view_for(model)``: an immutable ``TierView``, replaced (never changed) by each
load or write. A collection that does not fit ``CHATDA_ARTICLE_TIER_MAX_BYTES`` is not held:
its document legs go to Milvus, as they do while the tier loads or when it is switched off.
Every method that touches Milvus blocks: they run on the tier's own thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from prometheus_client import Gauge

from chatda.search.articles import ArticleIndex
from chatda.search.tier.columns import ROW_FIELDS, ChunkColumns
from chatda.search.tier.view import TierView
from chatda.storage.filters import quote
from chatda.storage.index_models import ServedIndex
from chatda.storage.scan import scan

log = logging.getLogger(__name__)

_LOAD_BATCH = 1000
_FETCH_GROUP = 64
_FETCH_LIMIT = 16384

CHUNKS = Gauge("chatda_article_tier_chunks", "live chunks held by the in-memory article tier")
BYTES = Gauge("chatda_article_tier_bytes", "memory held by the in-memory article tier")
LAG = Gauge("chatda_article_tier_apply_seconds", "time to fetch and apply the last announced write")


class OverBudget(RuntimeError):
    """The collection does not fit the tier's memory budget."""


@dataclass(frozen=True)
class TierStatus:
    ready: bool
    detail: str


class ArticleTier:
    def __init__(self, index: ArticleIndex, max_bytes: int, device: str, dim: int) -> None:
        self.index = index
        self.max_bytes = max_bytes
        self.device = device
        self.dim = dim
        self._columns: ChunkColumns | None = None
        self._model: str | None = None
        self._views: dict[str, TierView] = {}
        self._version = 0
        self.wanted: ServedIndex | None = None
        self._unfit: str | None = None
        self.status = TierStatus(not self.enabled, "off" if not self.enabled else "waiting")

    @property
    def version(self) -> int:
        """Counts the states published: a load or an applied write each make a new one."""
        return self._version

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def view_for(self, model_ref: str) -> TierView | None:
        """The state a request of ``model_ref`` scores against; None: go to Milvus."""
        return self._views.get(model_ref)

    @property
    def holding(self) -> str | None:
        """The collection held now."""
        return self._columns.collection if self._columns is not None else None

    def needs_load(self, served: ServedIndex) -> bool:
        """Whether ``served`` is neither held nor known not to fit the budget: a collection
        left to Milvus is not read again (it was, in full, on every poll of the follower)."""
        return served.collection not in (self.holding, self._unfit)

    def nothing_served(self) -> None:
        """No collection exists yet: nothing to load, so the tier is ready (and empty)."""
        if self._columns is None:
            self.status = TierStatus(True, "no article collection yet")

    def load(self, served: ServedIndex) -> None:
        """Hold ``served`` instead of what is held now; on failure hold nothing of it."""
        started = time.monotonic()
        self.status = TierStatus(self._columns is not None, f"loading {served.collection}")
        try:
            columns = self._read_all(served.collection)
        except OverBudget as exc:
            self._unfit = served.collection
            self._drop(str(exc))
            log.warning("article tier: %s; its document legs go to Milvus", exc)
            return
        self._columns, self._model = columns, served.model
        self._publish()
        log.info(
            "article tier holds %s: %d chunks, %.1f MiB, in %.1fs",
            served.collection,
            columns.live,
            columns.nbytes / 2**20,
            time.monotonic() - started,
        )

    def apply(self, post_ids: Iterable[str]) -> None:
        """Bring the announced articles to what the held collection has for them now.

        Raises when Milvus does not answer: nothing is applied, the caller tries again.
        """
        columns = self._columns
        unique = sorted(set(post_ids))
        if columns is None or not unique:
            return
        started = time.monotonic()
        fetched: list[str] = []
        rows: list[dict[str, Any]] = []
        for start in range(0, len(unique), _FETCH_GROUP):
            self._fetch(columns.collection, unique[start : start + _FETCH_GROUP], fetched, rows)
        columns.replace(fetched, rows)
        if columns.wasteful:
            columns = self._columns = columns.compacted()
        if columns.nbytes > self.max_bytes:
            self._unfit = columns.collection
            self._drop(f"{columns.collection} grew past the memory budget")
            return
        self._publish()
        LAG.set(time.monotonic() - started)

    def _publish(self) -> None:
        columns, model = self._columns, self._model
        assert columns is not None and model is not None
        self._version += 1
        view = TierView(columns, self._version)
        kept = {m: v for m, v in self._views.items() if m != model}
        self._views = {**dict(list(kept.items())[-1:]), model: view}
        self.status = TierStatus(True, f"holds {columns.collection}: {view.live} chunks")
        CHUNKS.set(view.live)
        BYTES.set(columns.nbytes)

    def _drop(self, why: str) -> None:
        self._columns, self._model = None, None
        self._views = {}
        self.status = TierStatus(True, f"not held ({why})")
        CHUNKS.set(0)
        BYTES.set(0)

    def _read_all(self, collection: str) -> ChunkColumns:
        columns = ChunkColumns(self.dim, self.device, collection)
        batches = scan(
            self.index.client,
            collection,
            ROW_FIELDS,
            filter="chunk_no >= 0",
            batch_size=_LOAD_BATCH,
        )
        with closing(batches):
            for batch in batches:
                columns.append(batch)
                if columns.nbytes > self.max_bytes:
                    raise OverBudget(
                        f"{collection} needs more than the {self.max_bytes / 2**20:.0f} MiB "
                        "memory budget (CHATDA_ARTICLE_TIER_MAX_BYTES)"
                    )
                self.status = TierStatus(
                    self.status.ready, f"loading {collection}: {columns.live} chunks"
                )
                if columns.live % (20 * _LOAD_BATCH) < len(batch):
                    log.info("article tier loading %s: %d chunks", collection, columns.live)
        return columns

    def _fetch(
        self,
        collection: str,
        group: Sequence[str],
        fetched: list[str],
        rows: list[dict[str, Any]],
    ) -> None:
        """Add the current rows of ``group`` to ``rows`` and its ids to ``fetched``, leaving
        out an id Milvus fails on twice while it answers (module docstring)."""
        try:
            found = self._query(collection, group)
        except Exception:
            self._answers(collection)  # raises: Milvus is down, keep every id for a retry
            if len(group) > 1:
                self._halves(collection, group, fetched, rows)
                return
            try:  # once more, now that Milvus answers: the first failure may have been its
                found = self._query(collection, group)
            except Exception as exc:
                log.warning(
                    "article tier skips %s: %s answers but fetching it fails: %s",
                    repr(group[0])[:80],
                    collection,
                    exc,
                )
                return
        if len(found) >= _FETCH_LIMIT and len(group) > 1:
            self._halves(collection, group, fetched, rows)
            return
        fetched.extend(group)
        rows.extend(found)

    def _halves(
        self,
        collection: str,
        group: Sequence[str],
        fetched: list[str],
        rows: list[dict[str, Any]],
    ) -> None:
        half = len(group) // 2
        self._fetch(collection, group[:half], fetched, rows)
        self._fetch(collection, group[half:], fetched, rows)

    def _query(self, collection: str, post_ids: Sequence[str]) -> list[dict[str, Any]]:
        return self.index.query(
            collection,
            filter=f"post_id in [{', '.join(quote(p) for p in post_ids)}]",
            output_fields=ROW_FIELDS,
            limit=_FETCH_LIMIT,
            consistency_level="Strong",
        )

    def _answers(self, collection: str) -> None:
        """Raise unless ``collection`` answers a query that holds no announced id."""
        self.index.query(collection, filter="chunk_no < 0", output_fields=["chunk_id"], limit=1)
