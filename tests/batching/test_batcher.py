"""The dynamic batcher with the real model: coalescing, order, post-steps, deadlines, shedding."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
import torch

from chatda.batching.batcher import DynamicBatcher
from chatda.batching.errors import DeadlineExceeded, Overloaded
from chatda.models.encoder import Encoder

QUERIES = [
    f"{word} 방법 {i}" for i, word in enumerate(["송금", "환전", "대출", "적금", "카드"] * 8)
]
LONG = ["긴 문서입니다. " * 60 + str(i) for i in range(48)]


class CountingBatcher(DynamicBatcher):
    """The real batcher, recording the size of every model pass (a probe, not a mock)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.passes: list[int] = []

    async def _run(self) -> None:
        original = self._take

        def take():
            items = original()
            if items:
                self.passes.append(len(items))
            return items

        self._take = take  # type: ignore[method-assign]
        await super()._run()


@pytest.fixture
async def batcher(encoder: Encoder):
    b = CountingBatcher(
        encoder, max_batch_size=64, max_batch_tokens=16384, queue_limit=4096, default_timeout_s=120
    )
    await b.start()
    yield b
    await b.close()


async def test_concurrent_requests_share_passes_and_keep_order(batcher, encoder) -> None:
    expected = encoder.encode(QUERIES, "query")
    results = await asyncio.gather(*(batcher.encode([q], "query") for q in QUERIES))
    got = np.vstack(results)
    assert np.allclose(got, expected, atol=1e-4)
    assert len(batcher.passes) < len(QUERIES) / 2, batcher.passes
    assert max(batcher.passes) > 1


async def test_multi_text_request_keeps_input_order(batcher, encoder) -> None:
    mixed = ["짧다", "조금 더 긴 문장입니다 " * 5, "중간 길이 문장", "a"]
    got = await batcher.encode(mixed, "passage")
    assert np.allclose(got, encoder.encode(mixed, "passage"), atol=1e-4)


async def test_request_larger_than_a_batch_is_split(encoder) -> None:
    b = CountingBatcher(encoder, max_batch_size=8, default_timeout_s=120)
    try:
        texts = QUERIES[:20]
        got = await b.encode(texts, "query")
        assert np.allclose(got, encoder.encode(texts, "query"), atol=1e-4)
        assert b.passes == [8, 8, 4]
    finally:
        await b.close()


async def test_token_budget_bounds_padded_batch(encoder) -> None:
    b = CountingBatcher(encoder, max_batch_size=64, max_batch_tokens=1024, default_timeout_s=120)
    try:
        await b.encode(LONG[:16], "passage")
        width = len(encoder.tokenize(LONG[:1], "passage")[0])
        assert max(b.passes) * width <= 1024
        assert sum(b.passes) == 16
    finally:
        await b.close()


async def test_post_step_scores_whole_batch_in_one_call(batcher, encoder) -> None:
    matrix = torch.from_numpy(encoder.encode(["송금", "환전"], "query"))
    calls: list[int] = []

    def score(emb: torch.Tensor, contexts: list[str]) -> list[tuple[int, str]]:
        calls.append(emb.shape[0])
        return list(zip((emb.float() @ matrix.T).argmax(dim=1).tolist(), contexts, strict=True))

    texts = ["송금하고 싶어요", "환전 어디서 해", "돈 보내기", "달러로 바꾸기"] * 4
    gate = batcher.submit(LONG[:8], "passage")  # keeps the model busy so the queries pile up
    results = await asyncio.gather(
        gate, *(batcher.submit([t], "query", post_step=score, context=t) for t in texts)
    )
    best = [r.extras[0][0] for r in results[1:]]
    assert best[:2] == [0, 1]
    assert [r.extras[0][1] for r in results[1:]] == texts
    assert sum(calls) == len(texts)
    assert len(calls) < len(texts)


async def test_deadline_expired_in_queue_fails_only_that_request(batcher) -> None:
    busy = asyncio.ensure_future(batcher.encode(LONG, "passage"))
    await asyncio.sleep(0.01)
    late = batcher.encode(["너무 늦은 요청"], "query", deadline=time.monotonic() + 0.001)
    fine = batcher.encode(["제때 온 요청"], "query", deadline=time.monotonic() + 30)
    late_res, fine_res, busy_res = await asyncio.gather(late, fine, busy, return_exceptions=True)
    assert isinstance(late_res, DeadlineExceeded)
    assert isinstance(fine_res, np.ndarray) and fine_res.shape == (1, 384)
    assert isinstance(busy_res, np.ndarray) and busy_res.shape == (len(LONG), 384)


async def test_full_queue_rejects_immediately(encoder) -> None:
    b = DynamicBatcher(encoder, max_batch_size=4, queue_limit=8, default_timeout_s=120)
    try:
        tasks = [asyncio.ensure_future(b.encode([q], "query")) for q in QUERIES[:30]]
        results = await asyncio.gather(*tasks, return_exceptions=True)
        rejected = [r for r in results if isinstance(r, Overloaded)]
        served = [r for r in results if isinstance(r, np.ndarray)]
        assert rejected and served
        assert all(r.retry_after_s > 0 for r in rejected)
    finally:
        await b.close()


async def test_cancelled_caller_does_not_break_others(batcher, encoder) -> None:
    busy = asyncio.ensure_future(batcher.encode(LONG[:16], "passage"))
    await asyncio.sleep(0.01)
    victims = [asyncio.ensure_future(batcher.encode([q], "query")) for q in QUERIES[:10]]
    await asyncio.sleep(0)
    victims[3].cancel()
    victims[7].cancel()
    results = await asyncio.gather(*victims, busy, return_exceptions=True)
    assert isinstance(results[3], asyncio.CancelledError)
    expected = encoder.encode(QUERIES[:10], "query")
    for i, r in enumerate(results[:10]):
        if i in (3, 7):
            continue
        assert np.allclose(r[0], expected[i], atol=1e-4)


async def test_empty_input_returns_empty(batcher) -> None:
    out = await batcher.encode([], "query")
    assert out.shape == (0, 384)


async def test_unknown_kind_is_an_error(batcher) -> None:
    with pytest.raises(ValueError, match="unknown text kind"):
        await batcher.encode(["x"], "document")  # type: ignore[arg-type]
