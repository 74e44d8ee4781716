"""One search: every source of the profile, concurrently, against one deadline, then fusion.

The query is embedded once, by the catalog's match (intents are scored in the same batched
model pass), and that embedding feeds the dense leg; the BM25 leg and suggestions need no
embedding and start at once. Every source is awaited with only the time left before the
request's deadline; one that misses it, fails, or cannot run is reported with its status
("timeout", "error", "skipped") and left out, and the answer is marked partial — a slow or
broken source never turns into a 5xx or a late answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

import numpy as np

from chatda.batching.batcher import DynamicBatcher
from chatda.batching.errors import Overloaded
from chatda.catalog.decision import Decision, decide
from chatda.catalog.models import Area
from chatda.catalog.service import CatalogNotReady, CatalogService
from chatda.catalog.snapshot import CatalogSnapshot, IntentScore, MatchContext
from chatda.models.encoder import Encoder
from chatda.search.articles import ArticleIndex, MilvusUnavailable
from chatda.search.highlight import Span, find_spans, query_needles, snippet
from chatda.search.hits import ArticleHit, ChunkHit, collapse
from chatda.search.legs import Leg, LegQuery
from chatda.search.profiles import DOCUMENT_LEGS, Profile, SourceName
from chatda.search.recent import RecentQueries
from chatda.search.request import SearchRequest
from chatda.search.serving_pass import PassContext, PassResult, ServingPasses
from chatda.search.suggestions import SuggestService
from chatda.search.tier.tier import ArticleTier
from chatda.search.tier.view import DocumentHits, DocumentQuery, TierView
from chatda.suggest.entries import Suggestion
from chatda.text.morphemes import Morphemes

log = logging.getLogger(__name__)

Status = Literal["ok", "skipped", "timeout", "error"]
Path = Literal["memory", "milvus"]
T = TypeVar("T")

EMBEDDED_SOURCES = frozenset({SourceName.INTENTS, SourceName.DENSE})
"""The sources that need the query embedding, i.e. a place in the encoder's queue."""


