"""``/v1/embeddings`` against Infinity serving the same weights, same machine, same load.

Infinity (``infinity-emb`` 0.0.78, its default ``torch`` engine on the CPU) is the reference
embedding server; this bench loads it and chatda's API with the same ``hey -n 3000 -c 256``
-style requests (one short Korean query each, ``bench.embeddings_load.query``) over keep-alive
connections, the servers taking turns, round after round, so both see the same machine load
(the development box's 2 cores are shared). The claim is the ratio of median throughputs.

Infinity pins sentence-transformers 3.4 and transformers 4.x, which cannot read the registry's
6.x-layout folder (module class paths, ``1_Pooling`` keys, tokenizer class), so the bench writes
the serving version in the 3.x layout beside it (weights hard-linked) and checks the two
servers agree before timing: cosine of their embeddings for the same queries ≈ 1. Infinity
applies no prompt, so its requests carry e5's ``query: `` themselves; chatda adds it from the
registered model's prompts (``input_type`` "query", the default).

Both servers get the same batch size (chatda's ``CHATDA_BATCH_MAX_SIZE``) and all cores. chatda
runs with its encoder queue deadline and embeddings admission gate opened up (as in
``bench.embeddings_load``): Infinity has neither, and ``hey`` counts a 429 as an error, not a
throughput; everything else is as configured (``CHATDA_ENCODER_BACKEND`` included, and
``--backends`` adds rows for others). Infinity's response cache is off (the 3,000 requests
repeat 776 texts).

Setup, once (a virtualenv of its own: Infinity's pins clash with chatda's; git-ignored)::

    python3 -m venv .venv-infinity
    .venv-infinity/bin/pip install torch==2.13.0          # first: the CPU wheel on disk
    .venv-infinity/bin/pip install "infinity-emb[server,torch]==0.0.78"

Usage: python -m bench.embeddings_vs_infinity [--n 3000] [--c 256] [--rounds 3]
[--backends torch,onnx-int8] [--infinity .venv-infinity/bin/infinity_emb] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import numpy as np

from bench.embeddings_load import query
from bench.loadgen import HEADER, LoadResult, run_load
from bench.server import api_server, free_port, serving
from chatda.models.registry import ModelRegistry, ModelVersion
from chatda.settings import get_settings

SERVED_NAME = "e5-small-ko"
PARITY_MIN_COSINE = 0.999
ST3_MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    {
        "idx": 2,
        "name": "2",
        "path": "2_Normalize",
        "type": "sentence_transformers.models.Normalize",
    },
]


def st3_folder(version: ModelVersion, target: Path) -> Path:
    """The version as a sentence-transformers 3.x folder: same weights (hard links where the
    filesystem allows), 3.x module paths and pooling keys, a tokenizer class transformers 4.x
    knows (the fast tokenizer reads the same ``tokenizer.json``), the same prompts."""
    src = version.path
    shutil.rmtree(target, ignore_errors=True)
    (target / "1_Pooling").mkdir(parents=True)
    (target / "2_Normalize").mkdir()
    for name in ("model.safetensors", "config.json", "tokenizer.json"):
        try:
            os.link(src / name, target / name)
        except OSError:
            shutil.copy2(src / name, target / name)
    tok = json.loads((src / "tokenizer_config.json").read_text())
    for key in ("backend", "is_local", "local_files_only"):
        tok.pop(key, None)
    tok["tokenizer_class"] = "PreTrainedTokenizerFast"
    pooling = json.loads((src / "1_Pooling" / "config.json").read_text())
    if pooling["pooling_mode"] != "mean":
        raise ValueError(f"{version.manifest.ref}: pooling {pooling['pooling_mode']!r}, not mean")
    files = {
        "tokenizer_config.json": tok,
        "modules.json": ST3_MODULES,
        "sentence_bert_config.json": {
            "max_seq_length": version.manifest.max_seq_length,
            "do_lower_case": False,
        },
        "1_Pooling/config.json": {
            "word_embedding_dimension": pooling["embedding_dimension"],
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": pooling.get("include_prompt", True),
        },
        "config_sentence_transformers.json": {
            "__version__": {"sentence_transformers": "3.4.1"},
            "prompts": version.manifest.prompts.model_dump(),
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    }
    for name, payload in files.items():
        (target / name).write_text(json.dumps(payload, ensure_ascii=False, indent=2))
    return target


@contextmanager
def infinity_server(
    executable: Path, folder: Path, batch_size: int, timeout_s: float = 300
) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            str(executable),
            "v2",
            "--model-id",
            str(folder),
            "--served-model-name",
            SERVED_NAME,
            "--engine",
            "torch",
            "--device",
            "cpu",
            "--batch-size",
            str(batch_size),
            "--no-vector-disk-cache",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env={**os.environ, "DO_NOT_TRACK": "1", "INFINITY_ANONYMOUS_USAGE_STATS": "0"},
    )
    base = f"http://127.0.0.1:{port}"
    with serving(proc, f"{base}/health", timeout_s, "Infinity"):
        yield base


Request = Callable[[int], tuple[str, dict]]


def chatda_request(i: int) -> tuple[str, dict]:
    return "/v1/embeddings", {"input": query(i)}


def infinity_request(i: int) -> tuple[str, dict]:
    return "/embeddings", {"model": SERVED_NAME, "input": "query: " + query(i)}


def embeddings(base: str, request: Request, n: int) -> np.ndarray:
    rows = []
    for i in range(n):
        path, body = request(i)
        answer = httpx.post(base + path, json=body, timeout=60)
        answer.raise_for_status()
        rows.append(answer.json()["data"][0]["embedding"])
    out = np.asarray(rows, dtype=np.float64)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def parity(reference: np.ndarray, other: np.ndarray) -> float:
    """The smallest cosine between the two servers' embeddings of the same queries."""
    return float((reference * other).sum(axis=1).min())


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--c", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--backends", default="", help="chatda encoder backends (default: setting)")
    ap.add_argument("--infinity", type=Path, default=Path(".venv-infinity/bin/infinity_emb"))
    ap.add_argument("--json", help="write the numbers here")
    args = ap.parse_args()

    settings = get_settings()
    registry = ModelRegistry(settings.models_dir)
    version = registry.get(settings.model_name, settings.model_version)
    backends = args.backends.split(",") if args.backends else [settings.encoder_backend]
    folder = st3_folder(version, registry.root / version.manifest.name / ".st3" / "serving")
    chatda_env = {
        "CHATDA_REQUEST_TIMEOUT_MS": "120000",
        "CHATDA_MAX_IN_FLIGHT_EMBEDDINGS": "0",
    }

    with ExitStack() as stack:
        servers: dict[str, tuple[str, Request]] = {
            "infinity": (
                stack.enter_context(
                    infinity_server(args.infinity, folder, settings.batch_max_size)
                ),
                infinity_request,
            )
        }
        for backend in backends:
            env = {**chatda_env, "CHATDA_ENCODER_BACKEND": backend}
            servers[f"chatda {backend}"] = (stack.enter_context(api_server(env)), chatda_request)

        reference = embeddings(*servers["infinity"], 16)
        cosines = {label: parity(reference, embeddings(*s, 16)) for label, s in servers.items()}
        print("min cosine to Infinity's embeddings, 16 queries:", cosines)
        torch_cos = [v for k, v in cosines.items() if k.endswith("torch")]
        if any(c < PARITY_MIN_COSINE for c in torch_cos):
            raise SystemExit("chatda torch and Infinity disagree: the comparison would be unfair")

        for base, request in servers.values():  # warm-up: first batches, allocator, JIT
            asyncio.run(run_load(base, 300, 32, request))
        runs: dict[str, list[LoadResult]] = {label: [] for label in servers}
        for r in range(args.rounds):
            order = list(servers) if r % 2 == 0 else list(reversed(servers))
            for label in order:
                base, request = servers[label]
                runs[label].append(asyncio.run(run_load(base, args.n, args.c, request)))
                print(runs[label][-1].row(f"{label} round {r + 1}"), flush=True)

    load = os.getloadavg()
    print(f"\nload average after the runs: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(HEADER)
    medians: dict[str, dict[str, float]] = {}
    for label, results in runs.items():
        best = sorted(results, key=lambda x: x.rps)[len(results) // 2]
        medians[label] = {
            "rps": statistics.median(x.rps for x in results),
            "p50_ms": statistics.median(x.percentile(50) for x in results),
            "p99_ms": statistics.median(x.percentile(99) for x in results),
            "errors": float(sum(sum(x.errors.values()) for x in results)),
            "cosine_to_infinity": cosines[label],
        }
        print(best.row(f"{label} (median round)"))
    print()
    for label in servers:
        if label != "infinity":
            ratio = medians[label]["rps"] / medians["infinity"]["rps"]
            print(f"{label}: {ratio:.2f}x Infinity's throughput (median of {args.rounds} rounds)")
            medians[label]["ratio_to_infinity"] = ratio
    if args.json:
        per_round = {k: [x.rps for x in v] for k, v in runs.items()}
        Path(args.json).write_text(
            json.dumps({"medians": medians, "rounds_rps": per_round, "load": load}, indent=2)
        )


if __name__ == "__main__":
    main()
