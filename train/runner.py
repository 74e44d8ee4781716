"""What every training job shares: hardware defaults, seeding, the trainer, and registration.

Jobs (``nli_sts``, ``retrieval``) only build datasets and losses; this module turns them into a
new, never-overwritten registry version whose manifest records config, data counts, seed, parent
and evaluation, so any served model can be traced back to how it was made.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from chatda.models.encoder import resolve_device
from chatda.models.registry import ModelManifest, ModelRegistry, ModelVersion

if TYPE_CHECKING:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.evaluation import BaseEvaluator
    from torch import nn
    from transformers import TrainerCallback

log = logging.getLogger(__name__)

# A name can be taken between version_name and the rename by a run finishing at the same moment.
REGISTER_ATTEMPTS = 3


@dataclass
class TrainConfig:
    """Knobs common to all jobs; defaults are chosen per device by :func:`default_config`."""

    device: str = "cpu"
    seed: int = 42
    epochs: float = 1.0
    batch_size: int = 32
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1
    max_seq_length: int = 64
    max_steps: int = -1
    # The 250k-row word-embedding matrix is 80% of e5-small's weights; the few thousand Korean
    # tokens our data touches would drift away from the rest, and Adam over it is most of a CPU
    # step. Freezing it keeps the multilingual vocabulary intact and training fast.
    freeze_embeddings: bool = True
    cpu_threads: int = 0  # 0: torch's default (all cores); 1 when sharing a loaded machine
    eval_steps: int = 100  # select on the held-out split this often; 0: only score the end
    logging_steps: int = 10
    # Ranking losses: cosine × scale is the softmax logit, so scale = 1 / temperature.
    ranking_scale: float = 20.0
    # > 0 and below batch_size: GradCache (CachedMultipleNegativesRankingLoss) embeds the batch in
    # mini-batches, so a CPU gets the in-batch negatives of a big batch at a small batch's memory.
    mini_batch_size: int = 0
    # nli-sts only. > 0: KorSTS is a second stage of this many epochs after the NLI/paraphrase
    # epochs (SBERT's "NLI, then STS"), selected on KorSTS dev; 0: mixed into them (multitask).
    sts_epochs: float = 0.0


# Per task and device: CPU bounded so a job ends in under 30 minutes on 2 cores; CUDA gets bigger
# batches (more in-batch negatives), longer text and more passes, with the same code.
DEFAULTS: dict[tuple[str, str], dict[str, Any]] = {
    # NLI at e5's temperature (scale 100) measured +1.8 KorSTS test over scale 20 on the same
    # data, with KorQuAD kept; STS as its own later stage rose past the multitask plateau of
    # KorSTS dev. One STS epoch: 25 min of training on 2 cores (81.10); `--sts-epochs 3` (about 50
    # minutes) measured 81.7-81.9 KorSTS test, 81.90 as a two-seed soup (BENCHMARKS § 6).
    ("nli-sts", "cpu"): {
        "batch_size": 32,
        "max_seq_length": 64,
        "eval_steps": 90,
        "ranking_scale": 100.0,
        "sts_epochs": 1.0,
    },
    ("nli-sts", "cuda"): {
        "batch_size": 128,
        "max_seq_length": 128,
        "epochs": 2.0,
        "ranking_scale": 100.0,
        "sts_epochs": 4.0,
    },
    # The same recipe as a LoRA adapter (train/adapter.py): only the low-rank matrices train, so
    # the rate is LoRA's usual 1e-4 rather than full fine-tuning's 2e-5. Scored once at the end
    # (no checkpoint selection: the committed adapter is the last step's).
    ("adapter", "cpu"): {
        "batch_size": 32,
        "max_seq_length": 64,
        "learning_rate": 1e-4,
        "eval_steps": 0,
        "ranking_scale": 100.0,
        "sts_epochs": 1.0,
    },
    ("adapter", "cuda"): {
        "batch_size": 128,
        "max_seq_length": 128,
        "learning_rate": 1e-4,
        "epochs": 2.0,
        "eval_steps": 0,
        "ranking_scale": 100.0,
        "sts_epochs": 4.0,
    },
    # Retrieval starts from a model already trained on far more retrieval data than ours: a
    # lower rate nudges it toward the domain without forgetting.
    # e5 was pre-trained contrastively at temperature 0.01 (scale 100) with huge batches, so
    # retrieval keeps e5's temperature and a GradCache batch of 64 (with 128-token passages and
    # lr 1e-5: KorQuAD MRR@10 -1.5 against -5.1 at scale 20, batch 32, 64 tokens, lr 2e-5).
    ("retrieval", "cpu"): {
        "batch_size": 64,
        "mini_batch_size": 16,
        "max_seq_length": 128,
        "learning_rate": 1e-5,
        "eval_steps": 0,
        "ranking_scale": 100.0,
    },
    ("retrieval", "cuda"): {
        "batch_size": 128,
        "max_seq_length": 256,
        "learning_rate": 1e-5,
        "epochs": 2.0,
        "eval_steps": 0,
        "ranking_scale": 100.0,
    },
}


def default_config(task: str, device: str, **overrides: Any) -> TrainConfig:
    """The task's defaults for the resolved device, then any override that is not None."""
    device = resolve_device(device)
    config = TrainConfig(device=device)
    kind = "cuda" if device.startswith("cuda") else "cpu"
    given = {key: value for key, value in overrides.items() if value is not None}
    for key, value in {**DEFAULTS[(task, kind)], **given}.items():
        setattr(config, key, value)
    return config


