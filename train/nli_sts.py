"""``chatda train nli-sts``: sentence-similarity fine-tuning on NLI, paraphrases and STS.

Three objectives share one model: NLI triplets (premise, entailed, contradicting hypothesis) with
MultipleNegativesRankingLoss teach "same meaning" against in-batch and hard contradictions,
hand-labelled question paraphrases (symmetric ranking loss) add native Korean "same meaning" in
the short, query-like register, and KorSTS train with CoSENT teaches the graded 0–5 scale.

By default STS is a second stage (SBERT's "NLI, then STS"): the ranking stage shapes the space,
then several epochs of CoSENT calibrate it, which is what the graded metric rewards; mixing the
two in one epoch ("multitask", ``sts_epochs=0``) plateaus lower on KorSTS dev (BENCHMARKS § 6).
KorSTS dev selects the checkpoint of the last stage; the reported splits (KorSTS test, KLUE STS
dev, KorQuAD dev) are never seen before the final table.

CoSENT on query-prompted pairs is what costs retrieval (BENCHMARKS § 6). ``anchors`` holds the
space where STS says nothing: texts the model embeds as it enters the STS stage (chat questions
with the query prompt, NLI premises with the passage prompt) are kept near those embeddings
by a cosine distillation loss trained alongside CoSENT, the model being its own teacher.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatda.models.registry import ModelRegistry, ModelVersion
from train import data
from train.prompts import Kind, with_prompt
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
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import (
        EmbeddingSimilarityEvaluator,
    )
    from torch import nn

    from chatda.models.registry import ModelManifest

SELECTION_METRIC = "korsts-dev_spearman_cosine"


@dataclass(frozen=True)
class NliStsData:
    """Training triplets and pairs plus the selection split (KorSTS dev)."""

    triplets: list[data.Triplet]
    sts_train: list[data.ScoredPair]
    sts_dev: list[data.ScoredPair]
    paraphrases: list[tuple[str, str]] = field(default_factory=list)
    sts_dev_trained: int = 0  # how many of sts_train are KorSTS dev pairs (``dev_to_train``)
    anchors: list[tuple[Kind, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "nli_triplets": len(self.triplets),
            "paraphrase_pairs": len(self.paraphrases),
            "korsts_train_pairs": len(self.sts_train) - self.sts_dev_trained,
            "korsts_dev_pairs_trained": self.sts_dev_trained,
            "korsts_dev_pairs": len(self.sts_dev),
            "anchor_texts": len(self.anchors),
        }


def load_data(
    data_dir: Path,
    seed: int,
    max_triplets: int | None,
    max_sts: int | None,
    max_paraphrases: int | None = None,
    dev_to_train: int = 0,
    anchors: int = 0,
) -> NliStsData:
    """KorNLI XNLI dev/test + KLUE NLI dev triplets, question paraphrases, KorSTS train.

    A cap takes a seeded subset; None takes everything and 0 nothing (so ``--max-triplets 0
    --max-paraphrases 0`` is an STS-only run on top of an earlier model). ``dev_to_train``
    moves that many KorSTS dev pairs (a seeded subset) into training: KorSTS train is machine
    translated, dev human translated, so they are the best Korean STS pairs we have; the rest of
    dev stays the selection split, and KorSTS test is never touched. ``anchors`` texts (a seeded
    half of NLI premises as passages, the rest chat questions as queries) hold the STS stage.
    """
    rng = random.Random(seed)
    triplets = data.kornli_triplets(data_dir) + data.klue_nli_triplets(data_dir)
    paraphrases = data.question_pair_paraphrases(data_dir)
    sts = data.korsts(data_dir, "train")
    dev = data.korsts(data_dir, "dev")
    rng.shuffle(triplets)
    rng.shuffle(sts)
    rng.shuffle(paraphrases)
    if not 0 <= dev_to_train < len(dev):
        raise ValueError(
            f"dev_to_train must leave KorSTS dev pairs to select on: 0 <= n < {len(dev)}"
        )
    rng.shuffle(dev)
    sts = sts[:max_sts] if max_sts is not None else sts
    kept = _anchor_texts(data_dir, triplets, anchors, rng) if anchors else []
    return NliStsData(
        triplets=triplets[:max_triplets] if max_triplets is not None else triplets,
        sts_train=sts + dev[:dev_to_train],
        sts_dev=dev[dev_to_train:],
        paraphrases=paraphrases[:max_paraphrases] if max_paraphrases is not None else paraphrases,
        sts_dev_trained=dev_to_train,
        anchors=kept,
    )


def _anchor_texts(
    data_dir: Path, triplets: list[data.Triplet], n: int, rng: random.Random
) -> list[tuple[Kind, str]]:
    """Half NLI premises (news, Wikipedia, policy text: the passages we have), half chat
    questions (the query register), so both prompts are held."""
    premises = list(dict.fromkeys(t.anchor for t in triplets))
    questions = list(dict.fromkeys(q for q, _ in data.chatbot_pairs(data_dir)))
    if not 0 <= n <= len(premises) + len(questions):
        raise ValueError(f"anchors must be in [0, {len(premises) + len(questions)}]")
    # Half each; a side with too few texts is made up from the other.
    n_passages = max(min(n // 2, len(premises)), n - len(questions))
    return [
        *(("passage", text) for text in rng.sample(premises, n_passages)),
        *(("query", text) for text in rng.sample(questions, n - n_passages)),
    ]


def build_datasets(manifest: ModelManifest, d: NliStsData) -> dict[str, Dataset]:
    """Every task is symmetric sentence comparison, so every column gets the query prompt."""
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
    if d.paraphrases:
        datasets["paraphrase"] = Dataset.from_dict(
            {
                "anchor": with_prompt(manifest, "query", (a for a, _ in d.paraphrases)),
                "positive": with_prompt(manifest, "query", (b for _, b in d.paraphrases)),
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


def anchor_dataset(
    model: SentenceTransformer, manifest: ModelManifest, anchors: list[tuple[Kind, str]]
) -> Dataset:
    """The anchor texts with the model's own embeddings of them now, as distillation labels."""
    from datasets import Dataset

    texts = [with_prompt(manifest, kind, [text])[0] for kind, text in anchors]
    labels = model.encode(texts, batch_size=64, convert_to_numpy=True, show_progress_bar=False)
    return Dataset.from_dict({"text": texts, "label": labels.tolist()})


