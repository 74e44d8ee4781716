"""`chatda eval --mode intents`: a corpus becomes a catalog, queries are matched against it.

Each corpus line becomes one intent: name = title, hints = the text itself (capped) plus each of
its sentences — the importer's rule, so a description paragraph yields both its gist and its
specific phrasings. Rankings are produced by the same batcher and snapshot scorer that serve
queries, with a window of queries in flight so they share model passes as concurrent requests
do (:mod:`chatda.evaluation.window`), each method ranked to the depth the metrics read
(:mod:`chatda.evaluation.intent_ranking`); ``latency_ms`` is measured on the first queries,
matched one at a time. The catalog's vectors come from, and go to, the data dir's embedding
cache (:mod:`chatda.catalog.embedding_cache`, the API's): embedding the catalog is the fixed
cost of every run, and a second run of one model over one corpus need not pay it again.
``catalog_embeddings`` in the JSON says how many texts were read and how many embedded.
"""

from __future__ import annotations

import asyncio
import functools
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatda.batching.batcher import DynamicBatcher
from chatda.catalog.calibration_fit import config_from_settings
from chatda.catalog.decision import decide
from chatda.catalog.embedding_cache import EmbeddingCache
from chatda.catalog.models import MAX_HINT_CHARS, MAX_HINTS, IntentIn
from chatda.catalog.service import CatalogService
from chatda.catalog.snapshot import Fusion
from chatda.catalog.store import CatalogStore
from chatda.db.engine import make_engine, upgrade
from chatda.evaluation.data import CorpusItem, EvalClick, EvalQuery
from chatda.evaluation.intent_ranking import MethodRanker, MethodRanks
from chatda.evaluation.metrics import latency_summary, summarise
from chatda.evaluation.open_set import OpenSetOutcome, open_set_report
from chatda.evaluation.window import LATENCY_SAMPLE, QUEUE_TIMEOUT_S, WINDOW_BATCHES, map_windowed
from chatda.feedback.events import Click, FeedbackRecord
from chatda.feedback.store import FeedbackStore
from chatda.models.encoder import Encoder
from chatda.settings import Settings
from chatda.text.morphemes import default_morphemes
from chatda.text.normalize import normalize_query
from chatda.text.sentences import split_sentences

METHODS = ("dense", "lexical", "fused")


def hints_from_text(text: str) -> list[str]:
    whole = normalize_query(text, MAX_HINT_CHARS).text
    hints = [whole] if whole else []
    for sentence in split_sentences(text):
        s = normalize_query(sentence, MAX_HINT_CHARS).text
        if s and s not in hints:
            hints.append(s)
    return hints[:MAX_HINTS]


def corpus_to_intents(corpus: list[CorpusItem]) -> list[IntentIn]:
    return [
        IntentIn(
            id=n,
            name=normalize_query(item.title, 200).text or item.id,
            hints=hints_from_text(item.text),
        )
        for n, item in enumerate(corpus, 1)
    ]


@dataclass(frozen=True)
class _Matched:
    """One query's outcome: corpus ids ranked by each method, and what serving would show."""

    ranked: dict[str, list[str]]
    shown: str | None
    """The best intent that passes the raw rule's threshold (the old decision), if any."""
    latency_ms: float
    outcome: OpenSetOutcome
    """The top intent, its raw score and confidence, and the served decision (issue #27)."""


async def _match(
    service: CatalogService,
    ranker: MethodRanker,
    ids: list[str],
    raw_threshold: float,
    query: EvalQuery,
) -> _Matched:
    """The API's path for one query (normalise, morphemes, the batched embed-and-score, as
    ``CatalogService.match``), scored by ``ranker`` so each method's ranking comes with it."""
    started = time.perf_counter()
    text = normalize_query(query.text, 1000).text
    snap = ranker.snapshot
    context = ranker.context(snap.lexical_scores(service.morphemes.terms(text)))
    encoded = await service.batcher.submit(
        [text], "query", post_step=ranker, context=context, encoder=snap.encoder
    )
    latency_ms = (time.perf_counter() - started) * 1000
    assert encoded.extras is not None
    ranks: MethodRanks = encoded.extras[0]

    def corpus_ids(indexes: list[int]) -> list[str]:
        return [ids[snap.intents[i].id - 1] for i in indexes]

    scores = ranks.served
    answer = decide(scores, snap.ambiguity_margin)
    # scores are best first, so only the top one can be the first to pass the raw threshold
    shown = scores[0].index if scores and scores[0].score >= raw_threshold else None
    return _Matched(
        ranked={
            "dense": corpus_ids(ranks.dense),
            "lexical": corpus_ids(ranks.lexical),
            "fused": corpus_ids(ranks.fused),
        },
        shown=corpus_ids([shown])[0] if shown is not None else None,
        latency_ms=latency_ms,
        outcome=OpenSetOutcome(
            top=corpus_ids(ranks.fused[:1])[0] if scores else None,
            raw=scores[0].score if scores else 0.0,
            confidence=scores[0].confidence if scores else None,
            decision=answer.decision,
            shown=corpus_ids([s.index for s in answer.intents]),
        ),
    )