def version_name(prefix: str, registry: ModelRegistry, name: str) -> str:
    """``<prefix>-YYYYMMDDTHHMM`` in UTC; seconds, then a counter, added while the name is taken."""
    now = datetime.now(UTC)
    candidate = f"{prefix}-{now:%Y%m%dT%H%M}"
    if registry.exists(name, candidate):
        candidate = f"{prefix}-{now:%Y%m%dT%H%M%S}"
    taken, n = candidate, 2
    while registry.exists(name, candidate):
        candidate, n = f"{taken}-{n}", n + 1
    return candidate


def load_for_training(parent: ModelVersion, config: TrainConfig) -> SentenceTransformer:
    """Load the parent with training truncation; seeded first so dropout and init repeat."""
    from sentence_transformers import SentenceTransformer
    from transformers import set_seed

    set_seed(config.seed)
    if config.cpu_threads:
        torch.set_num_threads(config.cpu_threads)
    model = SentenceTransformer(str(parent.path), device=config.device)
    model.max_seq_length = config.max_seq_length
    if config.freeze_embeddings:
        bert: Any = model[0].auto_model
        bert.embeddings.word_embeddings.weight.requires_grad_(False)
    return model


def ranking_loss(
    model: SentenceTransformer, config: TrainConfig, symmetric: bool = False
) -> nn.Module:
    """MultipleNegativesRankingLoss at the config's scale, cached when a mini-batch is set.

    ``symmetric`` adds the positive → anchor direction (its own softmax), for pairs where either
    side could be the query, such as paraphrases.
    """
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MultipleNegativesRankingLoss,
    )

    shape: dict[str, Any] = {"scale": config.ranking_scale}
    if symmetric:
        shape |= {"directions": ("query_to_doc", "doc_to_query"), "partition_mode": "per_direction"}
    if 0 < config.mini_batch_size < config.batch_size:
        return CachedMultipleNegativesRankingLoss(
            model, mini_batch_size=config.mini_batch_size, **shape
        )
    return MultipleNegativesRankingLoss(model, **shape)


def describe_loss(loss: nn.Module) -> str:
    """The loss as the manifest records it: class, then its scale or distance and, when not
    one-way, its directions."""
    shape = []
    if hasattr(loss, "scale"):
        shape.append(f"scale={loss.scale:g}")
    if hasattr(loss, "distance_metric"):
        shape.append(f"distance={loss.distance_metric}")
    directions = tuple(getattr(loss, "directions", ("query_to_doc",)))
    if directions != ("query_to_doc",):
        shape.append(f"directions={'+'.join(directions)}")
    return f"{type(loss).__name__}({', '.join(shape)})"


