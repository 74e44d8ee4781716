"""Weight interpolation: exact arithmetic, refused mismatches, a registered, evaluated version."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from chatda.models.registry import ModelRegistry, ModelVersion
from cli.main import app
from tests.fixtures.model import MODEL_NAME, link_model
from train.evaluate import EvalSuite, evaluator_for
from train.merge import interpolate, merge
from train.runner import register

PERTURBED = "0.model.encoder.layer.0.attention.self.query.weight"


def test_interpolation_is_linear_and_copies_integer_buffers() -> None:
    tuned = {"w": torch.tensor([4.0, 8.0]), "ids": torch.tensor([1, 2])}
    other = {"w": torch.tensor([0.0, 0.0]), "ids": torch.tensor([5, 6])}
    merged = interpolate(tuned, other, 0.25)
    assert torch.equal(merged["w"], torch.tensor([1.0, 2.0]))
    assert torch.equal(merged["ids"], tuned["ids"])
    assert torch.equal(interpolate(tuned, other, 1.0)["w"], tuned["w"])
    assert torch.equal(interpolate(tuned, other, 0.0)["w"], other["w"])


@pytest.mark.parametrize(
    ("other", "weight", "message"),
    [
        ({"v": torch.zeros(2)}, 0.5, "differ in parameters"),
        ({"w": torch.zeros(3)}, 0.5, "shape"),
        ({"w": torch.zeros(2)}, 1.5, "weight must be in"),
    ],
)
def test_mismatches_are_refused(
    other: dict[str, torch.Tensor], weight: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        interpolate({"w": torch.ones(2)}, other, weight)


@pytest.fixture
def tuned(base_model: ModelVersion, tmp_registry: ModelRegistry) -> ModelVersion:
    """The base with one attention matrix moved: a stand-in for a fine-tuned child."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(base_model.path), device="cpu")
    with torch.no_grad():
        model.state_dict()[PERTURBED].add_(0.05)
    return register(tmp_registry, base_model, model, "nli-sts", {"task": "perturbed"})


def _weights(version: ModelVersion) -> dict[str, torch.Tensor]:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(version.path), device="cpu").state_dict()


def test_merge_registers_the_interpolated_version_with_its_table(
    base_model: ModelVersion,
    tuned: ModelVersion,
    tmp_registry: ModelRegistry,
    tiny_suite: EvalSuite,
) -> None:
    evaluate = evaluator_for(tmp_registry, tuned, tiny_suite, "cpu")
    version = merge(tmp_registry, tuned, base_model, 0.25, evaluate)

    m = version.manifest
    assert m.version.startswith("merge-") and m.parent == tuned.manifest.ref
    assert m.training == {
        "task": "merge",
        "merged": {tuned.manifest.ref: 0.25, base_model.manifest.ref: 0.75},
        "method": "linear weight interpolation (WiSE-FT)",
    }
    assert m.prompts == base_model.manifest.prompts
    assert m.max_seq_length == base_model.manifest.max_seq_length
    assert m.evaluation is not None and set(m.evaluation["metrics"]) >= {"korquad_r5"}

    merged, base = _weights(version), _weights(base_model)
    assert torch.allclose(merged[PERTURBED], base[PERTURBED] + 0.0125, atol=1e-6)
    untouched = "0.model.encoder.layer.1.output.dense.weight"
    assert torch.equal(merged[untouched], base[untouched])


def test_cli_merges_toward_the_parent_by_default(
    base_model: ModelVersion,
    tuned: ModelVersion,
    tmp_registry: ModelRegistry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chatda.settings import get_settings

    link_model(tmp_registry, base_model, "base")  # the tuned model's parent, in this registry
    monkeypatch.setenv("CHATDA_MODELS_DIR", str(tmp_registry.root))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        ref = tuned.manifest.ref
        bad = runner.invoke(app, ["train", "merge", "--model", ref, "--weight", "1.5"])
        assert bad.exit_code == 2, bad.output
        missing = runner.invoke(app, ["train", "merge", "--model", ref, "--with", "nope"])
        assert missing.exit_code == 2
        assert "e5-small-ko@nope not found" in missing.output

        done = runner.invoke(app, ["train", "merge", "--model", ref, "--skip-eval", "--json"])
        assert done.exit_code == 0, done.output
    finally:
        get_settings.cache_clear()
    merged = [
        v for v in tmp_registry.versions(MODEL_NAME) if v.manifest.version.startswith("merge-")
    ]
    assert len(merged) == 1
    assert merged[0].manifest.training is not None
    assert merged[0].manifest.training["merged"] == {ref: 0.5, f"{MODEL_NAME}@base": 0.5}