def click_records(
    corpus: list[CorpusItem], intents: list[IntentIn], clicks: list[EvalClick]
) -> list[FeedbackRecord]:
    """The clicks as the API stores them: on the intent the clicked corpus item became
    (``intents``, from :func:`corpus_to_intents`), with the normalised query the server would
    have known."""
    intent_ids = {item.id: intent.id for item, intent in zip(corpus, intents, strict=True)}
    records = []
    for click in clicks:
        if click.clicked not in intent_ids:
            raise ValueError(f"a click names {click.clicked!r}, which is not in the corpus")
        event = Click(
            type="click",
            query_id=uuid.uuid4(),
            clicked_id=str(intent_ids[click.clicked]),
            position=1,
            kind="intent",
        )
        records.append(FeedbackRecord.accepted(event, normalize_query(click.text, 1000).text))
    return records


async def _run(
    encoder: Encoder,
    corpus: list[CorpusItem],
    queries: list[EvalQuery],
    settings: Settings,
    latency_sample: int,
    clicks: list[EvalClick],
) -> dict[str, Any]:
    threshold = settings.intent_threshold
    cache = EmbeddingCache.in_data_dir(settings.data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'eval.db'}")
        upgrade(engine)
        store = CatalogStore(engine)
        intents = corpus_to_intents(corpus)
        store.import_intents(intents)
        feedback = FeedbackStore(engine)
        feedback.save(click_records(corpus, intents, clicks))
        batcher = DynamicBatcher(
            encoder,
            settings.batch_max_size,
            settings.batch_max_tokens,
            queue_limit=1 << 20,
            default_timeout_s=QUEUE_TIMEOUT_S,
        )
        service = CatalogService(
            store,
            batcher,
            default_morphemes(),
            threshold,
            Fusion.from_settings(settings),
            calibration=config_from_settings(settings),
            embedding_cache=cache,
            clicks=feedback,
        )
        try:
            await service.refresh()
            ranker = MethodRanker(service.snapshot)
            calibrator = ranker.snapshot.calibrator
            ids = [item.id for item in corpus]
            matched = await map_windowed(
                functools.partial(_match, service, ranker, ids, threshold),
                queries,
                window=WINDOW_BATCHES * settings.batch_max_size,
                alone=latency_sample,
                desc="matching",
            )
        finally:
            await batcher.close()
            engine.dispose()
    relevants = [set(q.relevant) for q in queries]
    no_match = [m for m, q in zip(matched, queries, strict=True) if not q.relevant]
    answered_ok = sum(m.shown in q.relevant for m, q in zip(matched, queries, strict=True))
    rejected_ok = sum(m.shown is None for m in no_match)
    n_none = len(no_match)
    return {
        "mode": "intents",
        "n_queries": len(queries),
        "default_method": "fused",
        "methods": {m: summarise([r.ranked[m] for r in matched], relevants) for m in METHODS},
        "latency_ms": latency_summary([m.latency_ms for m in matched[:latency_sample]]),
        "thresholds": {
            "threshold": threshold,
            "answered_correctly": round(answered_ok / max(1, len(queries) - n_none), 4),
            "no_match_queries": n_none,
            "no_match_rejected": round(rejected_ok / n_none, 4) if n_none else None,
        },
        "catalog_embeddings": {"cached": cache.hits, "embedded": cache.misses},
        "decision": open_set_report(
            [m.outcome for m in matched],
            relevants,
            threshold,
            rule=settings.intent_decision if calibrator is not None else "raw",
            min_confidence=settings.intent_min_confidence,
            ambiguity_margin=settings.intent_ambiguity_margin,
            calibrator=calibrator.describe() if calibrator is not None else None,
        ),
    }


def evaluate_intents(
    encoder: Encoder,
    corpus: list[CorpusItem],
    queries: list[EvalQuery],
    settings: Settings,
    latency_sample: int = LATENCY_SAMPLE,
    clicks: list[EvalClick] | None = None,
) -> dict[str, Any]:
    """The intents evaluation with the serving settings (threshold, lexical weight, batching).
    ``clicks``: users' clicks the calibration reads, as the API's fit reads the SQL store's.

    The first ``latency_sample`` queries are matched one at a time and give ``latency_ms``;
    the rest go through the window (see :mod:`chatda.evaluation.window`).
    """
    return asyncio.run(_run(encoder, corpus, queries, settings, latency_sample, clicks or []))
