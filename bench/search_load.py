"""/v1/search under `hey -n 10000 -c 256`-style load, per profile, next to the encoder roofline.

Sets up the real stack on embedded engines (Tansu, milvus-lite, one ingest worker) with the
demo catalog and demo articles, then serves the API in its own process and loads it with short
Korean queries. The roofline is the raw model throughput at its best batch size, measured in
this process before the API starts (the same number as bench.embeddings_load).
Usage: python -m bench.search_load [--n 10000] [--c 256] [--profiles instant default]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from urllib.parse import quote

from bench.embeddings_load import roofline
from bench.loadgen import HEADER, run_load
from bench.server import api_server
from bench.stack import ingest_worker, local_stack
from chatda.articles.message import ArticleMessage
from chatda.articles.publisher import Publisher
from chatda.demo import articles_path
from chatda.settings import get_settings

QUERIES = [
    "해외 송금 수수료",
    "적금 금리 비교",
    "신용점수 올리는 법",
    "연말정산 공제",
    "환전 우대",
    "보이스피싱 예방",
    "카드 포인트",
    "주택담보대출 금리",
    "ETF 투자",
    "실손보험 청구",
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--c", type=int, default=256)
    ap.add_argument("--profiles", nargs="+", default=["instant", "default"])
    args = ap.parse_args()
    settings = get_settings()
    best_bs, best_rate, _ = roofline(seconds=3)
    rows = []
    with local_stack() as stack:
        lines = articles_path().read_text(encoding="utf-8").splitlines()
        with Publisher(stack.bootstrap, settings.articles_topic, settings.article_partitions) as p:
            p.publish_many([ArticleMessage.model_validate(json.loads(x)) for x in lines if x])
        with ingest_worker(stack.env):
            stack.wait_indexed(900)
        with api_server(stack.env) as base:
            for profile in args.profiles:
                paths = [f"/v1/search?profile={profile}&q={quote(q)}" for q in QUERIES]

                def request(i: int, paths: list[str] = paths) -> tuple[str, None]:
                    return paths[i % len(paths)], None

                asyncio.run(run_load(base, 100, 16, request))  # warm-up
                result = asyncio.run(run_load(base, args.n, args.c, request))
                rows.append(result.row(f"/v1/search profile={profile}"))
    print(HEADER)
    print("\n".join(rows))
    print(f"\nencoder roofline in the same run: {best_rate:,.0f} texts/s at batch {best_bs}")


if __name__ == "__main__":
    main()
