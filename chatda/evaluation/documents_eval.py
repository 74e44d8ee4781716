"""`chatda eval --mode documents`: the real path, end to end, on a labelled corpus.

Both serving paths are measured: the in-memory article tier (what an API process serves when
the corpus fits its budget; ``methods`` reports it then, ``path`` says which) and Milvus; each
path's numbers are under ``by_path``.

The corpus is indexed as articles by the real ingest path, and each query runs the search legs
the router runs (dense over the query embedding, BM25 over Kiwi morphemes) and is fused the way
every profile fuses. Queries are embedded through the dynamic batcher with a window of them in
flight (:mod:`chatda.evaluation.window`), and both legs of each run concurrently, as the router
runs them. Each method is ranked separately so a fusion that loses to a single leg shows.

Indexing is the caller's (``IndexCorpus``): it takes a broker, Milvus and an ingest worker
process, and the library starts no process. ``chatda eval`` passes ``cli.eval_index``, which
publishes through Kafka to a worker of its own under a private topic, group and alias.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chatda.articles.message import ArticleMessage
from chatda.batching.batcher import DynamicBatcher
from chatda.evaluation.data import CorpusItem, EvalQuery
from chatda.evaluation.metrics import latency_summary, summarise
from chatda.evaluation.window import LATENCY_SAMPLE, QUEUE_TIMEOUT_S, WINDOW_BATCHES, map_windowed
from chatda.models.encoder import Encoder
from chatda.search.articles import ArticleIndex
from chatda.search.hits import ArticleHit, collapse
from chatda.search.profiles import DOCUMENT_LEGS, Profile, SourceName, load_profiles
from chatda.search.serving_pass import PassContext, ServingPass
from chatda.search.tier.tier import ArticleTier
from chatda.search.tier.view import DocumentQuery, TierView
from chatda.settings import Settings
from chatda.storage.index_models import ServedIndex, served_index
from chatda.text.morphemes import default_morphemes
from chatda.text.normalize import normalize_query

DEPTH = 100
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

IndexCorpus = Callable[[list[ArticleMessage]], AbstractContextManager[ArticleIndex]]
"""Indexes the corpus articles where nothing else reads and yields a connected index over them;
leaving the context releases what indexing took (processes, temporary files)."""


def _post_ids(corpus: list[CorpusItem]) -> list[str]:
    """Corpus ids as article ids: kept when valid post ids, else a stable stand-in."""
    return [item.id if _SAFE_ID.match(item.id) else f"doc-{n}" for n, item in enumerate(corpus)]


def _messages(corpus: list[CorpusItem], post_ids: list[str]) -> list[ArticleMessage]:
    now = datetime.now(UTC)
    return [
        ArticleMessage(
            post_id=post_id,
            title=item.title or item.id,
            body=item.text,
            published_at=now,
            updated_at=now,
        )
        for item, post_id in zip(corpus, post_ids, strict=True)
    ]


def _fused(profile: Profile, legs: dict[SourceName, list[ArticleHit]]) -> list[str]:
    used = {leg: hits for leg, hits in legs.items() if leg in profile.sources}
    return [post_id for post_id, _ in profile.fuse(used)]


@dataclass(frozen=True)
class _Searched:
    """One query's document legs (collapsed per article), its served ranking, its latency."""

    legs: dict[SourceName, list[ArticleHit]]
    served: list[str]
    latency_ms: float


async def _search_all(
    encoder: Encoder,
    index: ArticleIndex,
    profile: Profile,
    queries: list[EvalQuery],
    settings: Settings,
    latency_sample: int,
    view: TierView | None,
) -> list[_Searched]:
    """Every query as the router runs it, fused by the requested profile, with a window of
    queries in flight so embeddings share model passes and searches overlap. With a tier
    ``view``: both legs scored in the embedding pass, as the API does when its tier holds the
    collection; without: embedded through the dynamic batcher, then both Milvus legs
    concurrently on threads (pymilvus blocks)."""
    morphemes = default_morphemes()
    batcher = DynamicBatcher(
        encoder,
        settings.batch_max_size,
        settings.batch_max_tokens,
        queue_limit=1 << 20,
        default_timeout_s=QUEUE_TIMEOUT_S,
    )

    step = ServingPass(None, view)

    async def search(query: EvalQuery) -> _Searched:
        text = normalize_query(query.text, 1000).text
        started = time.perf_counter()
        if view is not None:
            terms = tuple(morphemes.terms(text))
            encoded = await batcher.submit(
                [text],
                "query",
                post_step=step,
                context=PassContext(None, DocumentQuery(terms, DEPTH, DEPTH)),
            )
            assert encoded.extras is not None
            found = encoded.extras[0].documents
            dense, bm25 = found.dense, found.bm25
        else:
            vector = (await batcher.encode([text], "query"))[0]
            dense, bm25 = await asyncio.gather(
                asyncio.to_thread(index.dense, vector, DEPTH, "", {}, 30.0),
                asyncio.to_thread(index.bm25, morphemes.joined(text), DEPTH, "", {}, 30.0),
            )
        legs = {SourceName.DENSE: collapse(dense), SourceName.BM25: collapse(bm25)}
        served = _fused(profile, legs)
        return _Searched(legs, served, (time.perf_counter() - started) * 1000)

    try:
        return await map_windowed(
            search,
            queries,
            window=WINDOW_BATCHES * settings.batch_max_size,
            alone=latency_sample,
            desc="searching",
        )
    finally:
        await batcher.close()


