"""Dynamic batching: concurrent encode requests share one model pass.

The reference design got >5x QPS per pod from this alone, and removed a vector-serving tier by
scoring in the same pass (post-steps). While the model thread computes one batch, new requests
queue; the next batch takes whatever is waiting, so batch size adapts to load with no timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from chatda.batching import metrics
from chatda.batching.cost import PassCost
from chatda.batching.errors import BatcherClosed, DeadlineExceeded, Overloaded, TooLarge
from chatda.models.encoder import Encoder, Kind

log = logging.getLogger(__name__)


class PostStep(Protocol):
    """Runs on the batch's embeddings, on the model's device, in the model thread.

    Returns one result per row. Rows of one batch that carry the same post-step object are
    handed to it together, so e.g. a whole batch of queries is scored with one matrix product;
    ``contexts`` carries each row's request-specific inputs (filters, lexical scores, top-k).
    """

    def __call__(self, embeddings: torch.Tensor, contexts: Sequence[Any]) -> Sequence[Any]: ...


@dataclass
class Encoded:
    embeddings: np.ndarray
    extras: list[Any] | None
    tokens: int = 0


@dataclass
class _Request:
    n: int
    kind: Kind
    encoder: Encoder
    post_step: PostStep | None
    context: Any
    deadline: float
    future: asyncio.Future[Encoded]
    enqueued: float
    rows: np.ndarray | None = None
    extras: list[Any] | None = None
    remaining: int = 0
    tokens: int = 0
    queued: int = 0
    """Items of this request still in the queue (counted in ``DynamicBatcher.queued``)."""
    queued_tokens: int = 0
    expiry: asyncio.TimerHandle | None = None

    def alive(self) -> bool:
        return not self.future.done()


@dataclass
class _Item:
    request: _Request
    index: int
    ids: list[int]


class DynamicBatcher:
    def __init__(
        self,
        encoder: Encoder,
        max_batch_size: int = 64,
        max_batch_tokens: int = 16384,
        queue_limit: int = 4096,
        default_timeout_s: float = 2.0,
    ) -> None:
        self.encoder = encoder
        self.max_batch_size = max(1, max_batch_size)
        self.max_batch_tokens = max_batch_tokens
        self.queue_limit = queue_limit
        self.default_timeout_s = default_timeout_s
        self._queue: deque[_Item] = deque()
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chatda-model")
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.cost = PassCost()
        """What a pass costs, learnt from the passes: admission and Retry-After price with it."""
        self._pending = 0
        self._pending_tokens = 0
        self._pass_ends: float | None = None

    @property
    def queued(self) -> int:
        """Texts waiting for a pass, counting only requests whose callers still wait."""
        return self._pending

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="batcher")

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while self._queue:
            item = self._queue.popleft()
            if item.request.alive():
                item.request.future.set_exception(BatcherClosed("batcher closed"))
        self._executor.shutdown(wait=True)

    def swap_encoder(self, encoder: Encoder) -> None:
        """The default model of later requests; a queued request keeps the one it came with."""
        if encoder is not self.encoder:
            self.cost.forget_fastest()
        self.encoder = encoder

    async def encode(
        self, texts: Sequence[str], kind: Kind = "query", deadline: float | None = None
    ) -> np.ndarray:
        return (await self.submit(texts, kind, deadline=deadline)).embeddings

    async def submit(
        self,
        texts: Sequence[str],
        kind: Kind = "query",
        *,
        deadline: float | None = None,
        post_step: PostStep | None = None,
        context: Any = None,
        encoder: Encoder | None = None,
        refuse_oversized: bool = False,
    ) -> Encoded:
        """Queue texts; ``deadline`` is an absolute ``time.monotonic()`` value.

        With a ``post_step``, ``Encoded.extras`` holds its result for each text, computed in the
        same pass; ``context`` is handed to the post-step with each of this request's rows.
        ``encoder`` pins the model (default: the batcher's current one): while the serving model
        switches, a request whose post-step was built for the old model is still encoded by it,
        and a batch only ever holds requests of one model. ``refuse_oversized``: ask
        ``admit_alone`` first, for callers that can tell their client to send less.
        """
        encoder = encoder or self.encoder
        if self._closed:
            raise BatcherClosed("batcher closed")
        if self._task is None:
            await self.start()
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        deadline = deadline if deadline is not None else now + self.default_timeout_s
        if not texts:
            self.admit(0, deadline)
            return Encoded(np.zeros((0, encoder.dim), np.float32), [] if post_step else None)
        ids = encoder.tokenize(texts, kind)
        tokens = sum(len(i) for i in ids)
        if refuse_oversized:
            self.admit_alone(len(texts), deadline, tokens, max(len(i) for i in ids))
        self.admit(len(texts), deadline, tokens)
        future: asyncio.Future[Encoded] = loop.create_future()
        request = _Request(
            n=len(texts),
            kind=kind,
            encoder=encoder,
            post_step=post_step,
            context=context,
            deadline=deadline,
            future=future,
            enqueued=now,
            remaining=len(texts),
        )
        request.rows = np.empty((len(texts), encoder.dim), dtype=np.float32)
        request.extras = [None] * len(texts) if post_step is not None else None
        items = [_Item(request, i, row) for i, row in enumerate(ids)]
        request.tokens = sum(len(item.ids) for item in items)
        self._queue.extend(items)
        request.queued = len(items)
        request.queued_tokens = request.tokens
        self._pending += len(items)
        self._pending_tokens += request.tokens
        request.expiry = loop.call_later(max(0.0, deadline - now), self._expire, request)
        future.add_done_callback(lambda _: self._forget(request))
        self._wakeup.set()
        return await future

    def admit(self, n: int, deadline: float, tokens: int = 0) -> None:
        """Raise ``Overloaded`` now if ``n`` more texts (``tokens`` in all, when known) cannot
        be answered by ``deadline``.

        Refusing at the door is what keeps an overloaded process fast: a request the queue
        ahead of it already dooms would otherwise wait its whole deadline and then fail (or be
        computed for a caller that gave up), taking a pass from one that could still make it.
        The estimate is the rest of the running pass plus the passes the queued texts and this
        request's own need, priced by ``cost``. An idle batcher admits everything: the
        request's own pass is the best any caller can get, and refusing it would leave the cost
        (learnt from passes) stuck wherever the last burst left it. Callers with several
        sources (search) may ask before they start any work; ``submit`` asks again.
        """
        if self._pending + n > self.queue_limit:
            metrics.REJECTED.labels("overloaded").inc()
            raise Overloaded(
                f"encoder queue full ({self._pending}/{self.queue_limit} texts waiting)",
                self._retry_after(),
            )
        now = time.monotonic()
        ready_at = now + self._wait_estimate(now, n, tokens)
        if n and ready_at > deadline and (self._pending or self._pass_ends is not None):
            metrics.REJECTED.labels("unmeetable").inc()
            raise Overloaded(
                f"encoder cannot answer in time: ~{(ready_at - now) * 1000:.0f} ms of work "
                f"ahead ({self._pending} texts waiting), "
                f"{max(0.0, deadline - now) * 1000:.0f} ms left",
                self._retry_after(),
            )

    def admit_alone(self, n: int, deadline: float, tokens: int, longest: int) -> None:
        """Raise ``TooLarge`` now if ``n`` texts (``tokens`` in all, the longest ``longest``)
        could not be answered by ``deadline`` even alone, on an idle encoder.

        Admitted, such a request holds the encoder for a caller told 504 at its deadline, and
        refused with 429 it comes back after Retry-After to the same fate, forever. Priced on
        this process's own measure (``PassCost.least_seconds``: the fastest pass it has seen
        with rows no longer than this request's longest and at least as many padded tokens as
        its passes), never on the fit's prior: a size not measured yet is admitted, its first
        pass measures it, and the same request is refused from then on. Only callers that can
        tell their client to send less ask (``/v1/embeddings``); a search answers from its
        other sources instead.
        """
        budget = max(0.0, deadline - time.monotonic())
        if n > self.queue_limit:
            metrics.REJECTED.labels("too_large").inc()
            raise TooLarge(
                f"request too large: {n} texts, more than the encoder queue holds "
                f"({self.queue_limit}); send at most {self.queue_limit} texts per request",
                math.inf,
                budget,
            )
        if not n or not tokens:
            return
        passes = self.cost.passes(n, tokens, self.max_batch_size, self.max_batch_tokens)
        needed = self.cost.least_seconds(tokens, longest, tokens / passes)
        if needed is None or needed <= budget:
            return
        metrics.REJECTED.labels("too_large").inc()
        fits = int(n * budget / needed)
        advice = (
            f"about {fits} texts of this length fit in one request"
            if fits
            else "not even one text of this length fits"
        )
        raise TooLarge(
            f"request too large for the encoder: {n} texts ({tokens} tokens) need at least "
            f"~{needed * 1000:.0f} ms of encoder time even with nothing else queued, over the "
            f"{budget * 1000:.0f} ms budget of a request; send fewer or shorter texts "
            f"({advice})",
            needed,
            budget,
        )

    def _wait_estimate(self, now: float, texts: int = 0, tokens: int = 0) -> float:
        """Seconds until ``texts`` more (``tokens`` in all) submitted now would be computed."""
        running = max(0.0, self._pass_ends - now) if self._pass_ends is not None else 0.0
        texts, tokens = self._pending + texts, self._pending_tokens + tokens
        passes = self.cost.passes(texts, tokens, self.max_batch_size, self.max_batch_tokens)
        return running + self.cost.seconds(tokens, passes)

    def _retry_after(self) -> float:
        return round(max(0.05, self._wait_estimate(time.monotonic())), 3)

    def _expire(self, request: _Request) -> None:
        """At its deadline, a request not yet answered fails at once: its caller learns then,
        not when the batcher next reaches it or finishes the pass it is in."""
        if request.alive():
            metrics.REJECTED.labels("deadline").inc()
            request.future.set_exception(
                DeadlineExceeded("deadline passed before the encoder answered")
            )

    def _forget(self, request: _Request) -> None:
        """The request is answered, failed or cancelled: its queued items no longer count."""
        self._pending -= request.queued
        self._pending_tokens -= request.queued_tokens
        request.queued = request.queued_tokens = 0
        if request.expiry is not None:
            request.expiry.cancel()

    def _take(self) -> list[_Item]:
        """Pop the next batch: FIFO, live requests of one model only, bounded by size and padded
        tokens."""
        now = time.monotonic()
        taken: list[_Item] = []
        longest = 0
        while self._queue and len(taken) < self.max_batch_size:
            item = self._queue[0]
            req = item.request
            if not req.alive():
                self._queue.popleft()
                continue
            if req.deadline <= now:  # its timer has not run yet: never compute it
                self._queue.popleft()
                self._expire(req)
                continue
            width = max(longest, len(item.ids))
            if taken and width * (len(taken) + 1) > self.max_batch_tokens:
                break
            if taken and req.encoder is not taken[0].request.encoder:
                break
            longest = width
            taken.append(self._queue.popleft())
            req.queued -= 1
            req.queued_tokens -= len(item.ids)
            self._pending -= 1
            self._pending_tokens -= len(item.ids)
        return taken

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            items = self._take()
            if not items:
                continue
            start = time.monotonic()
            longest = max(len(item.ids) for item in items)
            padded = len(items) * longest
            self._pass_ends = start + self.cost.seconds(padded, 1)
            for item in items:
                metrics.QUEUE_WAIT.observe(start - item.request.enqueued)
            try:
                embeddings, extras = await loop.run_in_executor(
                    self._executor, self._compute, items[0].request.encoder, items
                )
            except Exception as exc:  # the model failed: every caller in the batch learns why
                log.exception("batch of %d failed", len(items))
                for item in items:
                    if item.request.alive():
                        item.request.future.set_exception(exc)
                continue
            finally:
                self._pass_ends = None
            current = items[0].request.encoder is self.encoder  # measures the serving model
            self.cost.observe(padded, time.monotonic() - start, longest if current else 0)
            self._deliver(items, embeddings, extras)

    @staticmethod
    def _compute(encoder: Encoder, items: list[_Item]) -> tuple[np.ndarray, list[Any]]:
        began = time.perf_counter()
        order = sorted(range(len(items)), key=lambda i: len(items[i].ids))
        sorted_items = [items[i] for i in order]
        emb = encoder.embed_ids([it.ids for it in sorted_items])
        extras: list[Any] = [None] * len(items)
        groups: dict[int, tuple[PostStep, list[int]]] = {}
        for pos, it in enumerate(sorted_items):
            step = it.request.post_step
            if step is not None:
                groups.setdefault(id(step), (step, []))[1].append(pos)
        for step, positions in groups.values():
            contexts = [sorted_items[p].request.context for p in positions]
            results = step(emb[positions], contexts)
            for pos, res in zip(positions, results, strict=True):
                extras[order[pos]] = res
        out = np.empty((len(items), emb.shape[1]), dtype=np.float32)
        out[order] = emb.float().cpu().numpy()
        metrics.BATCH_SIZE.observe(len(items))
        metrics.BATCH_TOKENS.observe(len(items) * max(len(it.ids) for it in items))
        metrics.COMPUTE.observe(time.perf_counter() - began)
        return out, extras

    @staticmethod
    def _deliver(items: list[_Item], embeddings: np.ndarray, extras: list[Any]) -> None:
        for row, item in enumerate(items):
            req = item.request
            if not req.alive() or req.rows is None:
                continue
            req.rows[item.index] = embeddings[row]
            if req.extras is not None:
                req.extras[item.index] = extras[row]
            req.remaining -= 1
            if req.remaining == 0:
                req.future.set_result(Encoded(req.rows, req.extras, req.tokens))
