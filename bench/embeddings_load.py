"""Foundation benchmark: /v1/embeddings with batching on vs off, next to the model's roofline.

`hey -n 10000 -c 256`-style load of single short Korean queries. The roofline is the raw model
throughput at its best batch size, called directly in this process with nothing else running.
Usage: python -m bench.embeddings_load [--n 10000] [--n-off 2000] [--c 256]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from bench.loadgen import HEADER, run_load, summary
from bench.server import api_server
from chatda.models.encoder import open_encoder
from chatda.models.registry import ModelRegistry
from chatda.settings import get_settings

WORDS = ["송금", "환전", "대출 금리", "적금 추천", "카드 분실", "신용점수", "연말정산", "보험 청구"]


def query(i: int) -> str:
    return f"{WORDS[i % len(WORDS)]} {i % 97}"


def roofline(seconds: float = 4.0) -> tuple[int, float, dict[int, float]]:
    settings = get_settings()
    # the backend the server runs (CHATDA_ENCODER_BACKEND; auto: int8 ONNX on a CPU)
    version = ModelRegistry(settings.models_dir).get(settings.model_name, settings.model_version)
    encoder = open_encoder(version, settings)
    rates: dict[int, float] = {}
    for bs in (1, 16, 32, 64, 128):
        ids = encoder.tokenize([query(i) for i in range(bs)], "query")
        encoder.embed_ids(ids)
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            encoder.embed_ids(ids)
            done += bs
        rates[bs] = done / (time.perf_counter() - start)
    best = max(rates, key=lambda b: rates[b])
    return best, rates[best], rates


def load(n: int, c: int, max_batch: int) -> dict:
    # this measures batching, not admission (bench.overload does): the embeddings pool admits
    # every request, or a closed loop of 256 clients gets mostly 429s and the rate counts them
    env = {
        "CHATDA_BATCH_MAX_SIZE": str(max_batch),
        "CHATDA_REQUEST_TIMEOUT_MS": "120000",
        "CHATDA_MAX_IN_FLIGHT_EMBEDDINGS": "0",
    }

    def request(i: int) -> tuple[str, dict]:
        return "/v1/embeddings", {"input": query(i)}

    with api_server(env) as base:
        asyncio.run(run_load(base, 200, 16, request))  # warm-up
        result = asyncio.run(run_load(base, n, c, request))
    return {"result": result, **summary(result)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--n-off", type=int, default=2000)
    ap.add_argument("--c", type=int, default=256)
    ap.add_argument("--json", help="write the numbers here")
    args = ap.parse_args()

    best_bs, best_rate, rates = roofline()
    on = load(args.n, args.c, get_settings().batch_max_size)
    off = load(args.n_off, args.c, 1)
    print(HEADER)
    print(on["result"].row(f"batching on (max {get_settings().batch_max_size})"))
    print(off["result"].row("batching off (max 1)"))
    print()
    print("| model called directly, batch size | " + " | ".join(map(str, rates)) + " |")
    print("|---" * (len(rates) + 1) + "|")
    print("| texts/s | " + " | ".join(f"{r:,.0f}" for r in rates.values()) + " |")
    print()
    print(f"batching speed-up: {on['rps'] / off['rps']:.2f}x the batch-1 server")
    print(
        f"server with batching: {on['rps'] / best_rate:.0%} of the roofline "
        f"({best_rate:,.0f} texts/s at batch {best_bs})"
    )
    if args.json:
        out = {
            k: {kk: vv for kk, vv in v.items() if kk != "result"}
            for k, v in {"on": on, "off": off}.items()
        }
        out["roofline"] = {"batch": best_bs, "rate": best_rate, "rates": rates}
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
