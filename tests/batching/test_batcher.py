"""The dynamic batcher with the real model: coalescing, order, post-steps, deadlines, shedding."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
import torch

from chatda.batching.batcher import DynamicBatcher
from chatda.batching.errors import DeadlineExceeded, Overloaded, TooLarge
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


async def test_request_that_cannot_make_its_deadline_fails_alone(batcher) -> None:
    busy = asyncio.ensure_future(batcher.encode(LONG, "passage"))
    await asyncio.sleep(0.01)
    late = batcher.encode(["너무 늦은 요청"], "query", deadline=time.monotonic() + 0.001)
    fine = batcher.encode(["제때 온 요청"], "query", deadline=time.monotonic() + 30)
    late_res, fine_res, busy_res = await asyncio.gather(late, fine, busy, return_exceptions=True)
    assert isinstance(late_res, Overloaded)  # the running pass alone outlasts its deadline
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


async def _outcome(coro) -> tuple[object, float]:
    """What a request ended with, and when (monotonic)."""
    try:
        result: object = await coro
    except Exception as exc:
        result = exc
    return result, time.monotonic()


async def test_request_the_queue_ahead_dooms_is_refused_at_once(encoder) -> None:
    b = DynamicBatcher(encoder, max_batch_size=8, default_timeout_s=120)
    try:
        busy = asyncio.ensure_future(b.encode(LONG[:32], "passage"))  # four passes ahead
        await asyncio.sleep(0)
        with pytest.raises(Overloaded, match="cannot answer in time") as refused:
            await b.encode(["지금 당장"], "query", deadline=time.monotonic() + 0.001)
        assert not busy.done()  # refused before a single pass ended, not failed after it
        assert refused.value.retry_after_s > 0
        roomy = await b.encode(["여유 있게"], "query", deadline=time.monotonic() + 600)
        assert roomy.shape == (1, 384) and busy.done()
    finally:
        await b.close()


async def test_idle_batcher_admits_even_a_tight_deadline(encoder) -> None:
    """Refusing with nothing ahead would freeze the learnt pass time where a burst left it."""
    b = DynamicBatcher(encoder, max_batch_size=8, default_timeout_s=120)
    try:
        await b.encode(LONG[:8], "passage")  # a slow pass: the learnt pass time goes up
        got = await b.encode(["짧은 질의"], "query", deadline=time.monotonic() + 60)
        assert got.shape == (1, 384)
    finally:
        await b.close()


class TimedBatcher(DynamicBatcher):
    """The real batcher, recording when each pass was delivered (a probe, not a mock)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.delivered: list[float] = []

    def _deliver(self, items, embeddings, extras) -> None:  # type: ignore[override]
        super()._deliver(items, embeddings, extras)
        self.delivered.append(time.monotonic())


async def test_queued_request_fails_at_its_deadline_not_after_the_running_pass(encoder) -> None:
    b = TimedBatcher(encoder, max_batch_size=8, default_timeout_s=120)
    try:
        # an idle batcher admits it; three passes of long passages, each far over 50 ms
        result, failed_at = await _outcome(
            b.encode(LONG[:24], "passage", deadline=time.monotonic() + 0.05)
        )
        assert isinstance(result, DeadlineExceeded)
        while not b.delivered:
            await asyncio.sleep(0.01)
        assert failed_at < b.delivered[0]  # told at its deadline, not when a pass ended
    finally:
        await b.close()


async def test_request_in_a_pass_that_ends_late_fails_at_its_deadline(encoder) -> None:
    b = DynamicBatcher(encoder, max_batch_size=64, default_timeout_s=120)
    try:
        rider = asyncio.ensure_future(  # admitted by an idle batcher, then shares the long pass
            _outcome(b.encode(["같이 타는 질의"], "query", deadline=time.monotonic() + 0.05))
        )
        busy = asyncio.ensure_future(_outcome(b.encode(LONG[:24], "passage")))
        (rider_res, rider_at), (busy_res, busy_at) = await asyncio.gather(rider, busy)
        assert isinstance(rider_res, DeadlineExceeded)
        assert isinstance(busy_res, np.ndarray) and busy_res.shape == (24, 384)
        assert rider_at < busy_at
    finally:
        await b.close()