def stages(tasks: list[str], config: TrainConfig) -> list[tuple[list[str], TrainConfig]]:
    """The runs to make, in order: the tasks each trains and its config.

    Sequential (``sts_epochs`` > 0): the ranking tasks for ``epochs``, then STS alone for
    ``sts_epochs``; an empty stage is dropped. Multitask: every task in one run.
    """
    ranking = [task for task in tasks if task != "sts"]
    if config.sts_epochs <= 0 or "sts" not in tasks or not ranking:
        return [(tasks, config)]
    return [(ranking, config), (["sts"], replace(config, epochs=config.sts_epochs))]


def _losses(model: SentenceTransformer, config: TrainConfig) -> dict[str, nn.Module]:
    from sentence_transformers.sentence_transformer.losses import CoSENTLoss, EmbedDistillLoss

    return {
        "nli": ranking_loss(model, config),
        "paraphrase": ranking_loss(model, config, symmetric=True),
        "sts": CoSENTLoss(model),
        "anchor": EmbedDistillLoss(model, distance_metric="cosine"),
    }


@dataclass(frozen=True)
class StagesRun:
    """What the stages did, for the manifest: per-stage records, the selection score, losses."""

    records: list[dict[str, Any]]
    selection: dict[str, float]
    losses: dict[str, str]


def run_stages(
    model: SentenceTransformer, manifest: ModelManifest, d: NliStsData, config: TrainConfig
) -> StagesRun:
    """Train ``model`` in place, stage by stage; shared by full fine-tuning and LoRA adapters.

    Only the last stage selects a checkpoint on KorSTS dev: an earlier one is judged by what the
    next makes of it, and its selection passes would only cost time.
    """
    datasets = build_datasets(manifest, d)
    if not datasets:
        raise ValueError("no training data: every triplet, paraphrase and STS pair was capped to 0")
    losses = _losses(model, config)
    plan = stages(list(datasets), config)
    evaluator = selection_evaluator(manifest, d.sts_dev, config.batch_size) if d.sts_dev else None
    records: list[dict[str, Any]] = []
    selection: dict[str, float] = {}
    for n, (names, stage_config) in enumerate(plan, 1):
        last = n == len(plan)
        if "sts" in names and d.anchors:
            datasets["anchor"] = anchor_dataset(model, manifest, d.anchors)
            names = [*names, "anchor"]
        result = fit(
            model,
            {name: datasets[name] for name in names},
            {name: losses[name] for name in names},
            stage_config,
            evaluator=evaluator if last else None,
            metric=SELECTION_METRIC,
        )
        selection = result.selection  # the last stage's: the one that selects
        records.append(
            {
                "tasks": names,
                "epochs": stage_config.epochs,
                "steps": result.steps,
                "loss_curve": result.losses,
            }
        )
    described = {name: describe_loss(losses[name]) for name in datasets}
    return StagesRun(records=records, selection=selection, losses=described)


def training_record(d: NliStsData, config: TrainConfig, run: StagesRun) -> dict[str, Any]:
    """The manifest's ``training`` block of an nli-sts run."""
    return {
        "task": "nli-sts",
        "schedule": "sequential" if len(run.records) > 1 else "multitask",
        "config": describe(config),
        "data": d.counts(),
        "losses": run.losses,
        "stages": run.records,
        "steps": sum(r["steps"] for r in run.records),
        "selection": run.selection,
    }


def train(
    registry: ModelRegistry,
    parent: ModelVersion,
    d: NliStsData,
    config: TrainConfig,
    evaluate: Callable[[ModelVersion], dict[str, Any]] | None = None,
) -> ModelVersion:
    """Fine-tune ``parent`` stage by stage and register the result as ``nli-sts-<time>``."""
    if not build_datasets(parent.manifest, d):
        raise ValueError("no training data: every triplet, paraphrase and STS pair was capped to 0")
    model = load_for_training(parent, config)
    run = run_stages(model, parent.manifest, d, config)
    return register(registry, parent, model, "nli-sts", training_record(d, config, run), evaluate)
