"""Intent scoring cost: a batch of 64 query embeddings against 1k, 10k and 100k intents × 5 hints.

The snapshot scorer (matmul + per-intent max + top-k, as the batcher's post-step runs it) next to
a plain numpy matrix product over the same rows (the reference floor: it finds the best rows but
neither groups them per intent nor applies thresholds and areas). Random unit vectors stand in
for embeddings: the cost does not depend on what the vectors mean. Also the snapshot's memory.
Usage: python -m bench.catalog_scoring [--sizes 1000 10000 100000]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

import numpy as np
import torch

from chatda.catalog.models import Intent
from chatda.catalog.snapshot import Fusion, MatchContext, build_snapshot
from chatda.settings import get_settings

DIM = 384
HINTS = 5
BATCH = 64


def _unit(rows: int, rng: np.random.Generator) -> np.ndarray:
    m = rng.standard_normal((rows, DIM)).astype(np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def _median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times))


def run(n_intents: int, device: str, rng: np.random.Generator) -> dict[str, float]:
    now = datetime.now(UTC)
    intents = [
        Intent(
            id=i + 1,
            name=f"의도 {i}",
            hints=[f"힌트 {i} {h}" for h in range(1, HINTS)],
            updated_at=now,
        )
        for i in range(n_intents)
    ]
    texts = [t for i in intents for t in [i.name, *i.hints]]
    vectors = dict(zip(texts, _unit(len(texts), rng), strict=True))
    terms = {t: t.split() for t in texts}
    snap = build_snapshot(
        1, "bench", intents, vectors, terms, device, 0.9, Fusion.from_settings(get_settings())
    )
    queries = torch.as_tensor(_unit(BATCH, rng), device=device)
    contexts = [MatchContext(None, None, 10)] * BATCH
    matrix_np = snap.matrix.cpu().numpy()
    queries_np = queries.cpu().numpy()

    def numpy_ref() -> None:
        sims = queries_np @ matrix_np.T
        np.argpartition(-sims, 10, axis=1)[:, :10]

    def snapshot_scorer() -> None:
        snap(queries, contexts)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    repeats = 20 if n_intents <= 10_000 else 5
    return {
        "intents": n_intents,
        "rows": len(texts),
        "numpy_ms": _median_ms(numpy_ref, repeats),
        "scorer_ms": _median_ms(snapshot_scorer, repeats),
        "matrix_mb": snap.matrix.element_size() * snap.matrix.nelement() / 2**20,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"torch threads: {torch.get_num_threads()}; batch {BATCH} queries; {HINTS} rows/intent")
    print(
        "| device | intents | rows | numpy matmul+top10 ms | chatda scorer ms | ratio "
        "| matrix MiB |"
    )
    print("|---|---|---|---|---|---|---|")
    for device in devices:
        for n in args.sizes:
            r = run(n, device, rng)
            print(
                f"| {device} | {r['intents']:,} | {r['rows']:,} | {r['numpy_ms']:.2f} | "
                f"{r['scorer_ms']:.2f} | {r['scorer_ms'] / r['numpy_ms']:.2f} | "
                f"{r['matrix_mb']:.1f} |"
            )


if __name__ == "__main__":
    main()
