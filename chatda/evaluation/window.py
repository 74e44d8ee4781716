"""Evaluation at serving speed: many queries in flight at once, as concurrent API requests are.

The dynamic batcher coalesces whatever is queued while the model computes, so an evaluation
that awaits one query at a time pays a whole model pass per query, while a window of queries in
flight shares passes. The window is bounded so memory and queueing stay bounded: a few batches'
worth keeps the next batch queued while one computes, and no query waits long behind the rest.

Latency stays a single query's latency: the first ``alone`` items run one at a time, with
nothing else in flight, so a timing taken inside ``fn`` on them means what it meant when the
whole evaluation was sequential. Queries timed under the window would measure the evaluation's
own load instead (their queueing grows with the window), which no serving number compares to.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar, cast

from tqdm import tqdm

T = TypeVar("T")
R = TypeVar("R")

LATENCY_SAMPLE = 100
"""Items run alone before the window opens: p50 and p95 (the fifth slowest) of 100 single
queries. Each costs a whole model pass, so on a loaded 2-core box 200 of them took longer than
the thousands that follow them through the window (issue #24)."""
WINDOW_BATCHES = 4
"""Queries in flight, in batches of the batcher's size: the next batches wait while one runs."""
QUEUE_TIMEOUT_S = 600.0
"""An evaluation's queued query has no SLA to miss; only a stuck model should end the run."""


async def map_windowed(
    fn: Callable[[T], Awaitable[R]],
    items: Sequence[T],
    window: int,
    alone: int = LATENCY_SAMPLE,
    desc: str = "queries",
) -> list[R]:
    """``[await fn(x) for x in items]``, in order, with up to ``window`` calls in flight after
    the first ``alone`` ran one by one; a progress bar on stderr. The first failure cancels
    the calls still in flight and is raised."""
    results: list[R | None] = [None] * len(items)
    with tqdm(total=len(items), desc=desc, unit="query", file=sys.stderr, leave=False) as bar:

        async def run(i: int) -> None:
            results[i] = await fn(items[i])
            bar.update()

        head = min(alone, len(items))
        for i in range(head):
            await run(i)
        pending = iter(range(head, len(items)))

        async def worker() -> None:
            for i in pending:  # shared: each index is taken by exactly one worker
                await run(i)

        async with asyncio.TaskGroup() as group:
            for _ in range(min(max(1, window), len(items) - head)):
                group.create_task(worker())
    return cast(list[R], results)
