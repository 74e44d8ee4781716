"""``chatda train adapter-gate``: does the tuned model serve by default? Measured, then recorded.

The tuned model replaces base on a fresh install only if it is at least as good on everything the
product is judged by: KorQuAD dev retrieval (the promotion gate's metrics), the demo intents'
ranking (``chatda eval --mode intents`` on the demo catalog and its queries) and that eval's
``decision`` block (in-scope answered correctly, out-of-scope rejected, AUROC). The same rule as
``chatda model promote`` (:func:`train.promotion.meets_gates`), over more metrics. The result
goes into the adapter's manifest, which ``chatda model prepare`` reads on every install.

Tuned is built into a private registry exactly as ``prepare`` builds it, and both intent evals
run with a private data dir, so nothing the operator runs is touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from chatda.models.registry import ModelRegistry, ModelVersion
from chatda.models.tuned import MANIFEST, build_tuned
from train.evaluate import LABELS as EVAL_LABELS
from train.evaluate import SPLITS, EvalSuite, evaluate, metrics_of
from train.promotion import GATES, meets_gates

INTENT_GATES = (
    "intents_fused_r1",
    "intents_fused_mrr10",
    "decision_in_scope_correct",
    "decision_out_of_scope_rejected",
    "decision_auroc",
)
ALL_GATES = (*GATES, *INTENT_GATES)
LABELS = {
    "intents_fused_r1": "demo intents fused recall@1",
    "intents_fused_mrr10": "demo intents fused MRR@10",
    "decision_in_scope_correct": "demo decision: in-scope answered correctly",
    "decision_out_of_scope_rejected": "demo decision: out-of-scope rejected",
    "decision_auroc": "demo decision: AUROC",
}


def demo_corpus(out: Path) -> Path:
    """The demo catalog as ``chatda eval`` corpus lines: title = intent name, text = its hints
    (as BENCHMARKS § 2 measures it)."""
    from chatda.catalog.file_format import read_catalog
    from chatda.demo import catalog_path

    intents = read_catalog(catalog_path())
    lines = [
        json.dumps({"id": i.id, "title": i.name, "text": "\n".join(i.hints)}, ensure_ascii=False)
        for i in intents
    ]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def intent_metrics(result: dict[str, Any]) -> dict[str, float]:
    """The gate's numbers from a ``chatda eval --mode intents`` result, as percentages."""
    fused = result["methods"]["fused"]
    served = result["decision"]["served"]
    curve = served.get("curve") or result["decision"]["old_rule"]["curve"]
    raw = {
        "intents_fused_r1": fused["recall@1"],
        "intents_fused_mrr10": fused["mrr@10"],
        "decision_in_scope_correct": served["in_scope_correct"],
        "decision_out_of_scope_rejected": served["out_of_scope_rejected"],
        "decision_auroc": curve["auroc"],
    }
    return {k: round(float(v) * 100.0, 2) for k, v in raw.items() if v is not None}


def _start_intents_eval(
    models_dir: Path, data_dir: Path, ref: str, corpus: Path
) -> tuple[subprocess.Popen[bytes], Path]:
    """``chatda eval --mode intents`` in its own process (the command users run, unchanged),
    started so it runs beside the KorQuAD table; :func:`_result` waits for it."""
    from chatda.demo import eval_dir

    out = data_dir / f"intents-{ref.replace('@', '-')}.json"
    env = {**os.environ, "CHATDA_MODELS_DIR": str(models_dir), "CHATDA_DATA_DIR": str(data_dir)}
    command = [sys.executable, "-m", "cli.main", "eval", "--mode", "intents", "--corpus"]
    command += [str(corpus), "--queries", str(eval_dir() / "intents_queries.jsonl")]
    return subprocess.Popen([*command, "--model", ref, "--json", str(out)], env=env), out


def _result(started: tuple[subprocess.Popen[bytes], Path]) -> dict[str, Any]:
    process, out = started
    if process.wait() != 0:
        raise RuntimeError(f"chatda eval --mode intents failed ({process.args!r})")
    return dict(json.loads(out.read_text(encoding="utf-8")))


def run_gate(
    registry: ModelRegistry, base: ModelVersion, adapter_dir: Path, suite: EvalSuite, device: str
) -> dict[str, Any]:
    """Evaluate base and base + adapter, decide, and write ``evaluation`` and ``gate`` into the
    adapter's manifest. Base's KorQuAD table comes from ``registry``'s cache when it has one."""
    from chatda.models.encoder import TorchEncoder

    with tempfile.TemporaryDirectory(prefix="chatda-gate-") as scratch:
        root = Path(scratch)
        private = ModelRegistry(root / "models")
        tuned, _ = build_tuned(private, base, adapter_dir)
        corpus = demo_corpus(root / "demo_corpus.jsonl")
        started = {
            ref: _start_intents_eval(models_dir, root, ref, corpus)
            for ref, models_dir in (
                (base.manifest.ref, registry.root),
                (tuned.manifest.ref, private.root),
            )
        }
        tables = {
            base.manifest.ref: metrics_of(registry, base, suite, device),
            tuned.manifest.ref: evaluate(TorchEncoder(tuned, device=device), suite),
        }
        rows = {ref: {**tables[ref], **intent_metrics(_result(s))} for ref, s in started.items()}
    base_row, tuned_row = rows[base.manifest.ref], rows[tuned.manifest.ref]
    preferred, reasons = meets_gates(
        tuned_row, base_row, gates=ALL_GATES, labels={**EVAL_LABELS, **LABELS}
    )
    recorded = json.loads((adapter_dir / MANIFEST).read_text())
    recorded["evaluation"] = {
        "metrics": tuned_row,
        "parent": base.manifest.ref,
        "parent_metrics": base_row,
        "splits": {
            **SPLITS,
            "intents": "chatda/demo/catalog.yaml (120 intents) vs "
            "chatda/demo/eval/intents_queries.jsonl (60 in-scope, 10 out-of-scope)",
        },
    }
    recorded["gate"] = {"preferred": preferred, "gates": list(ALL_GATES), "reasons": reasons}
    (adapter_dir / MANIFEST).write_text(json.dumps(recorded, ensure_ascii=False, indent=2) + "\n")
    return recorded
