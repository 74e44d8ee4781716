"""``chatda train adapter``: the NLI/STS recipe as a LoRA adapter that ships in the repository.

A fully fine-tuned model is 470 MB and lives only in the data dir it was trained in, so a fresh
install serves base. A LoRA adapter of the same recipe is a few MB: it is committed with a
training manifest (data, seed, hyper-parameters, the base's fingerprint, the merged model's
fingerprint, metrics), and ``chatda model prepare`` merges it into the base on every install
(:mod:`chatda.models.tuned`). The base weights stay frozen; only the low-rank A/B matrices train.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatda.models.lora import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    PEFT_PREFIX,
    LoraShape,
    fingerprint,
    merge_lora,
)
from chatda.models.registry import ModelVersion
from chatda.models.tuned import MANIFEST, base_fingerprint, base_state
from train import nli_sts
from train.runner import TrainConfig, load_for_training

if TYPE_CHECKING:
    from peft import LoraConfig
    from torch import nn


@dataclass(frozen=True)
class LoraSpec:
    """Rank, scale and where the low-rank updates go: every linear layer of the encoder
    (attention query/key/value/output and both feed-forward layers)."""

    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("query", "key", "value", "dense")
    weight: float = 1.0
    """The share of the trained update that ships: the saved ``lora_alpha`` is ``alpha x
    weight``, so the merged model is base + weight x the update (WiSE-FT, Wortsman et al. 2022,
    as ``chatda train merge`` does for full fine-tunes). Halfway kept what the full update gained
    and gave back most of what it cost on the open-set decision (BENCHMARKS § 6)."""


def sha256_of(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def train_adapter(
    base: ModelVersion,
    d: nli_sts.NliStsData,
    config: TrainConfig,
    spec: LoraSpec,
    out: Path,
    recipe: dict[str, Any],
) -> dict[str, Any]:
    """Train a LoRA adapter on ``base`` with the NLI/STS stages and write it to ``out``.

    ``out`` is replaced only once everything is written (adapter, config, manifest). The
    manifest's ``merged_fingerprint`` is computed by the same merge ``prepare`` runs, so a
    prepared model is checked against exactly what was trained. ``recipe`` (data caps and the
    data folder's files) goes into the manifest as given.
    """
    from peft import LoraConfig, inject_adapter_in_model

    model = load_for_training(base, config)
    lora = LoraConfig(
        r=spec.rank,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=list(spec.target_modules),
        bias="none",
        base_model_name_or_path=base.manifest.ref,
    )
    # PEFT's own injection (it freezes everything but the A/B matrices): transformers'
    # add_adapter wrapper insists on a newer PEFT than the one pinned.
    bert: Any = model[0].auto_model
    inject_adapter_in_model(lora, bert)
    run = nli_sts.run_stages(model, base.manifest, d, config)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        save_adapter(bert, lora, staging, spec.weight)
        merged = merge_lora(
            base_state(base), _load(staging / ADAPTER_WEIGHTS), LoraShape.read(staging)
        )
        manifest = {
            "name": base.manifest.name,
            "version": "tuned",
            "base": {
                "ref": base.manifest.ref,
                "fingerprint": base_fingerprint(base),
                "source": base.manifest.source,
            },
            "adapter": {"sha256": sha256_of(staging / ADAPTER_WEIGHTS), "lora": asdict(spec)},
            "merged_fingerprint": fingerprint(merged),
            "recipe": recipe,
            "training": nli_sts.training_record(d, config, run),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
        for path in staging.iterdir():
            path.chmod(0o644)
        staging.chmod(0o755)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return manifest


def save_adapter(bert: nn.Module, lora: LoraConfig, folder: Path, weight: float = 1.0) -> None:
    """PEFT's layout (``adapter_config.json`` + ``adapter_model.safetensors``, names prefixed
    ``base_model.model.``), so PEFT itself can load it; keys sorted, JSON sorted. The trained
    A/B matrices are saved as they are; ``weight`` scales ``lora_alpha`` (``LoraSpec.weight``)."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    state = get_peft_model_state_dict(bert, save_embedding_layers=False)
    save_file(
        {PEFT_PREFIX + key: state[key].detach().cpu().contiguous() for key in sorted(state)},
        str(folder / ADAPTER_WEIGHTS),
        metadata={"format": "pt"},
    )
    config = lora.to_dict()
    config["target_modules"] = sorted(config["target_modules"])
    config["lora_alpha"] = lora.lora_alpha * weight
    (folder / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def _load(path: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(path))