async def test_saturated_batcher_sheds_at_once_and_answers_by_the_deadline(encoder) -> None:
    """Far more concurrent requests than the deadline allows: the excess is refused before any
    pass ends, the rest are answered, and nothing comes back later than its deadline plus a
    pass (a margin relative to this machine's own speed, not a fixed number)."""
    b = CountingBatcher(encoder, max_batch_size=8, default_timeout_s=120)
    try:
        for n in (8, 1, 4, 8, 2, 8, 6, 8):  # learn what a pass costs
            await b.encode(QUERIES[:n], "query")
        texts = [f"{q} 동시 {i}" for i, q in enumerate(QUERIES * 10)]
        tokens = [len(ids) for ids in encoder.tokenize(texts, "query")]
        pass_s = b.cost.seconds(8 * max(tokens), 1)
        deadline_s = b.cost.seconds(int(160 * np.mean(tokens)), 20)  # ~160 of the 400 fit
        started = time.monotonic()
        results = await asyncio.gather(
            *(_outcome(b.encode([t], "query", deadline=started + deadline_s)) for t in texts)
        )
        refused = [at for r, at in results if isinstance(r, Overloaded)]
        served = [at for r, at in results if isinstance(r, np.ndarray)]
        assert refused and served, {type(r).__name__ for r, _ in results}
        assert max(refused) < min(served)  # refused at the door, before the first pass ended
        latest = max(at for _, at in results)
        assert latest <= started + deadline_s + max(pass_s, 0.5)
        assert len(served) >= 8  # shedding did not starve the model
    finally:
        await b.close()


async def test_too_large_alone_is_refused_at_once_and_late_behind_the_queue_is_429(
    encoder,
) -> None:
    """The decision: a request its own measured passes put past its deadline is ``TooLarge``
    (its caller is told to send less) before it is queued; one that fits alone but not behind
    the queue is ``Overloaded`` (429, retry later); a caller that did not ask is admitted."""
    b = DynamicBatcher(encoder, max_batch_size=8, max_batch_tokens=4096, default_timeout_s=120)
    try:
        b.cost.observe(4096, 2.0, longest=512)  # measured: 8 rows of 512 tokens took 2 s
        now = time.monotonic()
        with pytest.raises(TooLarge) as refused:
            b.admit_alone(64, now + 2.2, 64 * 512, 512)  # 8 such passes: >= 16 s
        assert refused.value.needed_s == pytest.approx(16.0)
        assert refused.value.budget_s == pytest.approx(2.2, abs=0.05)
        message = str(refused.value)
        for fragment in ("64 texts (32768 tokens)", "~16000 ms", "fewer or shorter", "about 8"):
            assert fragment in message, message
        assert b.queued == 0
        b.admit(64, now + 2.0, 64 * 512)  # the queue ahead (none) makes it no later
        b.admit_alone(4, now + 2.0, 4 * 512, 512)  # fits alone: >= 1 s
        b.admit_alone(64, now + 2.0, 64 * 300, 300)  # rows shorter than any measured
        with pytest.raises(TooLarge, match="at most 4096 texts"):
            b.admit_alone(5000, now + 600, 5000 * 8, 8)

        busy = asyncio.ensure_future(b.encode([LONG[0]] * 64, "passage"))  # 8 passes ahead
        await asyncio.sleep(0)
        texts = ["가 " * 700] * 2  # 1,024 tokens: >= 0.5 s alone
        with pytest.raises(Overloaded, match="cannot answer in time") as late:
            await b.submit(texts, deadline=time.monotonic() + 1.5, refuse_oversized=True)
        assert late.value.retry_after_s > 0
        busy.cancel()
    finally:
        await b.close()


async def test_expired_request_is_not_computed_past_the_pass_it_was_in(encoder) -> None:
    """Admitted (nothing measured yet), then timed out: its rows still queued are dropped
    before the next pass, so only the pass already running when it expired is spent on it."""
    b = CountingBatcher(encoder, max_batch_size=8, default_timeout_s=120)
    try:
        with pytest.raises(DeadlineExceeded):
            await b.encode(LONG[:32], "passage", deadline=time.monotonic() + 0.05)
        small = await b.encode(["짧은 질의"], "query")  # queued behind the pass running then
        assert small.shape == (1, 384)
        assert b.passes == [8, 1], b.passes
    finally:
        await b.close()
