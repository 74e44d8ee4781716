"""End-to-end ingest: throughput next to raw embedding, and publish-to-searchable latency.

Run: .venv/bin/python -m bench.ingest_bench [--articles N] [--rate R] [--duration S]

Starts its own Tansu broker and milvus-lite server, loads the serving model, and runs one
ingest worker on a thread of this process:

1. Throughput: N full-length demo articles are published first, then the worker drains them;
   its time runs from the first batch to the last commit. The same chunk texts are embedded
   with ``Encoder.encode`` alone before and after (mean of the two), so the ratio shows what
   the pipeline (Kafka, chunking, Kiwi, Milvus, commits) costs on top of the model. Target:
   pipeline >= 80% of raw.
2. Latency: articles are published at a steady rate for a while; each one's latency is the
   worker's own measurement, Kafka record timestamp to Milvus write acknowledged.

Prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import torch
from pymilvus import MilvusClient

from chatda.articles.message import ArticleMessage
from chatda.articles.progress import wait_until_indexed
from chatda.articles.publisher import Publisher
from chatda.broker.tansu import TansuBroker
from chatda.demo import articles_path
from chatda.models.encoder import Encoder, TorchEncoder
from chatda.models.registry import ModelRegistry
from chatda.settings import get_settings
from chatda.storage.milvus_server import MilvusLiteServer
from chatda.text.morphemes import default_morphemes
from ingest.config import WorkerConfig
from ingest.pipeline import Pipeline
from ingest.worker import IngestWorker

TOPIC, GROUP, ALIAS = "bench-articles", "bench-ingest", "bench_articles"
# Each lag check builds Kafka clients in this process; checking rarely keeps that work off the
# CPU the worker is measured on (the worker's own clock decides the numbers, not this poll).
_WAIT_POLL_S = 2.0


def demo_articles(count: int, prefix: str) -> list[ArticleMessage]:
    """``count`` full-length demo articles under fresh post ids (the demo set, repeated)."""
    demo = [json.loads(line) for line in articles_path().read_text(encoding="utf-8").splitlines()]
    return [
        ArticleMessage.model_validate(
            {**demo[i % len(demo)], "post_id": f"{prefix}-{i:05d}-{demo[i % len(demo)]['post_id']}"}
        )
        for i in range(count)
    ]


def raw_embedding_seconds(encoder: Encoder, texts: list[str]) -> float:
    started = time.perf_counter()
    encoder.encode(texts, "passage")
    return time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=150, help="throughput phase articles")
    parser.add_argument("--rate", type=float, default=5.0, help="latency phase articles/s")
    parser.add_argument("--duration", type=float, default=60.0, help="latency phase seconds")
    parser.add_argument("--batch-size", type=int, default=None, help="worker max poll records")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    settings = get_settings()
    encoder = TorchEncoder(
        ModelRegistry(settings.models_dir).get(settings.model_name),
        settings.device,
        settings.cpu_threads,
    )
    morphemes = default_morphemes()
    encoder.encode(["준비 운동"] * 8, "passage")  # first-call allocations out of the timings
    with (
        tempfile.TemporaryDirectory(prefix="chatda-ingest-bench-") as tmp,
        TansuBroker() as broker,
        MilvusLiteServer(Path(tmp) / "milvus") as milvus,
    ):
        config = WorkerConfig.from_settings(
            settings.model_copy(update={"kafka_bootstrap": broker.bootstrap}),
            milvus_uri=milvus.uri,
            data_dir=Path(tmp),
            topic=TOPIC,
            group_id=GROUP,
            alias=ALIAS,
            batch_size=args.batch_size,
        )
        pipeline = Pipeline(
            encoder,
            morphemes,
            config.chunk_max_tokens,
            config.overlap_sentences,
            config.max_text_chars,
        )
        articles = demo_articles(args.articles, "tput")
        texts = [c.embed_text for m in articles for c in pipeline.prepare(m).chunks]
        worker = IngestWorker(config, encoder, morphemes=morphemes)
        probe = MilvusClient(uri=milvus.uri)
        stop = threading.Event()
        thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)

        raw_before = raw_embedding_seconds(encoder, texts)
        with Publisher(broker.bootstrap, TOPIC, config.partitions) as publisher:
            publisher.publish_many(articles)
            thread.start()
            try:
                wait_until_indexed(
                    broker.bootstrap, probe, GROUP, ALIAS, TOPIC, 3600, poll_s=_WAIT_POLL_S
                )
                assert worker.stats.first_batch_at and worker.stats.last_commit_at
                pipeline_s = worker.stats.last_commit_at - worker.stats.first_batch_at
                pipeline_chunks = worker.stats.chunks
                raw_after = raw_embedding_seconds(encoder, texts)
                worker.stats.latencies_s.clear()
                publish_steadily(publisher, args.rate, args.duration)
                wait_until_indexed(
                    broker.bootstrap, probe, GROUP, ALIAS, TOPIC, 3600, poll_s=_WAIT_POLL_S
                )
                latencies = list(worker.stats.latencies_s)
            finally:
                stop.set()
                thread.join()

    report(
        args,
        encoder,
        config.batch_size,
        len(articles),
        len(texts),
        pipeline_chunks,
        pipeline_s,
        raw_before,
        raw_after,
        latencies,
    )


def publish_steadily(publisher: Publisher, rate: float, duration: float) -> None:
    """Publish one fresh article every 1/rate s for ``duration`` s."""
    started = time.perf_counter()
    for i, article in enumerate(demo_articles(max(1, round(rate * duration)), "lat")):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        publisher.publish(article)


def report(
    args: argparse.Namespace,
    encoder: Encoder,
    batch_size: int,
    articles: int,
    chunks: int,
    pipeline_chunks: int,
    pipeline_s: float,
    raw_before: float,
    raw_after: float,
    latencies: list[float],
) -> None:
    raw_s = (raw_before + raw_after) / 2
    print(
        f"\nmodel {encoder.ref} on {encoder.device}, torch threads {torch.get_num_threads()}, "
        f"{os.cpu_count()} CPUs, worker batch {batch_size}\n"
    )
    print("| ingest throughput | articles | chunks | seconds | articles/s | chunks/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, seconds, n in (
        ("raw `Encoder.encode` (before)", raw_before, chunks),
        ("raw `Encoder.encode` (after)", raw_after, chunks),
        ("pipeline Kafka → Milvus", pipeline_s, pipeline_chunks),
    ):
        print(
            f"| {label} | {articles} | {n} | {seconds:.1f} | {articles / seconds:.2f} | "
            f"{n / seconds:.2f} |"
        )
    ratio = (pipeline_chunks / pipeline_s) / (chunks / raw_s)
    print(f"\npipeline / raw chunks/s: **{ratio:.0%}** (target ≥ 80%)\n")
    print("| publish → searchable | rate/s | seconds | articles | p50 s | p95 s | max s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(
        f"| steady publish | {args.rate:g} | {args.duration:g} | {len(latencies)} | "
        f"{statistics.median(latencies):.2f} | {percentile(latencies, 0.95):.2f} | "
        f"{max(latencies):.2f} |"
    )


if __name__ == "__main__":
    main()
