"""The pass cost model admission prices queued work with (pure: no model needed)."""

from __future__ import annotations

import pytest

from chatda.batching.cost import PassCost


def test_learns_the_fixed_and_the_per_token_part() -> None:
    """Passes of many sizes outweigh the prior (a 25 % dearer token): within 1 %."""
    cost = PassCost()
    for tokens in [10, 640, 2000, 10, 320, 3200, 64, 1280] * 5:
        cost.observe(tokens, 0.05 + 0.0004 * tokens)
    assert cost.overhead_s == pytest.approx(0.05, rel=0.01)
    assert cost.token_s == pytest.approx(0.0004, rel=0.01)
    # one short query, then a full batch: neither priced like the other
    assert cost.seconds(10, 1) == pytest.approx(0.054, rel=0.01)
    assert cost.seconds(64 * 50, 1) == pytest.approx(1.33, rel=0.01)


def test_follows_a_machine_that_slows_down() -> None:
    cost = PassCost()
    for tokens in [10, 640, 2000, 320] * 10:
        cost.observe(tokens, 0.01 + 0.0001 * tokens)
    for tokens in [10, 640, 2000, 320] * 15:
        cost.observe(tokens, 0.04 + 0.0004 * tokens)
    assert cost.seconds(1000, 1) == pytest.approx(0.44, rel=0.05)


def test_passes_all_alike_leave_the_per_token_part_to_the_prior() -> None:
    """Tiny passes say nothing about a large one; pricing it per token from them would refuse
    every burst, and a refused burst never runs the pass that would teach the difference.
    Here the tiny passes even say longer is cheaper: the per-token part is dropped."""
    cost = PassCost()
    for tokens, seconds in [(12, 0.42), (13, 0.38), (12, 0.41), (14, 0.37)] * 5:
        cost.observe(tokens, seconds)
    assert cost.seconds(12, 1) == pytest.approx(0.395, rel=0.05)
    assert cost.seconds(64 * 12, 1) < 0.395 + 64 * 12 * PassCost().token_s


def test_noise_between_short_passes_does_not_price_a_long_one() -> None:
    """The re-index test's traffic: for minutes only 8- and 9-token passes, the 9-token ones
    slower (they carry another post-step). A line through them rises 25 ms a token; it priced
    the next 1,088-token catalog pass (0.5 s here) at 21 s and refused every search behind it."""
    cost = PassCost()
    for tokens in [1088, 960, 896] * 2:  # the last catalog passes, long forgotten by the end
        cost.observe(tokens, 0.01 + 0.0005 * tokens)
    for _ in range(150):
        cost.observe(8, 0.02)
        cost.observe(9, 0.045)
    assert cost.seconds(9, 1) == pytest.approx(0.0325, abs=0.01)
    assert cost.seconds(1088, 1) < 1.0


def test_passes_needed_respect_both_batch_limits() -> None:
    cost = PassCost()
    assert cost.passes(0, 0, 64, 16384) == 0
    assert cost.passes(65, 650, 64, 16384) == 2
    assert cost.passes(10, 20000, 64, 16384) == 2


def test_least_seconds_rests_on_measured_passes_only() -> None:
    """The floor a 413 rests on: never the prior (a CPU's price, far too dear on a GPU), only
    a measured pass with rows no longer and at least as many padded tokens as the request's."""
    cost = PassCost()
    assert cost.least_seconds(131072, 512, 16384) is None
    cost.observe(16384, 6.4)  # a pass whose rows are not known teaches the fit only
    assert cost.least_seconds(131072, 512, 16384) is None
    cost.observe(16384, 6.4, longest=512)  # 32 rows of 512 tokens
    assert cost.least_seconds(131072, 512, 16384) == pytest.approx(51.2)
    assert cost.least_seconds(4096, 512, 4096) == pytest.approx(1.6)  # a smaller pass costs more
    assert cost.least_seconds(6000, 20, 1280) is None  # shorter rows cost less per token
    assert cost.least_seconds(40000, 512, 20000) is None  # a larger pass costs less per token
    cost.observe(16384, 12.8, longest=512)  # a slow pass (a busy machine) does not raise it
    cost.observe(16384, 4.8, longest=512)  # a faster one lowers it
    assert cost.least_seconds(131072, 512, 16384) == pytest.approx(38.4)
    cost.observe(9000, 4.5, longest=300)  # slower per token, but the only measure of its shape
    assert cost.least_seconds(30000, 300, 9000) == pytest.approx(15.0)
    cost.forget_fastest()  # another model serves
    assert cost.least_seconds(131072, 512, 16384) is None
