"""Overload: /v1/search and /v1/embeddings far past capacity (issue #23 item 8), before/after.

The real stack on embedded engines (Tansu, milvus-lite, one ingest worker, the demo catalog and
articles), then the API as its own process with the default deadlines (the encoder queue's 2 s,
the search profile's budget), loaded by closed-loop clients (bench.loadgen). Per endpoint: the
share of 429s, the answers served (200) and their rate, other errors, p50/p99 of the served
answers, the slowest answer of any status, the API's RSS after the run and at its peak, and the
API's own latency histogram for the route over the run (``in_app``: admitted answers, the share
inside the first bucket at or past the budget, the bucket holding 99 %), which the load
generator's own lag does not inflate. By default the clients do not honour ``Retry-After``: once
a pool is full, a refused client asks again at once, so the share of 429s mostly says how cheap
a refusal is; compare the served rate and latency (``--honour-retry-after``: they wait the
hint). ``--together`` loads every endpoint at once, each over its own ``--c`` connections: the
admission pools are per route class, so a flood of one must not refuse the other.

``--before COMMIT`` serves that commit's code too (a temporary ``git worktree``), against the
same stack and data, before the current tree's: both rows come from one run.
Usage: python -m bench.overload [--n 2000 | --seconds S] [--c 512] [--honour-retry-after]
       [--together] [--before COMMIT] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import tempfile
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import numpy as np
import psutil

from bench.embeddings_load import query
from bench.loadgen import LoadResult, run_load
from bench.search_load import QUERIES
from bench.server import api_server
from bench.stack import demo_indexed_stack

REPO = Path(__file__).resolve().parents[1]


def search_request(i: int) -> tuple[str, None]:
    return f"/v1/search?profile=default&q={quote(QUERIES[i % len(QUERIES)])}", None


def embeddings_request(i: int) -> tuple[str, dict]:
    return "/v1/embeddings", {"input": query(i)}


ENDPOINTS = {"search": search_request, "embeddings": embeddings_request}
ROUTES = {"search": ("GET", "/v1/search"), "embeddings": ("POST", "/v1/embeddings")}
BUDGET_S = {"search": 0.15, "embeddings": 2.0}
"""What an admitted answer is owed: the default profile's budget, the encoder queue's deadline."""

HISTOGRAM = re.compile(
    r"chatda_http_request_duration_seconds_bucket"
    r'\{le="([^"]+)",method="([^"]+)",route="([^"]+)"\} (\S+)'
)


def scrape(base: str) -> str:
    with urllib.request.urlopen(base + "/metrics", timeout=30) as answer:
        return answer.read().decode()


def in_app(metrics: str, method: str, route: str) -> dict[float, float]:
    """Cumulative counts of the API's own latency histogram for one route, by upper bound (s):
    time inside the app, which the load generator's own lag (one Python process driving
    hundreds of connections) does not inflate. Refused requests are not in it (they match no
    route)."""
    return {
        float(le): float(count)
        for le, m, r, count in HISTOGRAM.findall(metrics)
        if (m, r) == (method, route)
    }


def in_app_summary(before: dict[float, float], after: dict[float, float], budget_s: float) -> dict:
    """Admitted answers in a run, the share inside the first bucket at or past ``budget_s``, and
    the bucket bound that holds 99 % of them."""
    bounds = sorted(after)
    delta = [after[b] - before.get(b, 0.0) for b in bounds]
    total = delta[-1] if delta else 0.0
    within = next((d for b, d in zip(bounds, delta, strict=True) if b >= budget_s), 0.0)
    p99 = next((b for b, d in zip(bounds, delta, strict=True) if d >= 0.99 * total), None)
    return {
        "in_app_admitted": int(total),
        "in_app_within_budget": round(within / total, 3) if total else None,
        "in_app_p99_le_s": p99,
    }


def api_process(base: str) -> psutil.Process:
    """The uvicorn process listening on ``base``'s port."""
    port = urlsplit(base).port
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return psutil.Process(conn.pid)
    raise LookupError(f"no process listens on {port}")


def rss_mib(proc: psutil.Process) -> tuple[float, float]:
    """(current, peak) resident memory in MiB; the peak is the kernel's high-water mark."""
    status = Path(f"/proc/{proc.pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return (
        int(fields["VmRSS"].split()[0]) / 1024,
        int(fields["VmHWM"].split()[0]) / 1024,
    )


def describe(
    code: str, endpoint: str, result: LoadResult, rss: tuple[float, float], app: dict
) -> dict:
    assert result.statuses is not None
    served = result.latencies_ms[result.statuses == 200]
    others = {
        int(s): int(n)
        for s, n in zip(*np.unique(result.statuses, return_counts=True), strict=True)
        if s not in (200, 429)
    }

    def pct(q: float) -> float:
        return round(float(np.percentile(served, q)), 1) if len(served) else float("nan")

    return {
        "code": code,
        "endpoint": endpoint,
        "requests": result.requests,
        "concurrency": result.concurrency,
        "share_429": round(float(np.mean(result.statuses == 429)), 3),
        "served": len(served),
        "served_per_s": round(len(served) / result.seconds, 1),
        "partial": result.partial,
        "other_errors": others,
        "served_p50_ms": pct(50),
        "served_p99_ms": pct(99),
        "max_ms": round(float(result.latencies_ms.max()), 1),
        "rss_mib": round(rss[0]),
        "peak_rss_mib": round(rss[1]),
        **app,
    }


