"""The article tier's scoring cost at 100,000 chunks against a bare matmul + argpartition.

Synthetic chunks (unit vectors of the model's width, ~120 Kiwi-like terms each drawn from a
Zipf vocabulary of 30,000, a category, a tag or two, a date), one batch of 64 queries of 3
terms each. The tier's pass: dense scores (one matrix product), filter masks for a quarter
of the queries, top-40 per query, BM25Okapi over the posting lists, hits built for the top
results. The floor: the same matrix product in numpy plus ``argpartition`` for the top 40,
nothing else. Medians of ``--repeat`` runs; memory is the tier's own account, the process
RSS growth while building it, and what the view cached while scoring (term weights, its
score arrays).
Usage: python -m bench.tier_scoring [--chunks 100000] [--batch 64] [--repeat 15]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import numpy as np
import torch

from chatda.search.tier.columns import ChunkColumns
from chatda.search.tier.view import DocumentQuery, TierView

DIM = 384
VOCAB = 30_000
DEPTH = 40


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(chunks: int, rng: np.random.Generator) -> ChunkColumns:
    columns = ChunkColumns(DIM, "cpu", "bench", capacity=chunks)
    words = [f"w{i}" for i in range(VOCAB)]
    for start in range(0, chunks, 5000):
        n = min(5000, chunks - start)
        vectors = rng.normal(size=(n, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        terms = np.minimum(rng.zipf(1.3, size=(n, 120)), VOCAB) - 1
        columns.append(
            [
                {
                    "chunk_id": f"p{(start + i) // 4}#{(start + i) % 4}",
                    "post_id": f"p{(start + i) // 4}",
                    "chunk_no": (start + i) % 4,
                    "title": "제목 " * 8,
                    "text": "본문 " * 200,
                    "bm25_text": " ".join(words[t] for t in terms[i]),
                    "dense": vectors[i],
                    "category": f"c{(start + i) % 12}",
                    "series": "",
                    "tags": [f"t{(start + i) % 40}"],
                    "published_at": 1_700_000_000 + start + i,
                }
                for i in range(n)
            ]
        )
    return columns


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    rss_before = _rss_mib()
    started = time.perf_counter()
    columns = build(args.chunks, rng)
    built_s = time.perf_counter() - started
    view = TierView(columns, 1)
    rss_after = _rss_mib()
    queries = rng.normal(size=(args.batch, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    asks = [
        DocumentQuery(
            tuple(f"w{t}" for t in np.minimum(rng.zipf(1.3, size=3), VOCAB) - 1),
            DEPTH,
            DEPTH,
            category=("c3", "c7") if i % 4 == 0 else (),
        )
        for i in range(args.batch)
    ]
    embeddings = torch.as_tensor(queries)
    matrix = view.dense.numpy()

    def tier() -> None:
        view.score(embeddings, asks)

    def tier_dense() -> None:
        view.score(embeddings, [DocumentQuery(a.terms, DEPTH, 0, a.category) for a in asks])

    def floor() -> None:
        sims = queries @ matrix.T
        np.argpartition(-sims, DEPTH, axis=1)[:, :DEPTH]

    timings = {}
    for name, fn in (("floor", floor), ("tier", tier), ("tier_dense", tier_dense)):
        fn()
        runs = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - t0)
        timings[name] = statistics.median(runs) * 1000
    print(f"chunks: {args.chunks:,}, batch: {args.batch}, torch threads: {torch.get_num_threads()}")
    print(
        f"built in {built_s:.1f}s; tier account {columns.nbytes / 2**20:.0f} MiB; "
        f"RSS growth {rss_after - rss_before:.0f} MiB"
    )
    print(f"view caches after scoring: {view.cache_nbytes / 2**20:.0f} MiB")
    print(
        "| pass (median ms) | floor: numpy matmul + argpartition | tier dense only | "
        "tier dense + BM25 + masks + top-k | tier / floor |"
    )
    print("|---|---:|---:|---:|---:|")
    print(
        f"| batch of {args.batch} | {timings['floor']:.1f} | {timings['tier_dense']:.1f} | "
        f"{timings['tier']:.1f} | {timings['tier'] / timings['floor']:.2f}x |"
    )


if __name__ == "__main__":
    main()
