"""``chatda train …``: fine-tune a registry model into a new version, or evaluate one.

Every job reads its parent from the registry, writes a new version (never overwriting one) and
records config, data counts, seed and the evaluation table in the new manifest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from chatda.models.registry import ModelNotFound, ModelRegistry, ModelVersion, parse_ref
from chatda.settings import get_settings

if TYPE_CHECKING:
    from train.runner import TrainConfig

app = typer.Typer(help="Fine-tune and evaluate models (train/).", no_args_is_help=True)

DATA_DIR_HELP = "shared datasets folder (default: ../shared/data beside the repository)"


def _registry() -> ModelRegistry:
    return ModelRegistry(get_settings().models_dir)


def _resolve(registry: ModelRegistry, ref: str | None) -> ModelVersion:
    """The registry version a ``--model``/``--with`` names; a missing one is a usage error."""
    name, version = parse_ref(ref or "", get_settings().model_name)
    try:
        return registry.get(name, version)
    except ModelNotFound as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _data_dir(path: Path | None) -> Path:
    from train.data import DEFAULT_DATA_DIR

    return path or DEFAULT_DATA_DIR


def _train_config(task: str, device: str, **overrides: Any) -> TrainConfig:
    """The task's per-device defaults, the options given, and the product's CPU thread knob."""
    from train.runner import default_config

    return default_config(task, device, cpu_threads=get_settings().cpu_threads, **overrides)


def _report(version: ModelVersion, as_json: bool) -> None:
    from train.evaluate import markdown

    evaluation = version.manifest.evaluation or {}
    if as_json:
        typer.echo(json.dumps(version.summary(), ensure_ascii=False, indent=2))
        return
    typer.echo(f"registered {version.manifest.ref} at {version.path}")
    if evaluation:
        rows = {
            evaluation["parent"]: evaluation["parent_metrics"],
            version.manifest.ref: evaluation["metrics"],
        }
        typer.echo(markdown(rows))


@app.command("eval")
def eval_command(
    model: str | None = typer.Option(None, "--model", help="name@version; default: serving"),
    data_dir: Path | None = typer.Option(None, help=DATA_DIR_HELP),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of markdown"),
) -> None:
    """KorSTS test, KLUE STS dev and KorQuAD dev retrieval for one model."""
    from chatda.models.encoder import TorchEncoder
    from train.evaluate import SPLITS, EvalSuite, evaluate, markdown, store_metrics

    registry = _registry()
    version = _resolve(registry, model)
    encoder = TorchEncoder(version, device=device, cpu_threads=get_settings().cpu_threads)
    metrics = evaluate(encoder, EvalSuite.load(_data_dir(data_dir)))
    if not (version.manifest.evaluation or {}).get("metrics"):
        store_metrics(registry, version, metrics)
    if as_json:
        payload = {"model": version.manifest.ref, "metrics": metrics, "splits": SPLITS}
        typer.echo(json.dumps(payload, ensure_ascii=False, indent=2))
    else:
        typer.echo(markdown({version.manifest.ref: metrics}))


@app.command("nli-sts")
def nli_sts_command(
    model: str | None = typer.Option(None, "--model", help="parent name@version; default: serving"),
    data_dir: Path | None = typer.Option(None, help=DATA_DIR_HELP),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    seed: int = typer.Option(42),
    epochs: float | None = typer.Option(None, help="default 1"),
    batch_size: int | None = typer.Option(None, help="default 32 on CPU, 128 on CUDA"),
    lr: float | None = typer.Option(None, help="default 2e-5"),
    max_seq_length: int | None = typer.Option(None, help="default 64 on CPU, 128 on CUDA"),
    max_steps: int | None = typer.Option(None, help="stop after N steps (-1: epochs decide)"),
    mini_batch_size: int | None = typer.Option(
        None,
        help="GradCache mini-batch for the NLI loss (default 0: plain MultipleNegativesRanking)",
    ),
    scale: float | None = typer.Option(None, help="NLI ranking loss scale, 1/temperature (100)"),
    max_triplets: int | None = typer.Option(None, help="NLI triplets (default: all 3,500)"),
    max_sts: int | None = typer.Option(None, help="KorSTS train pairs (default: all 5,749)"),
    max_paraphrases: int | None = typer.Option(
        None, help="question paraphrase pairs (default: all 3,405)"
    ),
    sts_epochs: float | None = typer.Option(
        None,
        help="KorSTS epochs as a second stage after NLI/paraphrases (CPU 1, CUDA 4; 0: multitask)",
    ),
    dev_to_train: int = typer.Option(
        0,
        help="move N of the 1,500 KorSTS dev pairs (human-translated) into training; "
        "the rest stays the selection split",
    ),
    anchors: int = typer.Option(
        0,
        help="hold N texts (half NLI premises as passages, half chat questions) at the "
        "embeddings they have entering the STS stage, so CoSENT costs less retrieval",
    ),
    eval_steps: int | None = typer.Option(
        None, help="select a checkpoint on KorSTS dev every N steps (default: CPU 90, CUDA 100)"
    ),
    skip_eval: bool = typer.Option(False, help="register without the evaluation table"),
    as_json: bool = typer.Option(False, "--json", help="print the new version as JSON"),
) -> None:
    """NLI + paraphrases (MultipleNegativesRanking), then KorSTS (CoSENT) fine-tuning."""
    from train import nli_sts
    from train.evaluate import EvalSuite, evaluator_for

    registry = _registry()
    parent = _resolve(registry, model)
    config = _train_config(
        "nli-sts",
        device,
        seed=seed,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=lr,
        max_seq_length=max_seq_length,
        max_steps=max_steps,
        eval_steps=eval_steps,
        ranking_scale=scale,
        mini_batch_size=mini_batch_size,
        sts_epochs=sts_epochs,
    )
    root = _data_dir(data_dir)
    evaluate = (
        None if skip_eval else evaluator_for(registry, parent, EvalSuite.load(root), config.device)
    )
    try:
        d = nli_sts.load_data(
            root, seed, max_triplets, max_sts, max_paraphrases, dev_to_train, anchors
        )
        version = nli_sts.train(registry, parent, d, config, evaluate)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    _report(version, as_json)


@app.command("retrieval")
def retrieval_command(
    model: str | None = typer.Option(None, "--model", help="parent name@version; default: serving"),
    feedback: Path | None = typer.Option(
        None,
        "--feedback",
        help="JSONL of {query, positive} click pairs (the retrain job exports them)",
    ),
    data_dir: Path | None = typer.Option(None, help=DATA_DIR_HELP),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    seed: int = typer.Option(42),
    max_pairs: int | None = typer.Option(None, help="training pairs; default 2000 CPU, 10000 CUDA"),
    bm25_share: float = typer.Option(0.1, help="share of pairs whose positive is BM25 top-1"),
    negatives_k: int = typer.Option(3, help="BM25 candidates per query (gold removed)"),
    filter_margin: float = typer.Option(
        0.0, help="drop a negative scored above score(positive) - margin by the parent"
    ),
    no_filter: bool = typer.Option(False, "--no-filter", help="keep every BM25 negative"),
    epochs: float | None = typer.Option(None, help="default 1 CPU, 2 CUDA"),
    batch_size: int | None = typer.Option(None, help="default 64 CPU, 128 CUDA"),
    mini_batch_size: int | None = typer.Option(
        None, help="GradCache mini-batch (default 16 CPU; 0: plain MultipleNegativesRanking)"
    ),
    scale: float | None = typer.Option(None, help="ranking loss scale, 1/temperature (100)"),
    lr: float | None = typer.Option(None, help="default 1e-5"),
    max_seq_length: int | None = typer.Option(None, help="default 128 CPU, 256 CUDA"),
    max_steps: int | None = typer.Option(None, help="stop after N steps (-1: epochs decide)"),
    skip_eval: bool = typer.Option(False, help="register without the evaluation table"),
    as_json: bool = typer.Option(False, "--json", help="print the new version as JSON"),
) -> None:
    """Query → passage tuning (MultipleNegativesRanking) with BM25 hard negatives."""
    from chatda.text.morphemes import default_morphemes
    from chatda.text.sentences import split_sentences
    from train import retrieval
    from train.data import read_feedback
    from train.evaluate import EvalSuite, evaluator_for
    from train.hard_negatives import Bm25Index

    registry = _registry()
    parent = _resolve(registry, model)
    config = _train_config(
        "retrieval",
        device,
        seed=seed,
        epochs=epochs,
        batch_size=batch_size,
        mini_batch_size=mini_batch_size,
        ranking_scale=scale,
        learning_rate=lr,
        max_seq_length=max_seq_length,
        max_steps=max_steps,
    )
    pairs = max_pairs or (10000 if config.device.startswith("cuda") else 2000)
    root = _data_dir(data_dir)
    terms = default_morphemes().terms
    d, bm25 = retrieval.build_data(
        root,
        read_feedback(feedback) if feedback else [],
        pairs,
        bm25_share,
        seed,
        index=lambda passages: Bm25Index(passages, terms),
        split=split_sentences,
    )
    evaluate = (
        None if skip_eval else evaluator_for(registry, parent, EvalSuite.load(root), config.device)
    )
    version = retrieval.train(
        registry,
        parent,
        d,
        bm25,
        config,
        negatives_k=negatives_k,
        filter_margin=None if no_filter else filter_margin,
        evaluate=evaluate,
    )
    _report(version, as_json)


@app.command("merge")
def merge_command(
    model: str = typer.Option(..., "--model", help="the fine-tuned name@version (parent)"),
    with_model: str | None = typer.Option(
        None, "--with", help="name@version to interpolate toward; default: the model's parent"
    ),
    weight: float = typer.Option(
        0.5, min=0.0, max=1.0, help="share of --model's weights (1: --model, 0: --with)"
    ),
    data_dir: Path | None = typer.Option(None, help=DATA_DIR_HELP),
    device: str = typer.Option("auto", help="evaluation device: auto | cpu | cuda"),
    skip_eval: bool = typer.Option(False, help="register without the evaluation table"),
    as_json: bool = typer.Option(False, "--json", help="print the new version as JSON"),
) -> None:
    """Average a fine-tuned version's weights with another's (WiSE-FT): a new version."""
    from train.evaluate import EvalSuite, evaluator_for
    from train.merge import merge

    registry = _registry()
    tuned = _resolve(registry, model)
    other_ref = with_model or tuned.manifest.parent
    if not other_ref:
        raise typer.BadParameter(f"{tuned.manifest.ref} has no parent: name one with --with")
    other = _resolve(registry, other_ref)
    evaluate = (
        None
        if skip_eval
        else evaluator_for(registry, tuned, EvalSuite.load(_data_dir(data_dir)), device)
    )
    try:
        version = merge(registry, tuned, other, weight, evaluate)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    _report(version, as_json)


@app.command("export-onnx")
def export_onnx_command(
    model: str | None = typer.Option(None, "--model", help="name@version; default: serving"),
) -> None:
    """Export a version to ONNX for the CPU backends: fp32 (``onnx``) and int8 (``onnx-int8``)."""
    from chatda.models.onnx_encoder import derive

    version = _resolve(_registry(), model)
    for backend in ("onnx", "onnx-int8"):
        typer.echo(f"{backend}: {derive(version, backend)}")


@app.command("adapter")
def adapter_command(
    out: Path | None = typer.Option(
        None,
        help="adapter folder (default: the committed chatda/models/adapters/e5-small-ko-tuned)",
    ),
    data_dir: Path | None = typer.Option(None, help=DATA_DIR_HELP),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    seed: int = typer.Option(42),
    rank: int = typer.Option(8, help="LoRA rank"),
    alpha: int = typer.Option(16, help="LoRA alpha (the update is scaled by alpha / rank)"),
    weight: float = typer.Option(
        1.0, min=0.0, max=1.0, help="share of the trained update shipped (WiSE-FT; 1: all)"
    ),
    epochs: float | None = typer.Option(None, help="NLI/paraphrase epochs (CPU 1, CUDA 2)"),
    sts_epochs: float | None = typer.Option(None, help="KorSTS epochs after them (CPU 1, CUDA 4)"),
    batch_size: int | None = typer.Option(None, help="default 32 on CPU, 128 on CUDA"),
    lr: float | None = typer.Option(None, help="default 1e-4"),
    max_seq_length: int | None = typer.Option(None, help="default 64 on CPU, 128 on CUDA"),
    max_steps: int | None = typer.Option(None, help="stop each stage after N steps (tests)"),
    max_triplets: int | None = typer.Option(None, help="NLI triplets (default: all 3,500)"),
    max_paraphrases: int | None = typer.Option(None, help="paraphrase pairs (default: all 3,405)"),
    max_sts: int | None = typer.Option(
        None, help="KorSTS train pairs (default: all 5,749; 0: no KorSTS stage)"
    ),
) -> None:
    """Train the NLI/STS recipe as a LoRA adapter on base; `chatda model prepare` merges it."""
    from chatda.models.prepare import BASE_VERSION
    from chatda.models.tuned import DEFAULT_ADAPTER
    from train import adapter, nli_sts

    registry = _registry()
    base = _resolve(registry, f"@{BASE_VERSION}")
    config = _train_config(
        "adapter",
        device,
        seed=seed,
        epochs=epochs,
        sts_epochs=sts_epochs,
        batch_size=batch_size,
        learning_rate=lr,
        max_seq_length=max_seq_length,
        max_steps=max_steps,
    )
    caps = {"max_triplets": max_triplets, "max_paraphrases": max_paraphrases, "max_sts": max_sts}
    root = _data_dir(data_dir)
    try:
        d = nli_sts.load_data(
            root,
            seed,
            max_triplets=caps["max_triplets"],
            max_sts=caps["max_sts"],
            max_paraphrases=caps["max_paraphrases"],
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    recipe = {
        "data_dir": "shared/data (issue data README): kornli, klue NLI dev, question_pair, korsts",
        "caps": caps,
        "seed": seed,
    }
    folder = out or DEFAULT_ADAPTER
    manifest = adapter.train_adapter(
        base, d, config, adapter.LoraSpec(rank=rank, alpha=alpha, weight=weight), folder, recipe
    )
    typer.echo(f"adapter written to {folder}")
    typer.echo(f"merged fingerprint {manifest['merged_fingerprint']}")
    typer.echo(f"selection {manifest['training']['selection']}")


@app.command("adapter-gate")
def adapter_gate_command(
    adapter: Path | None = typer.Option(
        None,
        help="adapter folder (default: the committed chatda/models/adapters/e5-small-ko-tuned)",
    ),
    data_dir: Path | None = typer.Option(None, help=DATA_DIR_HELP),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    open_set: Path | None = typer.Option(
        None,
        help="folder written by `python -m bench.open_set`: its split A's ranking and decision "
        "metrics join the gates",
    ),
) -> None:
    """Evaluate base and base + adapter (KorQuAD, demo intents, decision) and record in the
    adapter's manifest whether `chatda model prepare` serves the tuned model by default."""
    from chatda.models.encoder import resolve_device
    from chatda.models.prepare import BASE_VERSION
    from chatda.models.tuned import DEFAULT_ADAPTER
    from train.adapter_gate import run_gate
    from train.evaluate import EvalSuite, markdown
    from train.promotion import GATES

    registry = _registry()
    base = _resolve(registry, f"@{BASE_VERSION}")
    folder = adapter or DEFAULT_ADAPTER
    suite = EvalSuite.load(_data_dir(data_dir))
    recorded = run_gate(registry, base, folder, suite, resolve_device(device), open_set)
    evaluation, gate = recorded["evaluation"], recorded["gate"]
    before, after = evaluation["parent_metrics"], evaluation["metrics"]
    typer.echo(markdown({evaluation["parent"]: before, f"{recorded['name']}@tuned": after}))
    for name in gate["gates"][len(GATES) :]:
        typer.echo(f"  {name}: {before.get(name)} → {after.get(name)}")
    for reason in gate["reasons"]:
        typer.echo(f"  {reason}")
    state = "served by default" if gate["preferred"] else "not preferred: base stays the default"
    typer.echo(f"{recorded['name']}@{recorded['version']}: {state}")
