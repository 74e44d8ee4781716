"""The LoRA merge ``model prepare`` runs: PEFT's arithmetic, in a machine-independent order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from chatda.models.lora import AdapterError, LoraShape, fingerprint, merge_lora


def _parts(seed: int = 0) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    base = {
        "layer.q.weight": torch.randn(6, 5, generator=g),
        "layer.q.bias": torch.randn(6, generator=g),
        "layer.k.weight": torch.randn(6, 5, generator=g),
    }
    adapter = {
        "base_model.model.layer.q.lora_A.weight": torch.randn(3, 5, generator=g),
        "base_model.model.layer.q.lora_B.weight": torch.randn(6, 3, generator=g),
    }
    return base, adapter


@pytest.mark.parametrize(("rslora", "scaling"), [(False, 8 / 3), (True, 8 / 3**0.5)])
def test_merge_adds_scaled_b_times_a_to_the_targeted_weight(rslora: bool, scaling: float) -> None:
    base, adapter = _parts()
    merged = merge_lora(base, adapter, LoraShape(rank=3, alpha=8, rslora=rslora))
    a = adapter["base_model.model.layer.q.lora_A.weight"]
    b = adapter["base_model.model.layer.q.lora_B.weight"]
    torch.testing.assert_close(merged["layer.q.weight"], base["layer.q.weight"] + scaling * (b @ a))
    assert merged["layer.q.weight"].dtype == torch.float32
    assert merged["layer.k.weight"] is base["layer.k.weight"]  # untargeted: untouched
    assert merged["layer.q.bias"] is base["layer.q.bias"]


def test_fingerprint_follows_every_bit_and_only_the_weights() -> None:
    base, adapter = _parts()
    shape = LoraShape(rank=3, alpha=8, rslora=False)
    once = fingerprint(merge_lora(base, adapter, shape))
    assert once == fingerprint(merge_lora(dict(reversed(base.items())), adapter, shape))
    nudged = dict(base)
    weight = base["layer.k.weight"].clone()
    weight.view(torch.int32)[0, 0] ^= 1  # one bit of one float
    nudged["layer.k.weight"] = weight
    assert fingerprint(merge_lora(nudged, adapter, shape)) != once


def test_an_adapter_that_does_not_fit_the_base_is_refused() -> None:
    base, adapter = _parts()
    with pytest.raises(AdapterError, match="does not fit"):
        merge_lora(base, adapter, LoraShape(rank=2, alpha=8, rslora=False))
    lonely = {k: v for k, v in adapter.items() if "lora_A" in k}
    with pytest.raises(AdapterError):
        merge_lora(base, lonely, LoraShape(rank=3, alpha=8, rslora=False))
    elsewhere = {k.replace("layer.q", "layer.v"): v for k, v in adapter.items()}
    with pytest.raises(AdapterError, match="no float32 weight"):
        merge_lora(base, elsewhere, LoraShape(rank=3, alpha=8, rslora=False))


def test_only_plain_lora_configs_are_read(tmp_path: Path) -> None:
    config = {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "bias": "none"}
    (tmp_path / "adapter_config.json").write_text(json.dumps(config))
    assert LoraShape.read(tmp_path) == LoraShape(rank=4, alpha=8.0, rslora=False)
    (tmp_path / "adapter_config.json").write_text(json.dumps({**config, "use_dora": True}))
    with pytest.raises(AdapterError, match="DoRA"):
        LoraShape.read(tmp_path)
