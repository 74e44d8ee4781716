"""A small ``hey``-style load generator: N requests over C keep-alive connections, latency tails.

Raw asyncio streams rather than an HTTP client library, so the generator spends as little of
this 2-core machine's CPU as possible and the server, not the client, is what gets measured.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np


@dataclass
class LoadResult:
    requests: int
    concurrency: int
    seconds: float
    errors: dict[int, int]
    latencies_ms: np.ndarray
    partial: int = 0
    statuses: np.ndarray | None = None
    """The HTTP status of each request, aligned with ``latencies_ms``."""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        return (
            float(np.percentile(self.latencies_ms, q)) if len(self.latencies_ms) else float("nan")
        )

    def row(self, label: str) -> str:
        ok = self.requests - sum(self.errors.values())
        return (
            f"| {label} | {self.requests} | {self.concurrency} | {self.rps:,.0f} | "
            f"{self.percentile(50):.1f} | {self.percentile(95):.1f} | {self.percentile(99):.1f} | "
            f"{ok} | {self.partial} | {dict(self.errors) or '-'} |"
        )


HEADER = (
    "| run | requests | concurrency | req/s | p50 ms | p95 ms | p99 ms | 2xx | partial | errors |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    status_line = await reader.readline()
    status = int(status_line.split()[1])
    length = 0
    chunked = False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    body = b""
    if chunked:
        while True:
            size = int((await reader.readline()).strip(), 16)
            body += (await reader.readexactly(size + 2))[:size]
            if size == 0:
                break
    else:
        body = await reader.readexactly(length)
    return status, body


async def run_load(
    base_url: str,
    n: int,
    concurrency: int,
    request: Callable[[int], tuple[str, dict | None]],
    seconds: float | None = None,
    honour_retry_after: bool = False,
) -> LoadResult:
    """``request(i)`` gives request i's path (with query string) and JSON body: POST when there
    is a body, GET otherwise. With ``seconds``, every client keeps sending until that much time
    has passed (``n`` is ignored): when refusals are instant, a fixed count is spent in a
    fraction of a second and says nothing about the steady state. ``honour_retry_after``: a
    client refused with 429 waits the ``retry_after_s`` the answer gives before its next
    request, as a well-behaved client or gateway does (``hey`` does not)."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    counter = itertools.count() if seconds is not None else iter(range(n))
    latencies: list[float] = []
    statuses: list[int] = []
    errors: dict[int, int] = {}
    partial = 0

    async def worker() -> None:
        nonlocal partial
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for i in counter:
                if seconds is not None and time.perf_counter() - start > seconds:
                    break
                path, payload = request(i)
                data = json.dumps(payload, ensure_ascii=False).encode() if payload else b""
                method = "POST" if payload is not None else "GET"
                head = (
                    f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
                )
                t0 = time.perf_counter()
                writer.write(head.encode() + data)
                status, body = await read_response(reader)
                latencies.append((time.perf_counter() - t0) * 1000)
                statuses.append(status)
                if status >= 300:
                    errors[status] = errors.get(status, 0) + 1
                    if status == 429 and honour_retry_after:
                        await asyncio.sleep(json.loads(body)["error"]["retry_after_s"])
                        # the server may have closed the idle connection meanwhile (keep-alive)
                        writer.close()
                        reader, writer = await asyncio.open_connection(host, port)
                elif b'"partial":true' in body:
                    partial += 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    return LoadResult(
        len(statuses),
        concurrency,
        elapsed,
        errors,
        np.array(latencies),
        partial,
        np.array(statuses),
    )


def summary(result: LoadResult) -> dict[str, float]:
    return {
        "rps": result.rps,
        "p50_ms": result.percentile(50),
        "p95_ms": result.percentile(95),
        "p99_ms": result.percentile(99),
        "errors": float(sum(result.errors.values())),
    }
