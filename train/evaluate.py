"""The evaluation table every run reports: STS quality and retrieval quality side by side.

STS (KorSTS test, KLUE STS dev) is what ``nli-sts`` optimises; KorQuAD dev retrieval is what the
product serves. Reporting both in one table makes an STS gain that costs retrieval visible.
Texts are encoded through the serving path (anything with ``encode(texts, kind)``, normally
:class:`chatda.models.encoder.Encoder`), so prompts and truncation match production.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from scipy.stats import spearmanr
from tqdm import tqdm

from chatda.evaluation.metrics import gold_ranks, recall_from_ranks, rr_from_ranks
from chatda.models.registry import ModelRegistry, ModelVersion
from train import data
from train.prompts import Kind

METRICS = (
    "korsts_test",
    "klue_sts_dev",
    "korquad_r1",
    "korquad_r5",
    "korquad_r20",
    "korquad_mrr10",
)
LABELS = {
    "korsts_test": "KorSTS test ρ×100",
    "klue_sts_dev": "KLUE STS dev ρ×100",
    "korquad_r1": "KorQuAD R@1",
    "korquad_r5": "KorQuAD R@5",
    "korquad_r20": "KorQuAD R@20",
    "korquad_mrr10": "KorQuAD MRR@10",
}
BLOCK = 256
SPLITS = {
    "korsts_test": "korsts/sts-test.tsv (1,379 pairs)",
    "klue_sts_dev": "klue/klue-sts-v1.1_dev.json (519 pairs)",
    "korquad": "korquad1/KorQuAD_v1.0_dev.json: 5,774 questions vs its 961 distinct paragraphs",
}


class TextEncoder(Protocol):
    """What evaluation needs from a model: prompted, L2-normalised float32 rows."""

    def encode(self, texts: Sequence[str], kind: Kind, batch_size: int = ...) -> np.ndarray: ...


@dataclass(frozen=True)
class EvalSuite:
    """The reporting splits, loaded once; tests build tiny ones by hand."""

    korsts_test: list[data.ScoredPair]
    klue_sts_dev: list[data.ScoredPair]
    korquad: data.RetrievalSet

    @classmethod
    def load(cls, data_dir: Path) -> EvalSuite:
        return cls(
            korsts_test=data.korsts(data_dir, "test"),
            klue_sts_dev=data.klue_sts_dev(data_dir),
            korquad=data.korquad_dev(data_dir),
        )


def encode(encoder: TextEncoder, texts: Sequence[str], kind: Kind, desc: str) -> np.ndarray:
    """``encoder.encode`` in length-sorted blocks with a progress bar: evaluation takes minutes."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: np.ndarray | None = None
    for start in tqdm(range(0, len(order), BLOCK), desc=desc, unit="block", leave=False):
        rows = order[start : start + BLOCK]
        emb = encoder.encode([texts[i] for i in rows], kind)
        if out is None:
            out = np.empty((len(texts), emb.shape[1]), dtype=np.float32)
        out[rows] = emb
    assert out is not None, "nothing to encode"
    return out


def sts_spearman(encoder: TextEncoder, pairs: Sequence[data.ScoredPair], desc: str) -> float:
    """Spearman ×100 of cosine vs gold; both sides are queries (STS is symmetric)."""
    a = encode(encoder, [p.sentence1 for p in pairs], "query", desc)
    b = encode(encoder, [p.sentence2 for p in pairs], "query", desc)
    cosine = np.sum(a * b, axis=1)
    rho = spearmanr(cosine, [p.score for p in pairs]).statistic
    return float(rho) * 100.0


