"""A short NLI + STS run on hand-written pairs: the loss falls and a version is registered."""

from __future__ import annotations

from statistics import mean

from chatda.models.registry import ModelRegistry, ModelVersion
from train import nli_sts
from train.evaluate import METRICS, EvalSuite, evaluator_for
from train.runner import TrainConfig

from .conftest import PAIRS, TRIPLETS


def test_datasets_carry_the_manifest_query_prompt(base_model: ModelVersion) -> None:
    d = nli_sts.NliStsData(triplets=TRIPLETS[:2], sts_train=PAIRS[:2], sts_dev=[])
    sets = nli_sts.build_datasets(base_model.manifest, d)
    prompt = base_model.manifest.prompts.query
    assert sets["nli"].column_names == ["anchor", "positive", "negative"]
    assert all(
        text.startswith(prompt) for col in sets["nli"].column_names for text in sets["nli"][col]
    )
    assert sets["sts"]["sentence1"][0] == prompt + PAIRS[0].sentence1
    assert sets["sts"]["score"][0] == PAIRS[0].score / 5.0


def test_short_run_lowers_loss_and_registers_a_version(
    base_model: ModelVersion,
    tmp_registry: ModelRegistry,
    tiny_config: TrainConfig,
    tiny_suite: EvalSuite,
) -> None:
    d = nli_sts.NliStsData(triplets=TRIPLETS, sts_train=PAIRS, sts_dev=PAIRS)
    evaluate = evaluator_for(tmp_registry, base_model, tiny_suite, "cpu")
    version = nli_sts.train(tmp_registry, base_model, d, tiny_config, evaluate)

    m = version.manifest
    assert m.version.startswith("nli-sts-")
    assert m.parent == base_model.manifest.ref
    assert m.max_seq_length == base_model.manifest.max_seq_length
    assert m.prompts == base_model.manifest.prompts
    assert m.training is not None and m.evaluation is not None
    assert m.training["config"]["seed"] == tiny_config.seed
    assert m.training["data"] == {"nli_triplets": 8, "korsts_train_pairs": 8, "korsts_dev_pairs": 8}
    assert set(m.evaluation["metrics"]) == set(METRICS)
    assert set(m.evaluation["parent_metrics"]) == set(METRICS)
    curve = m.training["loss_curve"]
    assert len(curve) >= 6
    assert mean(curve[-2:]) < mean(curve[:2])
    assert [v.manifest.ref for v in tmp_registry.versions()] == [m.ref]
