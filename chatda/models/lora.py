"""Merging a LoRA adapter into base weights, bit for bit the same on every machine.

``chatda model prepare`` rebuilds the tuned model on the user's machine and refuses it unless its
weights hash to the fingerprint recorded at training time. A BLAS matmul may sum in any order
(threads, CPU features, GPU), so ``W + s·B·A`` through ``torch.matmul`` can differ in the last
bit between machines. Here the rank-r product is a fixed sequence of r elementwise float64
multiply-adds (each IEEE-rounded, no reduction order to vary), rounded to float32 once; the
result depends only on the numbers in the two files. PEFT is not needed to serve: it only trains.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
# PEFT prefixes the wrapped model's parameter names with this when it saves an adapter.
PEFT_PREFIX = "base_model.model."


class AdapterError(ValueError):
    """The adapter cannot be merged as recorded: unsupported kind, or it does not fit the base."""


@dataclass(frozen=True)
class LoraShape:
    """The parts of PEFT's ``adapter_config.json`` that decide the merged weights."""

    rank: int
    alpha: float
    rslora: bool

    @property
    def scaling(self) -> float:
        return self.alpha / (self.rank**0.5 if self.rslora else self.rank)

    @classmethod
    def read(cls, folder: Path) -> LoraShape:
        config = json.loads((folder / ADAPTER_CONFIG).read_text())
        if config.get("peft_type") != "LORA":
            raise AdapterError(f"{folder} is a {config.get('peft_type')} adapter, not LoRA")
        if config.get("use_dora") or config.get("rank_pattern") or config.get("alpha_pattern"):
            raise AdapterError(f"{folder}: DoRA and per-module ranks are not supported")
        if config.get("bias", "none") != "none":
            raise AdapterError(f"{folder}: adapters that train biases are not supported")
        return cls(
            rank=int(config["r"]),
            alpha=float(config["lora_alpha"]),
            rslora=bool(config.get("use_rslora", False)),
        )


def merge_lora(
    base: Mapping[str, torch.Tensor], adapter: Mapping[str, torch.Tensor], shape: LoraShape
) -> dict[str, torch.Tensor]:
    """Base weights with ``scaling · B @ A`` added to every weight the adapter targets.

    ``adapter`` holds PEFT's ``<module>.lora_A.weight`` (r × in) and ``<module>.lora_B.weight``
    (out × r) pairs; every pair must name a float32 base weight of shape out × in.
    """
    merged = dict(base)
    modules = sorted(
        key.removeprefix(PEFT_PREFIX).removesuffix(".lora_A.weight")
        for key in adapter
        if key.endswith(".lora_A.weight")
    )
    if not modules or len(adapter) != 2 * len(modules):
        raise AdapterError("the adapter holds no lora_A/lora_B pairs, or other tensors too")
    for module in modules:
        a = _adapter_tensor(adapter, f"{module}.lora_A.weight").to(torch.float64)
        b = _adapter_tensor(adapter, f"{module}.lora_B.weight").to(torch.float64)
        weight = base.get(f"{module}.weight")
        if weight is None or weight.dtype != torch.float32:
            raise AdapterError(f"the base has no float32 weight {module}.weight for the adapter")
        if a.shape[0] != shape.rank or weight.shape != (b.shape[0], a.shape[1]):
            raise AdapterError(
                f"{module}: adapter {tuple(b.shape)}·{tuple(a.shape)} does not fit base "
                f"{tuple(weight.shape)} at rank {shape.rank}"
            )
        delta = torch.zeros(weight.shape, dtype=torch.float64)
        for k in range(shape.rank):
            delta += b[:, k : k + 1] * a[k : k + 1, :]
        merged[f"{module}.weight"] = (weight.to(torch.float64) + delta * shape.scaling).to(
            torch.float32
        )
    return merged


def _adapter_tensor(adapter: Mapping[str, torch.Tensor], key: str) -> torch.Tensor:
    found = adapter.get(PEFT_PREFIX + key, adapter.get(key))
    if found is None:
        raise AdapterError(f"the adapter has {key.rsplit('.', 2)[0]} without its other half")
    return found


def fingerprint(state: Mapping[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order.

    Of the weights, not of a file: safetensors headers may order or pad differently between
    library versions while the model is the same.
    """
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return "sha256:" + digest.hexdigest()