def retrieval_metrics(encoder: TextEncoder, rset: data.RetrievalSet) -> dict[str, float]:
    """Recall@1/5/20 and MRR@10 (×100) of each query's gold passage among all passages."""
    passages = encode(encoder, rset.passages, "passage", "KorQuAD passages")
    queries = encode(encoder, rset.queries, "query", "KorQuAD questions")
    rank = gold_ranks(queries @ passages.T, rset.gold)
    return {
        "korquad_r1": float(np.mean(recall_from_ranks(rank, 1))) * 100.0,
        "korquad_r5": float(np.mean(recall_from_ranks(rank, 5))) * 100.0,
        "korquad_r20": float(np.mean(recall_from_ranks(rank, 20))) * 100.0,
        "korquad_mrr10": float(np.mean(rr_from_ranks(rank, 10))) * 100.0,
    }


def evaluate(encoder: TextEncoder, suite: EvalSuite) -> dict[str, float]:
    """The full table row for one model, rounded for display and storage."""
    row = {
        "korsts_test": sts_spearman(encoder, suite.korsts_test, "KorSTS test"),
        "klue_sts_dev": sts_spearman(encoder, suite.klue_sts_dev, "KLUE STS dev"),
        **retrieval_metrics(encoder, suite.korquad),
    }
    return {k: round(v, 2) for k, v in row.items()}


def markdown(rows: dict[str, dict[str, float]]) -> str:
    """One line per model ref, one column per metric."""
    head = "| model | " + " | ".join(LABELS[m] for m in METRICS) + " |"
    rule = "|---|" + "---:|" * len(METRICS)
    lines = [head, rule]
    for ref, row in rows.items():
        cells = " | ".join(f"{row[m]:.2f}" if m in row else "–" for m in METRICS)
        lines.append(f"| {ref} | {cells} |")
    return "\n".join(lines)


def _threads() -> int:
    """``CHATDA_CPU_THREADS``, the product's own CPU knob (0: all cores)."""
    from chatda.settings import get_settings

    return get_settings().cpu_threads


def _cache_file(registry: ModelRegistry, version: ModelVersion) -> Path:
    """Versions are immutable, so their evaluation is cached beside them (dot-folder: unlisted)."""
    m = version.manifest
    return registry.root / m.name / ".evaluations" / f"{m.version}.json"


def stored_metrics(registry: ModelRegistry, version: ModelVersion) -> dict[str, float] | None:
    """A version's metrics from its manifest (trained versions) or the cache (e.g. ``base``)."""
    evaluation = version.manifest.evaluation or {}
    if "metrics" in evaluation:
        return dict(evaluation["metrics"])
    cache = _cache_file(registry, version)
    if cache.is_file():
        return dict(json.loads(cache.read_text())["metrics"])
    return None


def store_metrics(
    registry: ModelRegistry, version: ModelVersion, metrics: dict[str, float]
) -> None:
    """Remember an evaluation of a version whose manifest has none (the base model)."""
    cache = _cache_file(registry, version)
    cache.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {"ref": version.manifest.ref, "splits": SPLITS, "metrics": metrics}
    cache.write_text(json.dumps(payload, ensure_ascii=False, indent=2))


def metrics_of(
    registry: ModelRegistry, version: ModelVersion, suite: EvalSuite, device: str
) -> dict[str, float]:
    """Stored metrics when there are some, otherwise evaluate now and cache."""
    from chatda.models.encoder import TorchEncoder

    found = stored_metrics(registry, version)
    if found is not None:
        return found
    metrics = evaluate(TorchEncoder(version, device=device, cpu_threads=_threads()), suite)
    store_metrics(registry, version, metrics)
    return metrics


def evaluator_for(
    registry: ModelRegistry, parent: ModelVersion, suite: EvalSuite, device: str
) -> Callable[[ModelVersion], dict[str, Any]]:
    """The manifest's ``evaluation`` for a new version: its table next to its parent's."""
    from chatda.models.encoder import TorchEncoder

    def run(candidate: ModelVersion) -> dict[str, Any]:
        parent_metrics = metrics_of(registry, parent, suite, device)
        return {
            "metrics": evaluate(
                TorchEncoder(candidate, device=device, cpu_threads=_threads()), suite
            ),
            "parent": parent.manifest.ref,
            "parent_metrics": parent_metrics,
            "splits": SPLITS,
        }

    return run
