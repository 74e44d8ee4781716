"""Short NLI + paraphrase + STS runs on hand-written pairs: losses fall, a version is registered."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from statistics import mean

import pytest
import torch
from typer.testing import CliRunner

from chatda.models.registry import ModelRegistry, ModelVersion
from cli.main import app
from tests.fixtures.model import link_model
from train import nli_sts
from train.evaluate import METRICS, EvalSuite, evaluator_for
from train.runner import TrainConfig

from .conftest import PAIRS, PARAPHRASES, PASSAGES, QUERIES, TRIPLETS, write_nli_sts_data


def test_datasets_carry_the_manifest_query_prompt(base_model: ModelVersion) -> None:
    d = nli_sts.NliStsData(
        triplets=TRIPLETS[:2], sts_train=PAIRS[:2], sts_dev=[], paraphrases=PARAPHRASES[:2]
    )
    sets = nli_sts.build_datasets(base_model.manifest, d)
    prompt = base_model.manifest.prompts.query
    assert list(sets) == ["nli", "paraphrase", "sts"]
    assert sets["nli"].column_names == ["anchor", "positive", "negative"]
    assert sets["paraphrase"].column_names == ["anchor", "positive"]
    for name in ("nli", "paraphrase"):
        cols = sets[name].column_names
        assert all(text.startswith(prompt) for col in cols for text in sets[name][col])
    assert sets["paraphrase"]["positive"][1] == prompt + PARAPHRASES[1][1]
    assert sets["sts"]["sentence1"][0] == prompt + PAIRS[0].sentence1
    assert sets["sts"]["score"][0] == PAIRS[0].score / 5.0


@pytest.mark.parametrize(
    ("tasks", "sts_epochs", "expected"),
    [
        (["nli", "paraphrase", "sts"], 3.0, [(["nli", "paraphrase"], 1.0), (["sts"], 3.0)]),
        (["nli", "paraphrase", "sts"], 0.0, [(["nli", "paraphrase", "sts"], 1.0)]),
        (["sts"], 3.0, [(["sts"], 1.0)]),
        (["nli"], 3.0, [(["nli"], 1.0)]),
    ],
)
def test_stages_put_sts_after_the_ranking_tasks_only_when_asked(
    tasks: list[str], sts_epochs: float, expected: list[tuple[list[str], float]]
) -> None:
    config = TrainConfig(epochs=1.0, sts_epochs=sts_epochs)
    plan = nli_sts.stages(tasks, config)
    assert [(names, c.epochs) for names, c in plan] == expected
    assert all(c.learning_rate == config.learning_rate for _, c in plan)


def test_sequential_run_lowers_each_stage_loss_and_registers_a_version(
    base_model: ModelVersion,
    tmp_registry: ModelRegistry,
    tiny_config: TrainConfig,
    tiny_suite: EvalSuite,
) -> None:
    d = nli_sts.NliStsData(
        triplets=TRIPLETS, sts_train=PAIRS, sts_dev=PAIRS, paraphrases=PARAPHRASES
    )
    config = replace(tiny_config, sts_epochs=4.0)
    evaluate = evaluator_for(tmp_registry, base_model, tiny_suite, "cpu")
    version = nli_sts.train(tmp_registry, base_model, d, config, evaluate)

    m = version.manifest
    assert m.version.startswith("nli-sts-")
    assert m.parent == base_model.manifest.ref
    assert m.max_seq_length == base_model.manifest.max_seq_length
    assert m.prompts == base_model.manifest.prompts
    assert m.training is not None and m.evaluation is not None
    assert m.training["config"]["seed"] == tiny_config.seed
    assert m.training["data"] == {
        "nli_triplets": 8,
        "paraphrase_pairs": 8,
        "korsts_train_pairs": 8,
        "korsts_dev_pairs_trained": 0,
        "korsts_dev_pairs": 8,
        "anchor_texts": 0,
    }
    assert m.training["schedule"] == "sequential"
    assert "directions=query_to_doc+doc_to_query" in m.training["losses"]["paraphrase"]
    assert set(m.evaluation["metrics"]) == set(METRICS)
    assert set(m.evaluation["parent_metrics"]) == set(METRICS)
    first, second = m.training["stages"]
    assert (first["tasks"], second["tasks"]) == (["nli", "paraphrase"], ["sts"])
    assert m.training["steps"] == first["steps"] + second["steps"]
    for stage in (first, second):
        curve = stage["loss_curve"]
        assert len(curve) >= 6, stage
        assert mean(curve[-2:]) < mean(curve[:2]), stage
    assert "korsts-dev_spearman_cosine" in m.training["selection"]
    assert [v.manifest.ref for v in tmp_registry.versions()] == [m.ref]


def test_multitask_run_trains_every_task_in_one_stage(
    base_model: ModelVersion, tmp_registry: ModelRegistry, tiny_config: TrainConfig
) -> None:
    d = nli_sts.NliStsData(triplets=TRIPLETS, sts_train=PAIRS, sts_dev=[])
    version = nli_sts.train(tmp_registry, base_model, d, replace(tiny_config, sts_epochs=0.0))
    training = version.manifest.training
    assert training is not None
    assert training["schedule"] == "multitask"
    assert [s["tasks"] for s in training["stages"]] == [["nli", "sts"]]
    assert training["selection"] == {}


def test_caps_of_zero_take_nothing_and_none_takes_everything(tmp_path: Path) -> None:
    root = write_nli_sts_data(tmp_path)
    everything = nli_sts.load_data(root, seed=1, max_triplets=None, max_sts=None)
    assert everything.counts() == {
        "nli_triplets": 3,
        "paraphrase_pairs": 2,
        "korsts_train_pairs": 3,
        "korsts_dev_pairs_trained": 0,
        "korsts_dev_pairs": 2,
        "anchor_texts": 0,
    }
    sts_only = nli_sts.load_data(root, 1, max_triplets=0, max_sts=None, max_paraphrases=0)
    assert (len(sts_only.triplets), len(sts_only.paraphrases), len(sts_only.sts_train)) == (0, 0, 3)
    capped = nli_sts.load_data(root, 1, max_triplets=1, max_sts=2, max_paraphrases=1).counts()
    assert (capped["nli_triplets"], capped["paraphrase_pairs"], capped["korsts_train_pairs"]) == (
        1,
        1,
        2,
    )


def test_dev_to_train_moves_dev_pairs_out_of_the_selection_split(tmp_path: Path) -> None:
    root = write_nli_sts_data(tmp_path)
    d = nli_sts.load_data(root, 1, max_triplets=0, max_sts=None, max_paraphrases=0, dev_to_train=1)
    assert d.counts()["korsts_train_pairs"] == 3
    assert d.counts()["korsts_dev_pairs_trained"] == 1
    assert d.counts()["korsts_dev_pairs"] == 1
    trained = {(p.sentence1, p.sentence2) for p in d.sts_train}
    assert all((p.sentence1, p.sentence2) not in trained for p in d.sts_dev)
    assert len(trained) == 4
    only_dev = nli_sts.load_data(root, 1, 0, max_sts=0, max_paraphrases=0, dev_to_train=1)
    assert only_dev.counts()["korsts_train_pairs"] == 0
    assert len(only_dev.sts_train) == 1


def test_anchors_take_half_premises_as_passages_and_half_chat_questions(tmp_path: Path) -> None:
    root = write_nli_sts_data(tmp_path)
    d = nli_sts.load_data(root, 1, max_triplets=0, max_sts=None, anchors=4)
    assert d.counts()["anchor_texts"] == 4
    passages = sorted(text for kind, text in d.anchors if kind == "passage")
    queries = sorted(text for kind, text in d.anchors if kind == "query")
    premises = {"통장을 새로 만들었다.", "카드를 발급받았다.", "카드 결제가 승인되었다."}
    assert len(passages) == 2 and set(passages) <= premises
    assert queries == ["배고파", "잠이 안 와"]  # distinct questions only
    every = nli_sts.load_data(root, 1, max_triplets=0, max_sts=None, anchors=5)
    assert sorted(kind for kind, _ in every.anchors) == ["passage"] * 3 + ["query"] * 2
    with pytest.raises(ValueError, match=r"anchors must be in \[0, 5\]"):
        nli_sts.load_data(root, 1, None, None, anchors=6)


def test_anchors_hold_the_embeddings_the_sts_stage_starts_from(
    base_model: ModelVersion, tmp_registry: ModelRegistry, tiny_config: TrainConfig
) -> None:
    from sentence_transformers import SentenceTransformer

    anchors = [("passage", text) for text in PASSAGES] + [("query", text) for text in QUERIES]
    texts = nli_sts.anchor_dataset(
        SentenceTransformer(str(base_model.path), device="cpu"), base_model.manifest, anchors
    )
    drift = {}
    for held in (False, True):
        d = nli_sts.NliStsData(
            triplets=[], sts_train=PAIRS, sts_dev=[], anchors=anchors if held else []
        )
        version = nli_sts.train(tmp_registry, base_model, d, tiny_config)
        training = version.manifest.training
        assert training is not None
        assert training["stages"][0]["tasks"] == (["sts", "anchor"] if held else ["sts"])
        tuned = SentenceTransformer(str(version.path), device="cpu")
        now = tuned.encode(texts["text"], convert_to_tensor=True)
        before = torch.tensor(texts["label"])
        drift[held] = float(1 - (now * before).sum(-1).mean())
    assert training["losses"]["anchor"] == "EmbedDistillLoss(distance=cosine)"
    assert drift[True] < drift[False] / 2, drift


def test_dev_to_train_must_leave_a_selection_split(tmp_path: Path) -> None:
    root = write_nli_sts_data(tmp_path)
    for n in (-1, 2):
        with pytest.raises(ValueError, match="leave KorSTS dev pairs to select on"):
            nli_sts.load_data(root, 1, None, None, dev_to_train=n)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--max-triplets", "0", "--max-paraphrases", "0", "--max-sts", "0"], "no training data"),
        (["--dev-to-train", "2"], "leave KorSTS dev pairs to select on"),
        (["--anchors", "6"], "anchors must be in [0, 5]"),
    ],
)
def test_cli_refuses_a_run_it_cannot_make(
    flags: list[str],
    message: str,
    base_model: ModelVersion,
    tmp_registry: ModelRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chatda.settings import get_settings

    link_model(tmp_registry, base_model, "base")
    root = write_nli_sts_data(tmp_path)
    monkeypatch.setenv("CHATDA_MODELS_DIR", str(tmp_registry.root))
    get_settings.cache_clear()
    try:
        args = ["train", "nli-sts", "--model", "e5-small-ko@base", "--data-dir", str(root)]
        result = CliRunner().invoke(app, [*args, *flags, "--skip-eval"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert [v.manifest.version for v in tmp_registry.versions()] == ["base"]
