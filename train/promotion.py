"""The promotion rule: a candidate serves only if it retrieves at least as well as what serves now.

STS can improve while retrieval quietly gets worse, and retrieval is the product; so the gate is
KorQuAD dev MRR@10 and Recall@5, compared on the same evaluation table. ``force`` exists for the
operator who knows better (e.g. a rollback), and the decision still says what was overridden.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from chatda.models.registry import ModelRegistry, ModelVersion
from train.evaluate import LABELS, stored_metrics

GATES = ("korquad_mrr10", "korquad_r5")


@dataclass(frozen=True)
class Decision:
    """Whether the candidate meets the gates, why not, and whether serving changed."""

    allowed: bool
    promoted: bool
    reasons: list[str] = field(default_factory=list)


def meets_gates(
    candidate: dict[str, float] | None,
    serving: dict[str, float] | None,
    gates: Sequence[str] = GATES,
    labels: Mapping[str, str] = LABELS,
) -> tuple[bool, list[str]]:
    """Every gate metric of the candidate ≥ the serving model's; missing numbers never pass.

    ``gates``: the metrics compared (``chatda train adapter-gate`` adds the demo intents and
    their decision metrics to the KorQuAD pair); ``labels`` names them in the reasons.
    """
    if candidate is None:
        return False, ["the candidate has no evaluation; run `chatda train eval --model …`"]
    if serving is None:
        return False, ["the serving model has no evaluation; run `chatda train eval`"]
    reasons = []
    for gate in gates:
        mine, theirs = candidate.get(gate), serving.get(gate)
        label = labels.get(gate, gate)
        if mine is None or theirs is None:
            reasons.append(f"{label} is missing from an evaluation")
        elif mine < theirs:
            reasons.append(f"{label} {mine:.2f} < serving {theirs:.2f}")
    return not reasons, reasons


def promote(registry: ModelRegistry, candidate: ModelVersion, force: bool = False) -> Decision:
    """Point SERVING at ``candidate`` if it meets the gates, or unconditionally with ``force``."""
    name = candidate.manifest.name
    serving_version = registry.serving_version(name)
    if serving_version == candidate.manifest.version:
        return Decision(allowed=True, promoted=False, reasons=["already serving"])
    serving = registry.get(name, serving_version) if serving_version else None
    allowed, reasons = meets_gates(
        stored_metrics(registry, candidate),
        stored_metrics(registry, serving) if serving else {g: float("-inf") for g in GATES},
    )
    if allowed or force:
        registry.set_serving(name, candidate.manifest.version)
    return Decision(allowed=allowed, promoted=allowed or force, reasons=reasons)
