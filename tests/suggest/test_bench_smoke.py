import random
import sys

import pytest

from bench import suggest_bench


def test_bench_runs_on_a_small_index(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["suggest_bench", "--entries", "300", "--queries", "120"])
    suggest_bench.main()
    table = capsys.readouterr().out
    assert "| all | 120 |" in table


def test_generated_entries_are_unique_and_deterministic() -> None:
    first = suggest_bench.make_entries(500, random.Random(1))
    again = suggest_bench.make_entries(500, random.Random(1))
    assert first == again
    assert len({entry.text for entry in first}) == 500
