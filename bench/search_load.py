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
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

from pymilvus import MilvusClient

from bench.embeddings_load import roofline
from bench.loadgen import HEADER, run_load
from bench.server import api_server
from chatda.articles.message import ArticleMessage
from chatda.articles.progress import wait_until_indexed
from chatda.articles.publisher import Publisher
from chatda.broker.tansu import TansuBroker
from chatda.demo import articles_path, catalog_path
from chatda.settings import get_settings
from chatda.storage.milvus_server import MilvusLiteServer

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
    with (
        tempfile.TemporaryDirectory() as tmp,
        TansuBroker() as broker,
        MilvusLiteServer(Path(tmp) / "milvus") as milvus,
    ):
        env = {
            "CHATDA_DATA_DIR": tmp,
            "CHATDA_MODELS_DIR": str(settings.models_dir.resolve()),
            "CHATDA_KAFKA_BOOTSTRAP": broker.bootstrap,
            "CHATDA_MILVUS_URI": milvus.uri,
            "CHATDA_CATALOG_FILE": str(catalog_path()),
            "CHATDA_REQUEST_TIMEOUT_MS": "60000",
        }
        lines = articles_path().read_text(encoding="utf-8").splitlines()
        with Publisher(broker.bootstrap, settings.articles_topic, settings.article_partitions) as p:
            p.publish_many([ArticleMessage.model_validate(json.loads(x)) for x in lines if x])
        worker = subprocess.Popen(
            [sys.executable, "-m", "chatda.cli.main", "ingest"],
            env={**os.environ, **env, "CHATDA_LOG_LEVEL": "WARNING"},
        )
        try:
            probe = MilvusClient(uri=milvus.uri)
            wait_until_indexed(
                broker.bootstrap,
                probe,
                settings.ingest_group_id,
                settings.articles_alias,
                settings.articles_topic,
                900,
            )
            probe.close()
        finally:
            worker.terminate()
            worker.wait(60)
        with api_server(env) as base:
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
