"""The pass cost model admission prices queued work with (pure: no model needed)."""

from __future__ import annotations

import pytest

from chatda.batching.cost import PassCost


def test_learns_the_fixed_and_the_per_token_part() -> None:
    cost = PassCost()
    for tokens in [10, 640, 2000, 10, 320, 3200, 64, 1280] * 5:
        cost.observe(tokens, 0.05 + 0.0004 * tokens)
    assert cost.overhead_s == pytest.approx(0.05, rel=1e-3)
    assert cost.token_s == pytest.approx(0.0004, rel=1e-3)
    # one short query, then a full batch: neither priced like the other
    assert cost.seconds(10, 1) == pytest.approx(0.054, rel=1e-3)
    assert cost.seconds(64 * 50, 1) == pytest.approx(1.33, rel=1e-3)


def test_follows_a_machine_that_slows_down() -> None:
    cost = PassCost()
    for tokens in [10, 640, 2000, 320] * 10:
        cost.observe(tokens, 0.01 + 0.0001 * tokens)
    for tokens in [10, 640, 2000, 320] * 15:
        cost.observe(tokens, 0.04 + 0.0004 * tokens)
    assert cost.seconds(1000, 1) == pytest.approx(0.44, rel=0.05)


def test_passes_all_alike_are_priced_per_pass() -> None:
    """Tiny passes say nothing about a large one; pricing it per token from them would refuse
    every burst, and a refused burst never runs the pass that would teach the difference."""
    cost = PassCost()
    for tokens, seconds in [(12, 0.42), (13, 0.38), (12, 0.41), (14, 0.37)] * 5:
        cost.observe(tokens, seconds)
    assert cost.token_s == 0.0
    assert cost.seconds(64 * 12, 1) == pytest.approx(0.395, rel=0.01)


def test_passes_needed_respect_both_batch_limits() -> None:
    cost = PassCost()
    assert cost.passes(0, 0, 64, 16384) == 0
    assert cost.passes(65, 650, 64, 16384) == 2
    assert cost.passes(10, 20000, 64, 16384) == 2
