"""Version names: unique per registry even when runs finish in the same minute or second."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from chatda.models.registry import ModelManifest, ModelRegistry
from train import runner


class _FrozenClock(datetime):
    @classmethod
    def now(cls, tz: object = None) -> _FrozenClock:  # type: ignore[override]
        return cls(2026, 12, 4, 18, 1, 7, tzinfo=UTC)


def test_a_taken_name_gets_seconds_then_a_counter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "datetime", _FrozenClock)
    registry = ModelRegistry(tmp_path)
    names = []
    for _ in range(4):
        name = runner.version_name("nli-sts", registry, "m")
        with registry.staging(ModelManifest(name="m", version=name, dim=4, max_seq_length=8)):
            pass
        names.append(name)
    assert names == [
        "nli-sts-20261204T1801",
        "nli-sts-20261204T180107",
        "nli-sts-20261204T180107-2",
        "nli-sts-20261204T180107-3",
    ]
