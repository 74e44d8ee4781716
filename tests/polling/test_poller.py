"""``chatda.polling.Poller``: rounds repeat, a failed round does not end the loop, close ends it."""

from __future__ import annotations

import asyncio

import pytest

from chatda.polling import Poller


async def test_a_failed_round_is_reported_and_the_next_one_runs() -> None:
    rounds: list[int] = []
    failures: list[Exception] = []
    three = asyncio.Event()

    async def tick() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise RuntimeError("database hiccup")
        if len(rounds) == 3:
            three.set()

    poller = Poller("test round", tick, 0.01, on_failure=failures.append)
    poller.start()
    await asyncio.wait_for(three.wait(), timeout=5)
    await poller.close()
    assert [str(e) for e in failures] == ["database hiccup"]
    assert not poller.running


async def test_close_stops_the_rounds() -> None:
    count = 0

    async def tick() -> None:
        nonlocal count
        count += 1

    poller = Poller("test round", tick, 0.01)
    poller.start()
    while count < 2:
        await asyncio.sleep(0.01)
    await poller.close()
    stopped_at = count
    await asyncio.sleep(0.05)
    assert count == stopped_at


async def test_close_cancels_a_round_in_progress() -> None:
    started = asyncio.Event()

    async def tick() -> None:
        started.set()
        await asyncio.sleep(60)

    poller = Poller("test round", tick, 0.01)
    poller.start()
    await asyncio.wait_for(started.wait(), timeout=5)
    await asyncio.wait_for(poller.close(), timeout=1)
    assert not poller.running


async def test_start_twice_refuses_and_close_before_start_is_a_no_op() -> None:
    async def tick() -> None:
        return None

    poller = Poller("test round", tick, 1.0)
    await poller.close()
    poller.start()
    with pytest.raises(RuntimeError, match="already running"):
        poller.start()
    await poller.close()
