"""``chatda train nli-sts``: multitask sentence-similarity fine-tuning.

Two objectives share one model: NLI triplets (premise, entailed, contradicting hypothesis) with
MultipleNegativesRankingLoss teach "same meaning" against in-batch and hard contradictions, and
KorSTS train with CoSENT teaches the graded 0–5 scale. KorSTS dev selects the checkpoint; the
reported splits (KorSTS test, KLUE STS dev, KorQuAD dev) are never seen before the final table.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatda.models.registry import ModelRegistry, ModelVersion
from train import data
from train.prompts import with_prompt
from train.runner import (
    TrainConfig,
    describe,
    describe_loss,
    fit,
    load_for_training,
    ranking_loss,
    register,
)

if TYPE_CHECKING:
    from datasets import Dataset
    from sentence_transformers.sentence_transformer.evaluation import (
        EmbeddingSimilarityEvaluator,
    )

    from chatda.models.registry import ModelManifest

SELECTION_METRIC = "korsts-dev_spearman_cosine"


@dataclass(frozen=True)
class NliStsData:
    """Training triplets and pairs plus the selection split (KorSTS dev)."""

    triplets: list[data.Triplet]
    sts_train: list[data.ScoredPair]
    sts_dev: list[data.ScoredPair]

    def counts(self) -> dict[str, int]:
        return {
            "nli_triplets": len(self.triplets),
            "korsts_train_pairs": len(self.sts_train),
            "korsts_dev_pairs": len(self.sts_dev),
        }


def load_data(
    data_dir: Path, seed: int, max_triplets: int | None, max_sts: int | None
) -> NliStsData:
    """KorNLI XNLI dev/test + KLUE NLI dev triplets, KorSTS train; seeded subsets when capped."""
    rng = random.Random(seed)
    triplets = data.kornli_triplets(data_dir) + data.klue_nli_triplets(data_dir)
    sts = data.korsts(data_dir, "train")
    rng.shuffle(triplets)
    rng.shuffle(sts)
    return NliStsData(
        triplets=triplets[:max_triplets] if max_triplets else triplets,
        sts_train=sts[:max_sts] if max_sts else sts,
        sts_dev=data.korsts(data_dir, "dev"),
    )


def build_datasets(manifest: ModelManifest, d: NliStsData) -> dict[str, Dataset]:
    """Both tasks are symmetric sentence comparison, so every column gets the query prompt."""
    from datasets import Dataset

    datasets = {}
    if d.triplets:
        datasets["nli"] = Dataset.from_dict(
            {
                "anchor": with_prompt(manifest, "query", (t.anchor for t in d.triplets)),
                "positive": with_prompt(manifest, "query", (t.positive for t in d.triplets)),
                "negative": with_prompt(manifest, "query", (t.negative for t in d.triplets)),
            }
        )
    if d.sts_train:
        datasets["sts"] = Dataset.from_dict(
            {
                "sentence1": with_prompt(manifest, "query", (p.sentence1 for p in d.sts_train)),
                "sentence2": with_prompt(manifest, "query", (p.sentence2 for p in d.sts_train)),
                "score": [p.score / 5.0 for p in d.sts_train],
            }
        )
    return datasets


def selection_evaluator(
    manifest: ModelManifest, pairs: list[data.ScoredPair], batch_size: int
) -> EmbeddingSimilarityEvaluator:
    """KorSTS dev Spearman, the held-out split that picks the checkpoint."""
    from sentence_transformers.sentence_transformer.evaluation import (
        EmbeddingSimilarityEvaluator,
    )

    return EmbeddingSimilarityEvaluator(
        with_prompt(manifest, "query", (p.sentence1 for p in pairs)),
        with_prompt(manifest, "query", (p.sentence2 for p in pairs)),
        [p.score for p in pairs],
        batch_size=batch_size,
        main_similarity="cosine",
        similarity_fn_names=["cosine"],
        name="korsts-dev",
        write_csv=False,
    )


def train(
    registry: ModelRegistry,
    parent: ModelVersion,
    d: NliStsData,
    config: TrainConfig,
    evaluate: Callable[[ModelVersion], dict[str, Any]] | None = None,
) -> ModelVersion:
    """Fine-tune ``parent`` on NLI + STS and register the result as ``nli-sts-<time>``."""
    from sentence_transformers.sentence_transformer.losses import CoSENTLoss

    model = load_for_training(parent, config)
    datasets = build_datasets(parent.manifest, d)
    losses = {"nli": ranking_loss(model, config), "sts": CoSENTLoss(model)}
    evaluator = (
        selection_evaluator(parent.manifest, d.sts_dev, config.batch_size) if d.sts_dev else None
    )
    result = fit(
        model,
        datasets,
        {name: losses[name] for name in datasets},
        config,
        evaluator=evaluator,
        metric=SELECTION_METRIC,
    )
    training = {
        "task": "nli-sts",
        "config": describe(config),
        "data": d.counts(),
        "losses": {name: describe_loss(losses[name]) for name in datasets},
        "steps": result.steps,
        "loss_curve": result.losses,
        "selection": result.selection,
    }
    return register(registry, parent, model, "nli-sts", training, evaluate)
