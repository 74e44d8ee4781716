"""Where a served search's seconds go under a standing overload (issue #23 item 8, BENCHMARKS § 8).

Clients that honour ``Retry-After`` got their answers seconds late although the admission gate
keeps the in-app time near the budget. This run separates the places the time can be spent:

* the load (``/v1/search``, honour mode, closed loop) tags each request as the first on a
  fresh connection (after a 429 and its wait) or one on a kept-alive connection, and records
  the client's latency of each;
* the API's own histogram (``chatda_http_request_duration_seconds``, from the app's first
  callback to its last byte) is scraped before and after: time inside the app;
* a side process of its own asks ``/healthz`` (never refused, no work) and one search on a
  fresh connection, and ``/healthz`` on a kept one, every 0.2 s: the server's latency seen by
  a client whose own loop is not the load generator's.

``--keep-connection``: refused clients wait on their open connection instead of reconnecting
(what an HTTP client pool does). The API's threads can be sampled alongside with
``py-spy record --threads -f raw --pid <API pid>`` (not a dependency).
Usage: python -m bench.overload_tail [--c 512] [--seconds 15] [--keep-connection] [--procs 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import re
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

import numpy as np

from bench.loadgen import read_response, run_load
from bench.overload import demo_stack, in_app, scrape, search_request
from bench.server import api_server


async def tagged_load(
    base: str, c: int, seconds: float, keep: bool, first: int = 0
) -> list[tuple[float, int, bool]]:
    """(latency ms, status, first request on a fresh connection) of every request, from ``c``
    clients numbered from ``first``."""
    parts = urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    records: list[tuple[float, int, bool]] = []
    start = time.perf_counter()

    async def client(i: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        fresh = False
        while time.perf_counter() - start < seconds:
            path, _ = search_request(i)
            i += c
            t0 = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            status, body = await read_response(reader)
            records.append(((time.perf_counter() - t0) * 1000, status, fresh))
            fresh = False
            if status == 429:
                await asyncio.sleep(json.loads(body)["error"]["retry_after_s"])
                if not keep:
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    fresh = True
        writer.close()

    await asyncio.gather(*(client(first + i) for i in range(c)))
    return records


def _load_share(job: tuple[str, int, float, bool, int]) -> list[tuple[float, int, bool]]:
    """One client process's share of the load (``--procs``)."""
    base, c, seconds, keep, first = job
    return asyncio.run(tagged_load(base, c, seconds, keep, first))


def side(base: str, seconds: float) -> None:
    """The side probe, a process of its own so the load's client loop cannot delay it: every
    0.2 s, ``/healthz`` and one search each on a fresh connection, and ``/healthz`` on a kept
    one; one JSON line per probe on stdout: [healthz fresh ms, search fresh ms, search
    status, healthz kept ms]."""
    parts = urlsplit(base)
    address = (parts.hostname or "127.0.0.1", parts.port or 80)

    def ask(conn: socket.socket, path: str) -> int | None:
        """The answer's status, read whole; ``None`` if the server closed the connection."""
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        seen = b""
        while b"\r\n\r\n" not in seen:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            seen += chunk
        head, _, body = seen.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
        while len(body) < length:
            body += conn.recv(65536)
        return int(head.split(b" ", 2)[1])

    def fresh(path: str) -> tuple[float, int | None]:
        t0 = time.perf_counter()
        with socket.create_connection(address, timeout=30) as conn:
            status = ask(conn, path)
        return (time.perf_counter() - t0) * 1000, status

    kept = socket.create_connection(address, timeout=30)
    ask(kept, "/healthz")
    start = time.perf_counter()
    i = 0
    while time.perf_counter() - start < seconds:
        healthz_ms, _ = fresh("/healthz")
        search_ms, status = fresh(search_request(i)[0])
        i += 1
        t0 = time.perf_counter()
        if ask(kept, "/healthz") is None:
            kept = socket.create_connection(address, timeout=30)
            ask(kept, "/healthz")
        kept_ms = (time.perf_counter() - t0) * 1000
        print(json.dumps([healthz_ms, search_ms, status, kept_ms]), flush=True)
        time.sleep(0.2)


def pct(values: list[float], q: float) -> str:
    return f"{np.percentile(values, q):,.0f}" if values else "–"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--c", type=int, default=512)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--keep-connection", action="store_true")
    ap.add_argument(
        "--procs",
        type=int,
        default=1,
        help="client processes sharing the --c connections: one Python loop driving hundreds "
        "of connections on a loaded box delays its own reads",
    )
    ap.add_argument("--side", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:
        side(args.side, args.seconds)
        return
    with demo_stack() as env, api_server(env, checkout=None) as base:
        asyncio.run(run_load(base, 100, 8, search_request))  # warm-up, under capacity
        before = in_app(scrape(base), "GET", "/v1/search")
        probe = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.overload_tail",
                "--side",
                base,
                "--seconds",
                str(args.seconds),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        share = args.c // args.procs
        jobs = [
            (base, share, args.seconds, args.keep_connection, k * share) for k in range(args.procs)
        ]
        with multiprocessing.Pool(args.procs) as pool:
            records = [r for part in pool.map(_load_share, jobs) for r in part]
        probes = [json.loads(line) for line in probe.communicate()[0].splitlines()]
        after = in_app(scrape(base), "GET", "/v1/search")
    served = [(ms, fresh) for ms, status, fresh in records if status == 200]
    refused = [ms for ms, status, _ in records if status == 429]
    side_statuses = {str(p[2]): sum(1 for q in probes if q[2] == p[2]) for p in probes}
    print(f"side probe: search statuses {side_statuses}")
    for label, values in (
        ("served", [ms for ms, _ in served]),
        ("served, first on a fresh connection", [ms for ms, fresh in served if fresh]),
        ("served, kept connection", [ms for ms, fresh in served if not fresh]),
        ("refused (429)", refused),
        ("side probe: /healthz, fresh connection", [p[0] for p in probes]),
        ("side probe: search, fresh connection", [p[1] for p in probes]),
        ("side probe: /healthz, kept connection", [p[3] for p in probes]),
    ):
        print(f"{label}: n {len(values)}, p50 {pct(values, 50)} ms, p99 {pct(values, 99)} ms")
    total = after.get(float("inf"), 0.0) - before.get(float("inf"), 0.0)
    for le in (0.15, 0.5, 2.5):
        share = (after.get(le, 0.0) - before.get(le, 0.0)) / total if total else float("nan")
        print(f"in the app ≤ {le} s: {share:.1%} of {total:.0f} admitted searches")


if __name__ == "__main__":
    main()
