"""Blue-green re-index: rows/s, and what a re-index costs the searches served meanwhile.

The real stack on embedded engines (Tansu, milvus-lite, a live ingest worker, the API in its
own process). The re-index rebuilds for the serving model (what an analyzer change or a
bloated collection calls for), so nothing but the cost is measured. In one run:
  1. search latency with nothing else going on (baseline),
  2. the same search load while ``chatda index reindex`` runs, articles trickling in,
  3. a re-index with no search load (its own best rows/s),
  4. the model alone embedding the same passages (the roofline the copy is measured against).
Usage: python -m bench.reindex_bench [--articles 120] [--rps 2] [--publish-every-s 10]
       [--baseline-s 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
from pymilvus import MilvusClient

from bench.ingest_bench import demo_articles
from bench.loadgen import run_load
from bench.search_load import QUERIES
from bench.server import api_server
from bench.stack import ingest_worker, local_stack
from chatda.articles.publisher import Publisher
from chatda.models.encoder import TorchEncoder
from chatda.models.registry import ModelRegistry
from chatda.settings import get_settings
from chatda.text.chunker import embed_text


@dataclass
class Phase:
    latencies_ms: np.ndarray
    partial: int  # answers where a leg missed the profile's budget (reported, not failed)

    def row(self) -> str:
        p50, p95 = np.percentile(self.latencies_ms, [50, 95])
        return f"{len(self.latencies_ms)} | {p50:.1f} | {p95:.1f} | {self.partial}"


def search_while(base: str, profile: str, rate: float, running: threading.Event) -> Phase:
    """Open-loop search traffic: ``rate`` requests/s for as long as ``running`` is set, each
    sent on schedule whether or not the previous ones are back (a closed loop would take every
    spare cycle and starve the re-index it is meant to observe). Any non-2xx answer fails the
    benchmark: none is allowed."""
    paths = [f"/v1/search?profile={profile}&q={quote(q)}" for q in QUERIES]

    async def traffic() -> Phase:
        latencies: list[float] = []
        answers: list[dict[str, Any]] = []
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:

            async def one(path: str) -> None:
                t0 = time.perf_counter()
                response = await client.get(path)
                latencies.append((time.perf_counter() - t0) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(f"search failed: {response.status_code} {response.text}")
                answers.append(response.json())

            sent: list[asyncio.Task[None]] = []
            start = time.perf_counter()
            while running.is_set():
                sent.append(asyncio.create_task(one(paths[len(sent) % len(paths)])))
                await asyncio.sleep(max(0.0, start + len(sent) / rate - time.perf_counter()))
            await asyncio.gather(*sent)
        return Phase(np.array(latencies), sum(1 for a in answers if a.get("partial")))

    return asyncio.run(traffic())


def reindex(env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "index", "reindex", "--json"],
        env={**os.environ, **env, "CHATDA_LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"re-index failed: {done.stderr[-3000:]}")
    return dict(json.loads(done.stdout[done.stdout.index("{") :]))


def trickle(publisher: Publisher, running: threading.Event, prefix: str, every_s: float) -> int:
    """One new article every ``every_s`` while the re-index runs: the replay carries them over
    (and must out-pace them: each is embedded twice meanwhile, by the live worker and the
    replay)."""
    sent = 0
    while running.is_set():
        publisher.publish_many(demo_articles(1, f"{prefix}{sent}"))
        sent += 1
        time.sleep(every_s)
    return sent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--articles", type=int, default=120)
    ap.add_argument("--rps", type=float, default=2.0, help="search requests per second")
    ap.add_argument("--publish-every-s", type=float, default=10.0)
    ap.add_argument(
        "--profile",
        default="deep",
        help="deep: its 800 ms budget rarely binds here, so latency shows",
    )
    ap.add_argument("--baseline-s", type=float, default=30.0)
    args = ap.parse_args()
    settings = get_settings()
    with local_stack() as stack:
        env = stack.env
        topic, partitions = settings.articles_topic, settings.article_partitions
        with Publisher(stack.bootstrap, topic, partitions) as publisher, ingest_worker(env):
            publisher.publish_many(demo_articles(args.articles, "rx"))
            stack.wait_indexed(1800)
            with api_server(env) as base:
                asyncio.run(run_load(base, 40, 2, lambda i: (f"/v1/search?q={i}", None)))  # warm-up
                running = threading.Event()
                running.set()
                timer = threading.Timer(args.baseline_s, running.clear)
                timer.start()
                baseline = search_while(base, args.profile, args.rps, running)

                running.set()
                outcome: dict[str, Any] = {}
                published: list[int] = []

                def build() -> None:
                    try:
                        outcome.update(reindex(env))
                    finally:
                        running.clear()

                builder = threading.Thread(target=build)
                feeder = threading.Thread(
                    target=lambda: published.append(
                        trickle(publisher, running, "late", args.publish_every_s)
                    )
                )
                started = time.monotonic()
                builder.start()
                feeder.start()
                during = search_while(base, args.profile, args.rps, running)
                builder.join()
                feeder.join()
                loaded_s = time.monotonic() - started
                if not outcome:
                    raise RuntimeError("the re-index under load did not finish")
            stack.wait_indexed(600)
            idle = reindex(env)
        probe = MilvusClient(uri=stack.milvus_uri)
        rows = probe.query(
            settings.articles_alias, filter="chunk_no >= 0", output_fields=["title", "text"]
        )
        probe.close()
    texts = [embed_text(r["title"], r["text"]) for r in rows]
    encoder = TorchEncoder(
        ModelRegistry(settings.models_dir).get(settings.model_name),
        device="cpu",
        cpu_threads=settings.cpu_threads,
    )
    t0 = time.perf_counter()
    encoder.encode(texts, "passage")  # batches of 64, as the copy encodes
    raw = len(texts) / (time.perf_counter() - t0)

    print("| phase | searches | p50 ms | p95 ms | partial |\n|---|---:|---:|---:|---:|")
    print(f"| before the re-index | {baseline.row()} |")
    print(f"| during the re-index ({loaded_s:.0f} s) | {during.row()} |")
    ratio50, ratio95 = (
        np.percentile(during.latencies_ms, q) / np.percentile(baseline.latencies_ms, q)
        for q in (50, 95)
    )
    print(
        f"\nduring / before ({args.profile}, {args.rps:g}/s): "
        f"p50 ×{ratio50:.2f}, p95 ×{ratio95:.2f}"
    )
    print(f"articles published during the re-index: {published[0] if published else 0}")
    print("\n| re-index | rows | copy s | rows/s | total s |\n|---|---:|---:|---:|---:|")
    for label, report in (("while serving searches", outcome), ("alone", idle)):
        print(
            f"| {label} | {report['rows']} | {report['copy_s']:.1f} | "
            f"{report['rows_per_s']:.1f} | {report['total_s']:.1f} |"
        )
    print(f"\nthe model alone, same {len(texts)} passages: {raw:.1f} rows/s")
    print(f"copy alone / model alone: {idle['rows_per_s'] / raw:.0%}")


if __name__ == "__main__":
    main()