ROW_HEADER = (
    "| code | endpoint | requests | c | 429 share | served (200) | served/s | partial | "
    "other errors | served p50 ms | served p99 ms | max ms | RSS MiB (peak) | "
    "in the app: admitted, within budget, p99 ≤ s |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def row(r: dict) -> str:
    app = (
        f"{r['in_app_admitted']}, {r['in_app_within_budget']:.1%}, {r['in_app_p99_le_s']}"
        if r["in_app_admitted"]
        else "0"
    )
    return (
        f"| {r['code']} | {r['endpoint']} | {r['requests']} | {r['concurrency']} | "
        f"{r['share_429']:.1%} | {r['served']} | {r['served_per_s']} | {r['partial']} | "
        f"{r['other_errors'] or '-'} | "
        f"{r['served_p50_ms']} | {r['served_p99_ms']} | {r['max_ms']} | "
        f"{r['rss_mib']} ({r['peak_rss_mib']}) | {app} |"
    )


@contextmanager
def worktree(commit: str) -> Iterator[str]:
    """``commit``'s tree beside this one, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="chatda-before-") as tmp:
        path = str(Path(tmp) / "tree")
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", path, commit])
        try:
            yield path
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", path])


def measure(
    env: dict[str, str], code: str, checkout: str | None, args: argparse.Namespace
) -> list[dict]:
    rows = []
    with api_server(env, checkout=checkout) as base:
        proc = api_process(base)

        def load(endpoint: str) -> Coroutine[Any, Any, LoadResult]:
            request = ENDPOINTS[endpoint]
            return run_load(base, args.n, args.c, request, args.seconds, args.honour_retry_after)

        for endpoint in args.endpoints:  # warm-up, under capacity
            asyncio.run(run_load(base, 100, 8, ENDPOINTS[endpoint]))

        def timed(
            endpoints: list[str], run: Callable[[], list[LoadResult]]
        ) -> list[tuple[str, LoadResult, dict]]:
            before = scrape(base)
            results = run()
            after = scrape(base)
            return [
                (
                    e,
                    result,
                    in_app_summary(
                        in_app(before, *ROUTES[e]), in_app(after, *ROUTES[e]), BUDGET_S[e]
                    ),
                )
                for e, result in zip(endpoints, results, strict=True)
            ]

        def alone(endpoint: str) -> list[LoadResult]:
            return [asyncio.run(load(endpoint))]

        if args.together:
            runs = timed(
                args.endpoints, lambda: asyncio.run(gather(*(load(e) for e in args.endpoints)))
            )
        else:
            runs = [r for e in args.endpoints for r in timed([e], partial(alone, e))]
        for endpoint, result, app in runs:
            label = f"{endpoint} (together)" if args.together else endpoint
            rows.append(describe(code, label, result, rss_mib(proc), app))
            print(row(rows[-1]), flush=True)
    return rows


async def gather(*loads: Coroutine[Any, Any, LoadResult]) -> list[LoadResult]:
    return list(await asyncio.gather(*loads))


@contextmanager
def demo_stack() -> Iterator[dict[str, str]]:
    """The demo-indexed stack's environment for the API, with the default queue deadline (the
    stack's env raises it for indexing)."""
    with demo_indexed_stack() as stack:
        yield {**stack.env, "CHATDA_REQUEST_TIMEOUT_MS": "2000"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000, help="requests per endpoint (no --seconds)")
    ap.add_argument(
        "--seconds",
        type=float,
        help="load each endpoint for this long instead of --n requests: refused clients ask "
        "again at once, so a fixed count is spent in well under a second once 429s are instant",
    )
    ap.add_argument("--c", type=int, default=512, help="concurrent connections")
    ap.add_argument("--endpoints", nargs="+", default=list(ENDPOINTS), choices=list(ENDPOINTS))
    ap.add_argument("--before", help="also serve this commit's code, first (git worktree)")
    ap.add_argument(
        "--honour-retry-after",
        action="store_true",
        help="a refused client waits the answer's retry_after_s before asking again",
    )
    ap.add_argument(
        "--together",
        action="store_true",
        help="load every endpoint at once (each over --c connections), not one after another",
    )
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args()
    rows: list[dict] = []
    with demo_stack() as env:
        print(ROW_HEADER, flush=True)
        if args.before:
            with worktree(args.before) as tree:
                rows += measure(env, args.before, tree, args)
        rows += measure(env, "this tree", None, args)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
