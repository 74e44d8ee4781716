"""/v1/search under `hey -n 2000 -c 64`-style load, per profile, next to the encoder roofline.

Sets up the real stack on embedded engines (Tansu, milvus-lite, one ingest worker) with the
demo catalog and demo articles, then serves the API in its own process and loads it with short
Korean queries, at ``--c`` and at concurrency 1. Each profile with document legs runs twice:
through the in-memory article tier (the profile as configured) and through Milvus (a copy of
the profile with ``documents: milvus``). The roofline is the raw model throughput at its best
batch size, measured in this process before the API starts (as bench.embeddings_load does).
Usage: python -m bench.search_load [--n 2000] [--c 64] [--profiles instant default]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import urllib.request
from urllib.parse import quote

from bench.embeddings_load import roofline
from bench.loadgen import HEADER, run_load
from bench.server import api_server
from bench.stack import demo_indexed_stack
from chatda.search.profiles import DOCUMENT_LEGS, load_profiles
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


def wait_ready(base: str, timeout_s: float = 300) -> None:
    """Until /readyz says ready: the article tier holds the demo articles."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError("the API did not become ready")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--c", type=int, default=64)
    ap.add_argument("--profiles", nargs="+", default=["instant", "default"])
    args = ap.parse_args()
    settings = get_settings()
    best_bs, best_rate, _ = roofline(seconds=3)
    rows = []
    profiles = load_profiles(settings.profiles, settings.profiles_file)
    runs = []  # (label, profile name)
    milvus_copies = {}
    for name in args.profiles:
        profile = profiles[name]
        if any(s in DOCUMENT_LEGS for s in profile.sources):
            runs.append((f"{name}, tier", name))
            milvus_copies[f"{name}-milvus"] = profile.model_copy(update={"documents": "milvus"})
            runs.append((f"{name}, milvus", f"{name}-milvus"))
        else:
            runs.append((name, name))
    extra = json.dumps({n: p.model_dump(mode="json") for n, p in milvus_copies.items()})
    with (
        demo_indexed_stack() as stack,
        api_server({**stack.env, "CHATDA_PROFILES": extra}) as base,
    ):
        wait_ready(base)
        for label, profile in runs:
            paths = [f"/v1/search?profile={profile}&q={quote(q)}" for q in QUERIES]

            def request(i: int, paths: list[str] = paths) -> tuple[str, None]:
                return paths[i % len(paths)], None

            asyncio.run(run_load(base, 100, 16, request))  # warm-up
            for n, c in ((args.n, args.c), (min(args.n, 500), 1)):
                result = asyncio.run(run_load(base, n, c, request))
                rows.append(result.row(f"/v1/search {label}"))
    print(HEADER)
    print("\n".join(rows))
    print(f"\nencoder roofline in the same run: {best_rate:,.0f} texts/s at batch {best_bs}")


if __name__ == "__main__":
    main()
