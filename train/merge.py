"""``chatda train merge``: weight-space interpolation of a fine-tuned version with another one.

Fine-tuning on NLI/STS moves e5 toward graded similarity but away from the retrieval it was
pre-trained for; averaging the weights of the tuned model and its parent (WiSE-FT, Wortsman et
al. 2022) keeps much of the tuned gain while recovering the parent's behaviour on the
distributions the tuning data does not cover. Both models come from one pre-trained start, so
their weights lie in one basin and the average is itself a good model: no training, seconds of
CPU, and the result is a new registry version evaluated and gated like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from chatda.models.registry import ModelRegistry, ModelVersion
from train.runner import register


def interpolate(
    tuned: Mapping[str, torch.Tensor], other: Mapping[str, torch.Tensor], weight: float
) -> dict[str, torch.Tensor]:
    """``weight · tuned + (1 − weight) · other`` per floating tensor; integer buffers from tuned.

    Raises ValueError when the two are not the same architecture (keys or shapes differ): an
    average of unrelated tensors would load silently and serve garbage.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight}")
    if tuned.keys() != other.keys():
        missing = sorted(set(tuned) ^ set(other))[:3]
        raise ValueError(f"models differ in parameters (e.g. {', '.join(missing)})")
    merged: dict[str, torch.Tensor] = {}
    for key, a in tuned.items():
        b = other[key]
        if a.shape != b.shape:
            raise ValueError(f"{key}: shape {tuple(a.shape)} vs {tuple(b.shape)}")
        if a.is_floating_point():
            merged[key] = torch.lerp(b.to(a.dtype), a, weight)
        else:
            merged[key] = a.clone()
    return merged


def merge(
    registry: ModelRegistry,
    tuned: ModelVersion,
    other: ModelVersion,
    weight: float,
    evaluate: Callable[[ModelVersion], dict[str, Any]] | None = None,
) -> ModelVersion:
    """Register ``merge-<time>``: tuned's serving settings, weights interpolated toward ``other``.

    ``tuned`` is the manifest's parent (its prompts and truncation serve); ``other`` is recorded
    beside it, so the lineage of both sides stays traceable.
    """
    from sentence_transformers import SentenceTransformer

    a, b = tuned.manifest, other.manifest
    if (a.dim, a.prompts) != (b.dim, b.prompts):
        raise ValueError(f"{a.ref} and {b.ref} differ in dimension or prompts")
    model = SentenceTransformer(str(tuned.path), device="cpu")
    source = SentenceTransformer(str(other.path), device="cpu")
    model.load_state_dict(interpolate(model.state_dict(), source.state_dict(), weight))
    training = {
        "task": "merge",
        "merged": {a.ref: weight, b.ref: round(1.0 - weight, 6)},
        "method": "linear weight interpolation (WiSE-FT)",
    }
    return register(registry, tuned, model, "merge", training, evaluate)
