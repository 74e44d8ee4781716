"""ONNX int8 (dynamic quantisation) vs torch fp32 on CPU: throughput and quality, one table.

Throughput: KorQuAD dev questions (short queries, the latency-critical side) encoded at batch 1
and batch 32 for a fixed time each, same thread count for both runtimes. Quality: KorSTS test
Spearman and KorQuAD dev Recall@5 through each backend. The torch KorQuAD number is the stored
``chatda train eval`` result for the same version (same code path) unless ``--recompute``.
Usage: python -m bench.onnx_int8 [--model e5-small-ko@base] [--threads 2] [--seconds 20]
"""

from __future__ import annotations

import argparse
import time

import torch

from chatda.models.encoder import TorchEncoder
from chatda.models.onnx_encoder import OnnxEncoder
from chatda.models.registry import ModelRegistry, parse_ref
from chatda.settings import get_settings
from train.data import DEFAULT_DATA_DIR
from train.evaluate import EvalSuite, TextEncoder, retrieval_metrics, stored_metrics, sts_spearman

RECOMMEND_MAX_LOSS = 1.0  # points of KorSTS ρ×100 or KorQuAD R@5


def throughput(encoder: TextEncoder, texts: list[str], batch: int, seconds: float) -> float:
    """Texts per second encoding ``batch`` queries per call, after one warm-up call."""
    encoder.encode(texts[:batch], "query", batch_size=batch)
    done, start, i = 0, time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        chunk = texts[i : i + batch]
        encoder.encode(chunk, "query", batch_size=batch)
        done += len(chunk)
        i = (i + batch) % (len(texts) - batch)
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="name@version (default: serving)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--recompute", action="store_true", help="re-run torch KorQuAD too")
    args = parser.parse_args()

    settings = get_settings()
    registry = ModelRegistry(settings.models_dir)
    name, version = parse_ref(args.model or "", settings.model_name)
    model = registry.get(name, version)
    torch.set_num_threads(args.threads)
    backends: dict[str, TextEncoder] = {
        "torch fp32": TorchEncoder(model, device="cpu", cpu_threads=args.threads),
        "onnx int8": OnnxEncoder(model, cpu_threads=args.threads),
    }
    suite = EvalSuite.load(DEFAULT_DATA_DIR)
    queries = suite.korquad.queries
    stored = stored_metrics(registry, model)

    rows: dict[str, dict[str, float]] = {}
    for label, encoder in backends.items():
        row = {f"b{b}": throughput(encoder, queries, b, args.seconds) for b in (1, 32)}
        row["korsts"] = sts_spearman(encoder, suite.korsts_test, f"{label} KorSTS")
        if label == "torch fp32" and stored and not args.recompute:
            row["r5"] = stored["korquad_r5"]
        else:
            row["r5"] = retrieval_metrics(encoder, suite.korquad)["korquad_r5"]
        rows[label] = row

    base, quant = rows["torch fp32"], rows["onnx int8"]
    print(f"model {model.manifest.ref}, {args.threads} CPU threads, {args.seconds:.0f} s per rate")
    print("| backend | queries/s b=1 | queries/s b=32 | KorSTS test ρ×100 | KorQuAD R@5 |")
    print("|---|---:|---:|---:|---:|")
    for label, r in rows.items():
        print(f"| {label} | {r['b1']:.1f} | {r['b32']:.1f} | {r['korsts']:.2f} | {r['r5']:.2f} |")
    loss = max(base["korsts"] - quant["korsts"], base["r5"] - quant["r5"])
    print(
        f"| int8 vs fp32 | ×{quant['b1'] / base['b1']:.2f} | ×{quant['b32'] / base['b32']:.2f} "
        f"| {quant['korsts'] - base['korsts']:+.2f} | {quant['r5'] - base['r5']:+.2f} |"
    )
    verdict = "recommend" if loss < RECOMMEND_MAX_LOSS else "do not recommend"
    print(f"{verdict} int8 ONNX for CPU serving (largest quality loss {loss:.2f} points)")


if __name__ == "__main__":
    main()
