"""`chatda eval --mode intents`: a corpus becomes a catalog, queries are matched against it.

Each corpus line becomes one intent: name = title, hints = the text itself (capped) plus each of
its sentences — the importer's rule, so a description paragraph yields both its gist and its
specific phrasings. Rankings are produced by the same snapshot scorer that serves queries.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from chatda.batching.batcher import DynamicBatcher
from chatda.catalog.models import MAX_HINT_CHARS, MAX_HINTS, IntentIn
from chatda.catalog.service import CatalogService
from chatda.catalog.store import CatalogStore
from chatda.db.engine import make_engine, upgrade
from chatda.evaluation.data import CorpusItem, EvalQuery
from chatda.evaluation.metrics import latency_summary, summarise
from chatda.models.encoder import Encoder
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


async def _run(
    encoder: Encoder,
    corpus: list[CorpusItem],
    queries: list[EvalQuery],
    threshold: float,
    lexical_weight: float,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'eval.db'}")
        upgrade(engine)
        store = CatalogStore(engine)
        store.import_intents(corpus_to_intents(corpus))
        batcher = DynamicBatcher(encoder, queue_limit=1 << 20)
        service = CatalogService(store, batcher, default_morphemes(), threshold, lexical_weight)
        try:
            await service.refresh()
            ids = [item.id for item in corpus]
            rankings: dict[str, list[list[str]]] = {m: [] for m in METHODS}
            latencies: list[float] = []
            rejected_ok = answered_ok = 0
            for q in queries:
                started = time.perf_counter()
                snap, scores, _ = await service.match(
                    normalize_query(q.text, 1000).text, everything=True
                )
                latencies.append((time.perf_counter() - started) * 1000)
                per = {
                    "dense": sorted(scores, key=lambda s: -s.dense),
                    "lexical": sorted(scores, key=lambda s: -s.lexical),
                    "fused": scores,
                }
                for method, ranked in per.items():
                    rankings[method].append([ids[snap.intents[s.index].id - 1] for s in ranked])
                passing = [s for s in scores if s.passed]
                top = ids[snap.intents[passing[0].index].id - 1] if passing else None
                if not q.relevant:
                    rejected_ok += top is None
                else:
                    answered_ok += top in q.relevant
        finally:
            await batcher.close()
            engine.dispose()
    relevants = [set(q.relevant) for q in queries]
    n_none = sum(1 for q in queries if not q.relevant)
    return {
        "mode": "intents",
        "n_queries": len(queries),
        "default_method": "fused",
        "methods": {m: summarise(rankings[m], relevants) for m in METHODS},
        "latency_ms": latency_summary(latencies),
        "thresholds": {
            "threshold": threshold,
            "answered_correctly": round(answered_ok / max(1, len(queries) - n_none), 4),
            "no_match_queries": n_none,
            "no_match_rejected": round(rejected_ok / n_none, 4) if n_none else None,
        },
    }


def evaluate_intents(
    encoder: Encoder,
    corpus: list[CorpusItem],
    queries: list[EvalQuery],
    threshold: float,
    lexical_weight: float,
) -> dict[str, Any]:
    return asyncio.run(_run(encoder, corpus, queries, threshold, lexical_weight))
