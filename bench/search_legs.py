"""The measurements behind docs/search.md: fusion quality on the demo eval set, leg latency.

    .venv/bin/python -m bench.search_legs [--repeat 30]

Builds the demo corpus (chatda/demo/articles.jsonl, 256-token chunks as ingest makes them) in
a fresh milvus-lite server, then reports

1. quality: each eval query's article ranking per leg (40 chunks, collapsed per article, as
   the default profile asks) and fused with ``chatda.search.fusion``: MRR@10, hit@1, hit@5;
2. latency of one query's document legs: dense then BM25, both concurrently on a thread pool
   (what the engine does), one ``hybrid_search``; and dense with nq=1 against nq=8.

Not a test: it takes a minute or two (embedding the corpus) and prints numbers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from pymilvus import AnnSearchRequest, MilvusClient, RRFRanker

from chatda.articles.message import ArticleMessage
from chatda.demo import articles_path, eval_dir
from chatda.evaluation.metrics import first_relevant_rank, recall_from_ranks, rr_from_ranks
from chatda.models.encoder import Encoder, TorchEncoder
from chatda.models.registry import ModelRegistry
from chatda.search import fusion
from chatda.search.articles import ArticleIndex
from chatda.search.hits import ArticleHit, collapse
from chatda.settings import Settings, get_settings
from chatda.storage.articles_schema import create_articles_collection, ensure_alias
from chatda.storage.milvus_server import MilvusLiteServer
from chatda.text.morphemes import default_morphemes
from ingest.pipeline import Pipeline
from ingest.sink import batch_rows

DEPTH = 40
Ranker = Callable[[dict[str, list[ArticleHit]]], list[str]]


def demo_rows(encoder: Encoder, settings: Settings) -> list[dict[str, Any]]:
    """The demo articles' rows, built by the ingest worker's own pipeline and row builder."""
    lines = articles_path().read_text(encoding="utf-8").splitlines()
    pipeline = Pipeline(
        encoder,
        default_morphemes(),
        settings.chunk_max_tokens,
        settings.chunk_overlap_sentences,
        settings.max_text_chars,
    )
    prepared = [pipeline.prepare(ArticleMessage.model_validate_json(line)) for line in lines]
    return batch_rows(prepared, pipeline.embed(prepared), encoder.ref)


def rrf(weights: dict[str, float]) -> Ranker:
    def rank(legs: dict[str, list[ArticleHit]]) -> list[str]:
        fused = fusion.rrf({leg: [a.post_id for a in hits] for leg, hits in legs.items()}, weights)
        return [doc for doc, _ in fusion.ranked(fused)]

    return rank


def linear(weights: dict[str, float], normalization: fusion.Normalization) -> Ranker:
    def rank(legs: dict[str, list[ArticleHit]]) -> list[str]:
        fused = fusion.weighted(
            {leg: {a.post_id: a.score for a in hits} for leg, hits in legs.items()},
            weights,
            normalization,
        )
        return [doc for doc, _ in fusion.ranked(fused)]

    return rank


RANKERS: dict[str, Ranker] = {
    "dense only": lambda legs: [a.post_id for a in legs["dense"]],
    "bm25 only": lambda legs: [a.post_id for a in legs["bm25"]],
    "rrf k=60 dense 1.0 bm25 1.0": rrf({"dense": 1.0, "bm25": 1.0}),
    "rrf k=60 dense 1.0 bm25 0.6 (default)": rrf({"dense": 1.0, "bm25": 0.6}),
    "rrf k=60 dense 0.6 bm25 1.0": rrf({"dense": 0.6, "bm25": 1.0}),
    "weighted minmax 0.5/0.5": linear({"dense": 0.5, "bm25": 0.5}, "minmax"),
    "weighted minmax 0.6/0.4 (deep)": linear({"dense": 0.6, "bm25": 0.4}, "minmax"),
    "weighted minmax 0.4/0.6": linear({"dense": 0.4, "bm25": 0.6}, "minmax"),
    "weighted max 0.6/0.4": linear({"dense": 0.6, "bm25": 0.4}, "max"),
}


def quality(legs_per_query: list[tuple[set[str], dict[str, list[ArticleHit]]]]) -> None:
    print(f"\nquality over {len(legs_per_query)} queries (MRR@10, hit@1, hit@5)")
    for name, ranker in RANKERS.items():
        ranks = np.array([first_relevant_rank(ranker(legs), rel) for rel, legs in legs_per_query])
        mrr, hit1, hit5 = (
            float(np.mean(rr_from_ranks(ranks, 10))),
            float(np.mean(recall_from_ranks(ranks, 1))),
            float(np.mean(recall_from_ranks(ranks, 5))),
        )
        print(f"  {name:40s} {mrr:.3f}  {hit1:.2f}  {hit5:.2f}")


def timed(label: str, work: Callable[[int], Any], n: int, repeat: int) -> None:
    work(0)  # warm-up
    samples = []
    for i in range(repeat):
        started = time.perf_counter()
        work(i % n)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    print(f"  {label:44s} p50 {statistics.median(samples):6.1f} ms  p95 {p95:6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    settings = get_settings()
    encoder = TorchEncoder(ModelRegistry(settings.models_dir).get(settings.model_name), "cpu")
    morphemes = default_morphemes()
    started = time.perf_counter()
    rows = demo_rows(encoder, settings)
    print(f"{len(rows)} chunks embedded in {time.perf_counter() - started:.0f}s")
    queries = [
        json.loads(line)
        for line in (eval_dir() / "articles_queries.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    vectors = encoder.encode([q["text"] for q in queries], "query")
    terms = [morphemes.joined(q["text"]) for q in queries]
    with tempfile.TemporaryDirectory() as tmp, MilvusLiteServer(Path(tmp)) as server:
        client = MilvusClient(uri=server.uri)
        name = f"articles__bench_{uuid.uuid4().hex[:6]}__20260101T000000"
        create_articles_collection(client, name, encoder.ref)
        client.insert(name, rows)
        ensure_alias(client, "articles", name)
        index = ArticleIndex(server.uri, Path(tmp), "articles")
        assert index.connect()

        def dense(i: int) -> list[Any]:
            return index.dense(vectors[i].tolist(), DEPTH, "", {}, 5.0)

        def bm25(i: int) -> list[Any]:
            return index.bm25(terms[i], DEPTH, "", {}, 5.0)

        quality(
            [
                (set(q["relevant"]), {"dense": collapse(dense(i)), "bm25": collapse(bm25(i))})
                for i, q in enumerate(queries)
            ]
        )

        pool = ThreadPoolExecutor(8)

        def concurrent(i: int) -> None:
            both = [pool.submit(dense, i), pool.submit(bm25, i)]
            for future in both:
                future.result()

        def hybrid(i: int) -> None:
            client.hybrid_search(
                "articles",
                [
                    AnnSearchRequest([vectors[i].tolist()], "dense", {"metric_type": "IP"}, DEPTH),
                    AnnSearchRequest([terms[i]], "sparse", {"metric_type": "BM25"}, DEPTH),
                ],
                RRFRanker(60),
                limit=DEPTH,
                output_fields=["post_id", "chunk_no", "title", "text"],
            )

        def dense_batch(i: int) -> None:
            batch = [vectors[(i + j) % len(queries)].tolist() for j in range(8)]
            client.search(
                "articles",
                data=batch,
                anns_field="dense",
                limit=DEPTH,
                output_fields=["post_id", "chunk_no", "title", "text"],
                search_params={"metric_type": "IP"},
            )

        n = len(queries)
        print(f"\nlatency of the document legs, {args.repeat} runs each, depth {DEPTH}")
        timed("dense alone", dense, n, args.repeat)
        timed("bm25 alone", bm25, n, args.repeat)
        timed("dense then bm25 (sequential)", lambda i: (dense(i), bm25(i)), n, args.repeat)
        timed("dense + bm25 concurrently (the engine)", concurrent, n, args.repeat)
        timed("one hybrid_search (RRF, no per-leg scores)", hybrid, n, args.repeat)
        timed("dense nq=8 in one request (per 8 queries)", dense_batch, n, args.repeat)
        pool.shutdown()
        index.close()
        client.close()


if __name__ == "__main__":
    main()