def _evaluate_at_end() -> TrainerCallback:
    """Make the last step an evaluation/checkpoint step, so best-model selection sees it."""
    from transformers import TrainerCallback

    class EvaluateAtEnd(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if state.global_step >= state.max_steps:
                control.should_evaluate = control.should_save = True
            return control

    return EvaluateAtEnd()


@dataclass
class TrainResult:
    """Loss curve and the selection-split score, kept for the manifest and for tests."""

    losses: list[float]
    selection: dict[str, float]
    steps: int


def fit(
    model: SentenceTransformer,
    train_dataset: Dataset | dict[str, Dataset],
    loss: nn.Module | dict[str, nn.Module],
    config: TrainConfig,
    evaluator: BaseEvaluator | None = None,
    metric: str | None = None,
) -> TrainResult:
    """Run SentenceTransformerTrainer; with an evaluator, keep the checkpoint best on ``metric``."""
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.base.sampler import BatchSamplers, MultiDatasetBatchSamplers

    use_cuda = config.device.startswith("cuda")
    select = evaluator is not None and metric is not None and config.eval_steps > 0
    with tempfile.TemporaryDirectory(prefix="chatda-train-") as out:
        args = SentenceTransformerTrainingArguments(
            output_dir=out,
            num_train_epochs=config.epochs,
            max_steps=config.max_steps,
            per_device_train_batch_size=config.batch_size,
            per_device_eval_batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            warmup_ratio=config.warmup_ratio,
            seed=config.seed,
            data_seed=config.seed,
            bf16=use_cuda and torch.cuda.is_bf16_supported(),
            use_cpu=not use_cuda,
            # In-batch negatives must not contain a copy of the anchor's own positive.
            batch_sampler=BatchSamplers.NO_DUPLICATES,
            multi_dataset_batch_sampler=MultiDatasetBatchSamplers.PROPORTIONAL,
            eval_strategy="steps" if select else "no",
            eval_steps=config.eval_steps if select else None,
            save_strategy="steps" if select else "no",
            save_steps=config.eval_steps if select else 500,
            save_total_limit=1 if select else None,
            load_best_model_at_end=select,
            metric_for_best_model=f"eval_{metric}" if select else None,
            greater_is_better=True,
            logging_steps=config.logging_steps,
            report_to="none",
            dataloader_num_workers=0,
            disable_tqdm=False,
        )
        trainer = SentenceTransformerTrainer(
            model=model,
            args=args,
            train_dataset=train_dataset,
            loss=loss,
            evaluator=evaluator,
            callbacks=[_evaluate_at_end()] if select else None,
        )
        trainer.train()
        losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
        selection: dict[str, float] = {}
        if evaluator is not None:
            scores = evaluator(model)
            if isinstance(scores, dict):
                selection = {k: round(float(v) * 100.0, 2) for k, v in scores.items()}
        return TrainResult(losses=losses, selection=selection, steps=trainer.state.global_step)


def register(
    registry: ModelRegistry,
    parent: ModelVersion,
    model: SentenceTransformer,
    prefix: str,
    training: dict[str, Any],
    evaluate: Callable[[ModelVersion], dict[str, Any]] | None = None,
) -> ModelVersion:
    """Write the model as a new version; serving truncation and prompts are the parent's.

    ``evaluate`` runs through the serving code path on a private copy *before* staging, so no
    version is ever listed without its evaluation, and the registry's staging folder exists only
    for the seconds of the final save (``clean_staging`` by another process cannot hit a
    half-evaluated version). The name is taken only then, after the minutes of evaluation, and
    taken again if a concurrent run registered it first: two jobs finishing in the same minute
    both keep their model.
    """
    p = parent.manifest
    manifest = ModelManifest(
        name=p.name,
        version=f"{prefix}-unregistered",
        dim=p.dim,
        max_seq_length=p.max_seq_length,
        prompts=p.prompts,
        source=p.source,
        parent=p.ref,
        training=training,
    )
    model.max_seq_length = p.max_seq_length
    if evaluate is not None:
        with tempfile.TemporaryDirectory(prefix="chatda-eval-") as private:
            model.save(private)
            manifest.evaluation = evaluate(ModelVersion(manifest=manifest, path=Path(private)))
    for attempt in range(1, REGISTER_ATTEMPTS + 1):
        manifest.version = version_name(prefix, registry, p.name)
        try:
            with registry.staging(manifest) as folder:
                model.save(str(folder))
            break
        except FileExistsError:
            if attempt == REGISTER_ATTEMPTS:
                raise
    log.info("registered %s", manifest.ref)
    return registry.get(manifest.name, manifest.version)


def describe(config: TrainConfig) -> dict[str, Any]:
    """The config as stored in the manifest (plain JSON)."""
    return asdict(config)
