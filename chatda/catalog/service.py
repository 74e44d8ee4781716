"""The live catalog of one API process: follows the store, rebuilds snapshots, matches queries.

Every replica polls the store's catalog version every few seconds, so edits made through any
replica (or the CLI) converge everywhere. A rebuild re-embeds only texts it has not seen with
the current model (in this process, or in the data dir's ``EmbeddingCache``, so a restart
embeds nothing that did not change), builds the new snapshot off to the side and swaps one
reference. When the index moves to another model, ``switch`` re-embeds everything with it and
swaps model and snapshot together.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

import numpy as np
from sqlalchemy.exc import SQLAlchemyError

from chatda.batching.batcher import DynamicBatcher
from chatda.catalog.calibration_fit import (
    CalibrationConfig,
    background_queries,
    calibrate,
    embedded_clicks,
    intent_clicks,
)
from chatda.catalog.embedding_cache import EmbeddingCache
from chatda.catalog.models import Area, Intent
from chatda.catalog.snapshot import (
    CatalogSnapshot,
    Fusion,
    IntentScore,
    MatchContext,
    build_snapshot,
    intent_texts,
)
from chatda.catalog.store import CatalogStore
from chatda.feedback.store import FeedbackStore
from chatda.models.encoder import Encoder
from chatda.polling import Poller
from chatda.text.morphemes import Morphemes

log = logging.getLogger(__name__)

CLICKS_CHECK_S = 30.0
"""How often a replica counts the intent clicks that arrived since its snapshot's fit: one
indexed count query, but over every intent id, so not at every catalog poll."""


class CatalogNotReady(RuntimeError):
    pass


class CatalogService:
    def __init__(
        self,
        store: CatalogStore,
        batcher: DynamicBatcher,
        morphemes: Morphemes,
        default_threshold: float,
        fusion: Fusion,
        poll_s: float = 3.0,
        embedding_cache: EmbeddingCache | None = None,
        calibration: CalibrationConfig | None = None,
        clicks: FeedbackStore | None = None,
    ) -> None:
        self.store = store
        self.calibration = calibration
        """Issue #27: fit a calibrated decision per snapshot; ``None`` keeps the raw rule."""
        self.clicks = clicks
        """Where the fit reads users' intent clicks (``None``: hints and background only)."""
        self.embedding_cache = embedding_cache
        self.batcher = batcher
        self.morphemes = morphemes
        self.default_threshold = default_threshold
        self.fusion = fusion
        self.encoder: Encoder = batcher.encoder
        self._snapshot: CatalogSnapshot | None = None
        self._vectors: dict[str, np.ndarray] = {}
        self._terms: dict[str, list[str]] = {}
        self._lock = asyncio.Lock()
        self._clicks_checked = 0.0
        self._poller = Poller("catalog refresh", self.refresh, poll_s)
        self.progress = "loading"
        """What the current build is doing, for people waiting on it (``/readyz``)."""

    @property
    def snapshot(self) -> CatalogSnapshot:
        if self._snapshot is None:
            raise CatalogNotReady("the intent catalog is still loading")
        return self._snapshot

    @property
    def ready(self) -> bool:
        return self._snapshot is not None

    async def start(self) -> None:
        """Load in the background: the API answers (503 for intents) while the catalog embeds."""
        self._poller.start()

    async def close(self) -> None:
        await self._poller.close()

    async def refresh(self) -> bool:
        """Rebuild if the store moved on, or enough users' clicks arrived to refit the
        calibration; returns whether a new snapshot serves."""
        async with self._lock:
            version = await asyncio.to_thread(self.store.version)
            current = self._snapshot
            if (
                current
                and current.version == version
                and current.encoder is self.encoder
                and not await self._clicks_arrived(current)
            ):
                return False
            self._serve(await self._build(version, self.encoder, self._vectors))
            return True

    def _serve(self, snapshot: CatalogSnapshot) -> None:
        """From now on requests read ``snapshot``; the next poll checks its clicks at once."""
        self._snapshot, self._clicks_checked = snapshot, 0.0

    async def _clicks_arrived(self, current: CatalogSnapshot) -> bool:
        """Issue #27: whether ``refit_clicks`` clicks on the catalog's intents arrived since
        the serving snapshot's fit read them. Checked at most every ``CLICKS_CHECK_S`` (the
        first poll after a build checks at once); a store that cannot answer means no."""
        config = self.calibration
        if (
            config is None
            or self.clicks is None
            or min(config.refit_clicks, config.max_clicks) <= 0
        ):
            return False
        now = time.monotonic()
        if now < self._clicks_checked + CLICKS_CHECK_S:
            return False
        self._clicks_checked = now
        ids = [str(intent.id) for intent in current.intents]
        try:
            arrived = await asyncio.to_thread(self.clicks.clicks_since, current.click_mark, ids)
        except SQLAlchemyError as exc:
            log.warning("intent clicks unavailable, not refitting: %s", exc)
            return False
        if arrived >= config.refit_clicks:
            log.info("catalog v%s: %d new intent clicks, refitting", current.version, arrived)
            return True
        return False

    async def switch(self, encoder: Encoder) -> None:
        """Re-embed the whole catalog with ``encoder`` off to the side, then serve it.

        The model and its snapshot change in one step: a query keeps the snapshot (and so the
        model) it started with. On failure nothing changes.
        """
        async with self._lock:
            version = await asyncio.to_thread(self.store.version)
            vectors: dict[str, np.ndarray] = {}
            snapshot = await self._build(version, encoder, vectors)
            self.encoder, self._vectors = encoder, vectors
            self._serve(snapshot)

    async def _build(
        self, version: int, encoder: Encoder, vectors: dict[str, np.ndarray]
    ) -> CatalogSnapshot:
        """A snapshot of the store at ``version``; ``vectors`` caches ``encoder``'s embeddings."""
        started = time.perf_counter()
        intents = await asyncio.to_thread(self.store.list)
        catalog_texts = list(dict.fromkeys(t for i in intents for t in intent_texts(i)))
        # issue #27: the background queries are embedded (and cached) with the hints; an
        # empty catalog has nothing to calibrate, and its process need not queue them ahead
        # of its first requests
        background = list(background_queries()) if self.calibration and intents else []
        click_mark, clicked = await self._clicked(intents)
        texts = list(dict.fromkeys([*catalog_texts, *background, *(q for q, _ in clicked)]))
        missing = [t for t in texts if t not in vectors]
        cache = self.embedding_cache
        if cache is not None and missing:
            vectors.update(await asyncio.to_thread(cache.get, encoder, "query", missing))
            missing = [t for t in missing if t not in vectors]
        # one pass's worth at a time: a model switch re-embeds the whole catalog while the
        # process serves, and live queries must never queue behind more than one pass of it
        step = self.batcher.max_batch_size
        for start in range(0, len(missing), step):
            self.progress = f"embedded {start} of {len(missing)} texts ({len(texts)} in all)"
            chunk = missing[start : start + step]
            encoded = await self.batcher.submit(
                chunk, "query", deadline=time.monotonic() + 300, encoder=encoder
            )
            fresh = dict(zip(chunk, encoded.embeddings, strict=True))
            vectors.update(fresh)
            if cache is not None:
                await asyncio.to_thread(cache.put, encoder, "query", fresh)
        self.progress = f"analysing {len(texts)} texts"
        new_terms = [t for t in texts if t not in self._terms]
        if new_terms:
            batch = await asyncio.to_thread(self.morphemes.terms_batch, new_terms)
            self._terms.update(zip(new_terms, batch, strict=True))
        snapshot = await asyncio.to_thread(
            build_snapshot,
            version,
            encoder.ref,
            intents,
            vectors,
            self._terms,
            encoder.device,
            self.default_threshold,
            self.fusion,
            encoder,
        )
        snapshot.click_mark = click_mark
        if self.calibration is not None and background:  # issue #27, off the event loop
            self.progress = f"calibrating {snapshot.size} intents"
            await asyncio.to_thread(
                calibrate,
                snapshot,
                self.calibration,
                self._terms,
                np.stack([vectors[t] for t in background]),
                [self._terms[t] for t in background],
                embedded_clicks(snapshot, clicked, vectors, self._terms),
            )
        log.info(
            "catalog snapshot v%s (%s): %d intents, %d texts (%d embedded) in %.2fs",
            version,
            encoder.ref,
            snapshot.size,
            len(texts),
            len(missing),
            time.perf_counter() - started,
        )
        return snapshot

    async def _clicked(self, intents: list[Intent]) -> tuple[int, list[tuple[str, int]]]:
        """Issue #27: the click store's mark, then the recent clicks on these intents as
        distinct ``(query, intent id)``.

        Read when a snapshot is built; the catalog serves without them if they cannot be read.
        The mark is taken before the read, so no click is missed between them; it becomes the
        snapshot's only if the build succeeds.
        """
        config = self.calibration
        if config is None or self.clicks is None or not intents or config.max_clicks <= 0:
            return 0, []
        ids = [i.id for i in intents]
        try:
            mark = await asyncio.to_thread(self.clicks.click_mark)
            rows = await asyncio.to_thread(
                self.clicks.recent_clicks, [str(i) for i in ids], config.max_clicks
            )
        except SQLAlchemyError as exc:
            log.warning("intent clicks unavailable, calibrating without them: %s", exc)
            return 0, []
        return mark, intent_clicks(rows, ids)

    async def match(
        self,
        query: str,
        area: Area | None = None,
        top_k: int = 5,
        deadline: float | None = None,
        everything: bool = False,
        terms: Sequence[str] | None = None,
        snapshot: CatalogSnapshot | None = None,
    ) -> tuple[CatalogSnapshot, list[IntentScore], np.ndarray]:
        """Embed the query and score it in the same batched pass; also returns the embedding.

        ``terms``: the query's morphemes when the caller already has them (one Kiwi pass).
        ``snapshot``: the one the caller's request started with (default: the current one);
        the query is encoded by the model that snapshot was embedded with.
        """
        snap = snapshot or self.snapshot
        if terms is None:
            terms = self.morphemes.terms(query)
        ctx = MatchContext(snap.lexical_scores(terms), area, top_k, everything)
        encoded = await self.batcher.submit(
            [query], "query", deadline=deadline, post_step=snap, context=ctx, encoder=snap.encoder
        )
        assert encoded.extras is not None
        return snap, encoded.extras[0], encoded.embeddings[0]
