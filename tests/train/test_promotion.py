"""Promotion gates on KorQuAD MRR@10 and Recall@5; --force overrides; nothing needs a model."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from chatda.models.registry import ModelManifest, ModelRegistry
from cli.main import app
from train.evaluate import store_metrics
from train.promotion import meets_gates, promote

NAME = "e5-small-ko"
SERVING = {"korquad_mrr10": 60.0, "korquad_r5": 80.0, "korsts_test": 77.0}


def _add(registry: ModelRegistry, version: str, metrics: dict[str, float] | None) -> None:
    evaluation: dict[str, Any] | None = {"metrics": metrics} if metrics else None
    manifest = ModelManifest(
        name=NAME, version=version, dim=384, max_seq_length=512, evaluation=evaluation
    )
    with registry.staging(manifest):
        pass


@pytest.fixture
def registry(tmp_registry: ModelRegistry) -> ModelRegistry:
    _add(tmp_registry, "base", None)
    store_metrics(tmp_registry, tmp_registry.get(NAME, "base"), SERVING)  # base: cached table
    tmp_registry.set_serving(NAME, "base")
    _add(tmp_registry, "better", {**SERVING, "korquad_mrr10": 61.0, "korsts_test": 80.0})
    _add(tmp_registry, "sts-only", {**SERVING, "korquad_r5": 79.5, "korsts_test": 83.0})
    _add(tmp_registry, "unevaluated", None)
    return tmp_registry


def test_equal_retrieval_passes_and_missing_numbers_fail() -> None:
    assert meets_gates(SERVING, SERVING) == (True, [])
    assert not meets_gates(None, SERVING)[0]
    assert not meets_gates(SERVING, None)[0]
    assert not meets_gates({"korquad_mrr10": 70.0}, SERVING)[0]


def test_better_candidate_is_promoted(registry: ModelRegistry) -> None:
    decision = promote(registry, registry.get(NAME, "better"))
    assert decision.allowed and decision.promoted
    assert registry.serving_version(NAME) == "better"


def test_retrieval_regression_is_refused_unless_forced(registry: ModelRegistry) -> None:
    refused = promote(registry, registry.get(NAME, "sts-only"))
    assert not refused.allowed and not refused.promoted
    assert "KorQuAD R@5 79.50 < serving 80.00" in refused.reasons
    assert registry.serving_version(NAME) == "base"

    forced = promote(registry, registry.get(NAME, "sts-only"), force=True)
    assert forced.promoted and not forced.allowed
    assert registry.serving_version(NAME) == "sts-only"


def test_unevaluated_candidate_is_refused(registry: ModelRegistry) -> None:
    assert not promote(registry, registry.get(NAME, "unevaluated")).promoted
    assert registry.serving_version(NAME) == "base"


def test_cli_promote_refuses_then_forces(
    registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chatda.settings import get_settings

    monkeypatch.setenv("CHATDA_MODELS_DIR", str(registry.root))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        refused = runner.invoke(app, ["model", "promote", "sts-only"])
        assert refused.exit_code == 1, refused.output
        assert "refused" in refused.output
        assert registry.serving_version(NAME) == "base"

        forced = runner.invoke(app, ["model", "promote", "sts-only", "--force"])
        assert forced.exit_code == 0, forced.output
        assert "(forced)" in forced.output
        assert registry.serving_version(NAME) == "sts-only"
    finally:
        get_settings.cache_clear()