def evaluate_documents(
    encoder: Encoder,
    corpus: list[CorpusItem],
    queries: list[EvalQuery],
    profile_name: str,
    settings: Settings,
    index_corpus: IndexCorpus,
    latency_sample: int = LATENCY_SAMPLE,
) -> dict[str, Any]:
    """The documents evaluation over the corpus ``index_corpus`` indexes; the first
    ``latency_sample`` queries run one at a time and give ``latency_ms``, the rest go through
    the window (see :mod:`chatda.evaluation.window`)."""
    profiles = load_profiles(settings.profiles, settings.profiles_file)
    if profile_name not in profiles:
        raise ValueError(f"unknown profile {profile_name!r}; known: {sorted(profiles)}")
    fused_profiles = {
        name: p for name, p in profiles.items() if any(s in DOCUMENT_LEGS for s in p.sources)
    }
    post_ids = _post_ids(corpus)
    corpus_id = dict(zip(post_ids, (c.id for c in corpus), strict=True))

    equal = Profile.model_validate(
        {
            "budget_ms": 1000,
            "sources": ["dense", "bm25"],
            "fusion": {"method": "rrf", "k": 60, "weights": {"dense": 1.0, "bm25": 1.0}},
        }
    )
    relevants = [set(q.relevant) for q in queries]

    def report(searched: list[_Searched]) -> tuple[dict[str, Any], dict[str, float]]:
        rankings: dict[str, list[list[str]]] = {
            "bm25": [[a.post_id for a in s.legs[SourceName.BM25]] for s in searched],
            "dense": [[a.post_id for a in s.legs[SourceName.DENSE]] for s in searched],
            "rrf_equal": [_fused(equal, s.legs) for s in searched],
            **{
                name: [
                    s.served if name == profile_name else _fused(profile, s.legs) for s in searched
                ]
                for name, profile in fused_profiles.items()
            },
        }
        methods = {
            name: summarise([[corpus_id[p] for p in r] for r in ranked], relevants)
            for name, ranked in rankings.items()
        }
        return methods, latency_summary([s.latency_ms for s in searched[:latency_sample]])

    by_path: dict[str, tuple[dict[str, Any], dict[str, float]]] = {}
    with index_corpus(_messages(corpus, post_ids)) as index:
        view = _tier_view(index, encoder, settings)
        for path, held in (("memory", view), ("milvus", None)):
            if path == "memory" and held is None:
                continue
            searched = asyncio.run(
                _search_all(
                    encoder, index, profiles[profile_name], queries, settings, latency_sample, held
                )
            )
            by_path[path] = report(searched)
    # the serving path: the tier when it holds the corpus, as the API's would
    served = "memory" if "memory" in by_path else "milvus"
    methods, latency = by_path[served]
    return {
        "mode": "documents",
        "n_queries": len(queries),
        "default_method": profile_name if profile_name in fused_profiles else "dense",
        "methods": methods,
        "latency_ms": latency,
        "corpus": len(corpus),
        "profiles": {name: p.fusion.model_dump() for name, p in fused_profiles.items()},
        "path": served,
        "by_path": {path: {"methods": m, "latency_ms": lat} for path, (m, lat) in by_path.items()},
    }


def _tier_view(index: ArticleIndex, encoder: Encoder, settings: Settings) -> TierView | None:
    """The corpus held as an API process's article tier would hold it; None when the tier is
    off or the corpus does not fit its budget (the API would search Milvus then too)."""
    served = served_index(index.client, index.alias)
    if served is None or settings.article_tier_max_bytes <= 0:
        return None
    tier = ArticleTier(index, settings.article_tier_max_bytes, encoder.device, encoder.dim)
    tier.load(ServedIndex(served.collection, encoder.ref))
    return tier.view_for(encoder.ref)