class UnknownProfile(LookupError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown profile {name!r}; known profiles: {', '.join(known)}")


@dataclass(frozen=True)
class SourceReport:
    status: Status
    ms: float
    """From the start of the request to when the source finished or was dropped."""
    candidates: int = 0
    message: str | None = None
    path: Path | None = None
    """Which store served a document leg: the in-memory tier or Milvus."""


@dataclass(frozen=True)
class RankedArticle:
    rank: int
    post_id: str
    score: float
    chunk: ChunkHit
    snippet: str
    highlights: list[Span]
    legs: dict[SourceName, ArticleHit]


@dataclass(frozen=True)
class SearchOutcome:
    query_id: uuid.UUID
    normalized: str
    profile: str
    budget_ms: int
    snapshot: CatalogSnapshot | None
    intents: list[IntentScore]
    suggestions: list[Suggestion]
    documents: list[RankedArticle]
    sources: dict[SourceName, SourceReport]
    took_ms: float
    fusion_ms: float

    @property
    def partial(self) -> bool:
        return any(report.status != "ok" for report in self.sources.values())


@dataclass(frozen=True)
class _Embedded:
    vector: np.ndarray
    snapshot: CatalogSnapshot | None
    scores: list[IntentScore]
    documents: DocumentHits | None = None


@dataclass(frozen=True)
class _Documents:
    """Where a request's document legs are served: a tier view (with the query it scores),
    or Milvus when ``view`` is None."""

    view: TierView | None
    query: DocumentQuery | None

    @property
    def path(self) -> Path:
        return "memory" if self.view is not None else "milvus"


class _Clock:
    def __init__(self, started: float, deadline: float) -> None:
        self.started = started
        self.deadline = deadline

    def ms(self) -> float:
        return round((time.monotonic() - self.started) * 1000, 2)

    async def run(self, work: Awaitable[T]) -> tuple[SourceReport, T | None]:
        """Await ``work`` until the deadline; never raises, reports what happened instead."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            if asyncio.iscoroutine(work):
                work.close()
            return SourceReport("skipped", self.ms(), message="no budget left"), None
        try:
            value = await asyncio.wait_for(work, remaining)
        except TimeoutError:  # includes the batcher's DeadlineExceeded
            return SourceReport("timeout", self.ms(), message="missed the deadline"), None
        except (MilvusUnavailable, CatalogNotReady, Overloaded) as exc:
            return SourceReport("skipped", self.ms(), message=str(exc)), None
        except Exception as exc:
            log.warning("search source failed: %r", exc)
            return SourceReport("error", self.ms(), message=type(exc).__name__), None
        size = len(value) if isinstance(value, list) else 0
        return SourceReport("ok", self.ms(), candidates=size), value


def _settle(task: asyncio.Task[Any] | None) -> None:
    """Cancel an unfinished shared task, or mark its exception as seen."""
    if task is None:
        return
    if not task.done():
        task.cancel()
    elif not task.cancelled():
        task.exception()


class SearchEngine:
    def __init__(
        self,
        profiles: Mapping[str, Profile],
        default_profile: str,
        catalog: CatalogService,
        batcher: DynamicBatcher,
        index: ArticleIndex,
        legs: Mapping[SourceName, Leg],
        suggest: SuggestService,
        morphemes: Morphemes,
        recent: RecentQueries,
        snippet_chars: int,
        tier: ArticleTier | None = None,
    ) -> None:
        if default_profile not in profiles:
            raise ValueError(f"default profile {default_profile!r} is not configured")
        self.profiles = dict(profiles)
        self.default_profile = default_profile
        self.catalog = catalog
        self.batcher = batcher
        self.index = index
        self.legs = dict(legs)
        self.suggest = suggest
        self.morphemes = morphemes
        self.recent = recent
        self.snippet_chars = snippet_chars
        self.tier = tier
        self.passes = ServingPasses()

    def profile(self, name: str | None) -> tuple[str, Profile]:
        name = name or self.default_profile
        if name not in self.profiles:
            raise UnknownProfile(name, sorted(self.profiles))
        return name, self.profiles[name]

    async def search(self, request: SearchRequest) -> SearchOutcome:
        started = time.monotonic()
        name, profile = self.profile(request.profile)
        budget_ms = min(request.budget_ms or profile.budget_ms, profile.budget_ms)
        clock = _Clock(started, started + budget_ms / 1000)
        text = request.normalized
        wanted = set(profile.sources)
        # one model for the whole request: the catalog snapshot's, the query embedding's and
        # the searched collection's, even if the serving model switches meanwhile
        snap = self.catalog.snapshot if self.catalog.ready else None
        model = (snap.encoder if snap and snap.encoder else None) or self.batcher.encoder
        refused = self._admit(wanted, clock)
        # one Kiwi pass serves intent lexical scores, the BM25 leg and the highlights
        terms = self.morphemes.terms(text)
        documents = self._documents(request, profile, wanted, terms, model.ref)
        embedding: asyncio.Task[_Embedded] | None = None
        if wanted & EMBEDDED_SOURCES and refused is None:
            embedding = asyncio.ensure_future(
                self._embed(
                    text,
                    terms,
                    request.areas,
                    profile.depth_of(SourceName.INTENTS),
                    clock,
                    snap,
                    model,
                    documents,
                )
            )
        jobs: dict[SourceName, Awaitable[Any]] = {}
        if SourceName.SUGGEST in wanted:
            jobs[SourceName.SUGGEST] = self._suggestions(text, profile)
        if SourceName.INTENTS in wanted:
            jobs[SourceName.INTENTS] = (
                _fail(refused)
                if embedding is None
                else self._intents(embedding, request.areas, profile)
            )
        joined = " ".join(terms)
        for leg in DOCUMENT_LEGS:
            if leg in wanted:
                jobs[leg] = (
                    _fail(refused)
                    if refused is not None and leg in EMBEDDED_SOURCES
                    else self._leg(
                        leg, request, profile, joined, embedding, clock, model.ref, documents
                    )
                )
        try:
            done = await asyncio.gather(*(clock.run(job) for job in jobs.values()))
        finally:
            _settle(embedding)
        reports = {
            source: replace(report, path=documents.path) if source in DOCUMENT_LEGS else report
            for source, (report, _) in zip(jobs, done, strict=True)
        }
        values = {source: value for source, (_, value) in zip(jobs, done, strict=True)}
        fusion_started = time.monotonic()
        ranked = self._fuse(text, terms, profile, values, request.top_k)
        fusion_ms = round((time.monotonic() - fusion_started) * 1000, 2)
        query_id = uuid.uuid4()
        self.recent.add(query_id, text)
        embedded = embedding.result() if embedding and _succeeded(embedding) else None
        return SearchOutcome(
            query_id=query_id,
            normalized=text,
            profile=name,
            budget_ms=budget_ms,
            snapshot=embedded.snapshot if embedded else None,
            intents=values.get(SourceName.INTENTS) or [],
            suggestions=values.get(SourceName.SUGGEST) or [],
            documents=ranked,
            sources=reports,
            took_ms=clock.ms(),
            fusion_ms=fusion_ms,
        )

    def _admit(self, wanted: set[SourceName], clock: _Clock) -> Overloaded | None:
        """Ask the encoder, before any work starts, whether the query embedding can be had in
        the budget. If not, a profile that has other sources answers without it (those
        sources are ``skipped``, the answer partial and on time, as for any source that cannot
        run); one whose every source needs it has nothing to answer with: ``Overloaded`` (429
        with Retry-After), so the client backs off instead of reading an empty page."""
        if not wanted & EMBEDDED_SOURCES:
            return None
        try:
            self.batcher.admit(1, clock.deadline)
        except Overloaded as exc:
            if wanted <= EMBEDDED_SOURCES:
                raise
            return exc
        return None

    def _documents(
        self,
        request: SearchRequest,
        profile: Profile,
        wanted: set[SourceName],
        terms: list[str],
        model_ref: str,
    ) -> _Documents:
        """The tier serves the document legs when it holds the collection of the request's
        model and the profile allows it; otherwise (loading, over budget, off) Milvus does."""
        legs = wanted.intersection(DOCUMENT_LEGS)
        if not legs or self.tier is None or profile.documents == "milvus":
            return _Documents(None, None)
        view = self.tier.view_for(model_ref)
        if view is None:
            return _Documents(None, None)
        f = request.filters
        query = DocumentQuery(
            tuple(terms),
            profile.depth_of(SourceName.DENSE) if SourceName.DENSE in legs else 0,
            profile.depth_of(SourceName.BM25) if SourceName.BM25 in legs else 0,
            tuple(f.category),
            tuple(f.series),
            tuple(f.tags),
            int(f.published_from.timestamp()) if f.published_from else None,
            int(f.published_to.timestamp()) if f.published_to else None,
        )
        return _Documents(view, query)

    async def _embed(
        self,
        text: str,
        terms: list[str],
        areas: list[Area],
        depth: int,
        clock: _Clock,
        snap: CatalogSnapshot | None,
        model: Encoder,
        documents: _Documents,
    ) -> _Embedded:
        """The one embedding of the query, in one pass with the intents (catalog loaded) and
        the article chunks (tier holding the model's collection)."""
        if snap is None and documents.view is None:
            encoded = await self.batcher.submit(
                [text], "query", deadline=clock.deadline, encoder=model
            )
            return _Embedded(encoded.embeddings[0], None, [])
        intents = None
        if snap is not None:
            single = areas[0] if len(areas) == 1 else None
            # several areas: match across all and keep the wanted ones, so look a little deeper
            top_k = depth if single else depth * len(Area)
            intents = MatchContext(snap.lexical_scores(terms), single, top_k)
        encoded = await self.batcher.submit(
            [text],
            "query",
            deadline=clock.deadline,
            post_step=self.passes.of(snap, documents.view),
            context=PassContext(intents, documents.query),
            encoder=model,
        )
        assert encoded.extras is not None
        result: PassResult = encoded.extras[0]
        return _Embedded(encoded.embeddings[0], snap, result.intents, result.documents)

    async def _intents(
        self, embedding: asyncio.Task[_Embedded], areas: list[Area], profile: Profile
    ) -> list[IntentScore]:
        embedded = await asyncio.shield(embedding)
        snap = embedded.snapshot
        if snap is None:
            raise CatalogNotReady("the intent catalog is still loading")
        wanted = set(areas)
        visible = [s for s in embedded.scores if wanted & set(snap.intents[s.index].areas)]
        # issue #27: passed, ambiguous (the top two) or no match, on the calibrated confidence
        answer = decide(visible, snap.ambiguity_margin, profile.thresholds.intent_margin)
        depth = profile.depth_of(SourceName.INTENTS)
        return answer.intents[: max(2, depth) if answer.decision is Decision.AMBIGUOUS else depth]

    async def _suggestions(self, text: str, profile: Profile) -> list[Suggestion]:
        return self.suggest.suggest(text, profile.depth_of(SourceName.SUGGEST))

    async def _leg(
        self,
        name: SourceName,
        request: SearchRequest,
        profile: Profile,
        terms: str,
        embedding: asyncio.Task[_Embedded] | None,
        clock: _Clock,
        model_ref: str,
        documents: _Documents,
    ) -> list[ArticleHit]:
        if documents.view is not None:
            hits = await self._from_tier(name, embedding, documents)
        else:
            expression, params = request.filters.expression(self.index.templated_filters)
            vector = None
            if name is SourceName.DENSE and embedding is not None:
                vector = (await asyncio.shield(embedding)).vector
            query = LegQuery(
                terms, vector, profile.depth_of(name), clock.deadline, model_ref, expression, params
            )
            hits = await self.legs[name].search(query)
        floor = (
            profile.thresholds.dense_min
            if name is SourceName.DENSE
            else profile.thresholds.bm25_min
        )
        if floor is not None:
            hits = [hit for hit in hits if hit.score >= floor]
        return collapse(hits)

    @staticmethod
    async def _from_tier(
        name: SourceName, embedding: asyncio.Task[_Embedded] | None, documents: _Documents
    ) -> list[ChunkHit]:
        """The leg's chunks as the embedding pass scored them; BM25 without a pass (the
        encoder refused the query, or the profile embeds nothing) is scored here instead."""
        view, query = documents.view, documents.query
        assert view is not None and query is not None
        if embedding is not None:
            found = (await asyncio.shield(embedding)).documents
            assert found is not None
            return found.dense if name is SourceName.DENSE else found.bm25
        if name is SourceName.DENSE:
            raise ValueError("the dense leg needs the query embedding")
        return await asyncio.to_thread(view.bm25, query, view.mask(query))

    def _fuse(
        self,
        text: str,
        terms: list[str],
        profile: Profile,
        values: Mapping[SourceName, Any],
        top_k: int,
    ) -> list[RankedArticle]:
        legs: dict[SourceName, list[ArticleHit]] = {
            leg: values[leg] for leg in DOCUMENT_LEGS if values.get(leg)
        }
        if not legs:
            return []
        weights = {leg.value: profile.weight_of(leg) for leg in legs}
        by_leg = {leg: {a.post_id: a for a in hits} for leg, hits in legs.items()}
        needles = query_needles(text, self.morphemes, terms)
        documents = []
        for rank, (post_id, score) in enumerate(profile.fuse(legs)[:top_k], start=1):
            places = {leg: found[post_id] for leg, found in by_leg.items() if post_id in found}
            # the snippet comes from the chunk the article ranked best with
            best = min(places.items(), key=lambda item: (item[1].rank, -weights[item[0].value]))
            chunk = best[1].chunk
            window, spans = snippet(chunk.text, find_spans(chunk.text, needles), self.snippet_chars)
            documents.append(RankedArticle(rank, post_id, score, chunk, window, spans, places))
        return documents


async def _fail(exc: Exception | None) -> Any:
    """A source that cannot run, reported by ``_Clock.run`` like any other failure."""
    assert exc is not None
    raise exc


def _succeeded(task: asyncio.Task[Any]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None
