"""Publish → searchable through the in-memory article tier, at one article a second.

The real stack on embedded engines (Tansu, milvus-lite, one ingest worker, the demo catalog),
the API as its own process, ready (its tier holds the collection). Each second one new article
is published (``POST``-equivalent: the publisher the API's route uses) with a word no other
article has; a poller searches that word (profile ``default``) until the article is among the
documents with ``sources.bm25.path == memory``. The latency is from the publish call's return
to the first answer holding it; p50 and p95 over ``--n`` articles.
Usage: python -m bench.tier_freshness [--n 60] [--rate 1.0]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from datetime import UTC, datetime

import httpx

from bench.search_load import wait_ready
from bench.server import api_server
from bench.stack import ingest_worker, local_stack
from chatda.articles.message import ArticleMessage
from chatda.articles.publisher import Publisher
from chatda.settings import get_settings


def word(i: int) -> str:
    """A Latin word Kiwi keeps whole, unique to article ``i``."""
    letters = "".join(chr(ord("a") + (i // 26**k) % 26) for k in range(3))
    return f"qzfresh{letters}"


def article(i: int) -> ArticleMessage:
    now = datetime.now(UTC)
    return ArticleMessage(
        post_id=f"fresh-{i:04d}",
        title=f"새 소식 {word(i)}",
        body=f"오늘 발표된 {word(i)} 소식입니다. 자세한 내용은 본문을 확인하세요.",
        category="소식",
        published_at=now,
        updated_at=now,
    )


def searchable_after(base: str, i: int, published: float, timeout_s: float = 30) -> float:
    with httpx.Client(base_url=base, timeout=5) as client:
        while time.monotonic() - published < timeout_s:
            body = client.get("/v1/search", params={"q": word(i), "profile": "default"}).json()
            found = {d["post_id"] for d in body.get("documents", [])}
            if f"fresh-{i:04d}" in found and body["sources"]["bm25"].get("path") == "memory":
                return time.monotonic() - published
            time.sleep(0.02)
    raise TimeoutError(f"article {i} not searchable through the tier in {timeout_s}s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--rate", type=float, default=1.0, help="articles per second")
    args = ap.parse_args()
    settings = get_settings()
    latencies: list[float] = []
    with local_stack() as stack, ingest_worker(stack.env), api_server(stack.env) as base:
        wait_ready(base)
        with Publisher(stack.bootstrap, settings.articles_topic, settings.article_partitions) as p:
            pollers = []
            for i in range(args.n):
                started = time.monotonic()
                p.publish(article(i))
                published = time.monotonic()
                poller = threading.Thread(
                    target=lambda i=i, t=published: latencies.append(searchable_after(base, i, t))
                )
                poller.start()
                pollers.append(poller)
                time.sleep(max(0.0, 1 / args.rate - (time.monotonic() - started)))
            for poller in pollers:
                poller.join()
    ordered = sorted(latencies)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    print(f"articles: {len(ordered)} of {args.n} at {args.rate}/s")
    print("| publish → searchable through the tier | p50 s | p95 s | max s |")
    print("|---|---:|---:|---:|")
    print(f"| {args.rate}/s | {statistics.median(ordered):.2f} | {p95:.2f} | {ordered[-1]:.2f} |")


if __name__ == "__main__":
    main()
