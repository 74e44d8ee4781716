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
from train.evaluate import METRICS, SPLITS, EvalSuite, evaluate, metrics_of
from train.promotion import GATES, meets_gates

INTENT_GATES = (
    "intents_fused_r1",
    "intents_fused_mrr10",
    "decision_in_scope_correct",
    "decision_out_of_scope_rejected",
    "decision_auroc",
)
ALL_GATES = (*GATES, *INTENT_GATES)
OPEN_SET_PREFIX = "open_set_a_"
WHAT = {
    "intents_fused_r1": "intents fused recall@1",
    "intents_fused_mrr10": "intents fused MRR@10",
    "decision_in_scope_correct": "decision: in-scope answered correctly",
    "decision_out_of_scope_rejected": "decision: out-of-scope rejected",
    "decision_auroc": "decision: AUROC",
}
LABELS = {
    **{name: f"demo {what}" for name, what in WHAT.items()},
    **{OPEN_SET_PREFIX + name: f"open-set split A {what}" for name, what in WHAT.items()},
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
    models_dir: Path, data_dir: Path, ref: str, corpus: Path, queries: Path | None
) -> tuple[subprocess.Popen[bytes], Path]:
    """``chatda eval --mode intents`` in its own process (the command users run, unchanged),
    started so it runs beside the KorQuAD table; :func:`_result` waits for it."""
    from chatda.demo import eval_dir

    data_dir.mkdir(parents=True, exist_ok=True)
    out = data_dir / f"intents-{ref.replace('@', '-')}.json"
    env = {**os.environ, "CHATDA_MODELS_DIR": str(models_dir), "CHATDA_DATA_DIR": str(data_dir)}
    command = [sys.executable, "-m", "cli.main", "eval", "--mode", "intents", "--corpus"]
    command += [str(corpus), "--queries", str(queries or eval_dir() / "intents_queries.jsonl")]
    return subprocess.Popen([*command, "--model", ref, "--json", str(out)], env=env), out


def _result(started: tuple[subprocess.Popen[bytes], Path]) -> dict[str, Any]:
    process, out = started
    if process.wait() != 0:
        raise RuntimeError(f"chatda eval --mode intents failed ({process.args!r})")
    return dict(json.loads(out.read_text(encoding="utf-8")))


def run_gate(
    registry: ModelRegistry,
    base: ModelVersion,
    adapter_dir: Path,
    suite: EvalSuite,
    device: str,
    open_set: Path | None = None,
) -> dict[str, Any]:
    """Evaluate base and base + adapter, decide, and write ``evaluation`` and ``gate`` into the
    adapter's manifest. Base's KorQuAD table comes from ``registry``'s cache when it has one, and
    the tuned one from the manifest when this adapter was already gated (a retrain writes a new
    manifest), so re-gating with another intents set costs only the intents evals.

    ``open_set``: a folder written by ``python -m bench.open_set`` whose split A (the selection
    split, ``a_corpus.jsonl`` / ``a_queries.jsonl``) adds its ranking and decision metrics, under
    an ``open_set_a_`` prefix, to the gates: ten out-of-scope demo queries alone cannot show a
    decision getting worse.
    """
    from chatda.models.encoder import TorchEncoder

    recorded = json.loads((adapter_dir / MANIFEST).read_text())
    sets: dict[str, tuple[Path | None, Path | None]] = {"": (None, None)}
    if open_set is not None:
        sets[OPEN_SET_PREFIX] = (open_set / "a_corpus.jsonl", open_set / "a_queries.jsonl")
    with tempfile.TemporaryDirectory(prefix="chatda-gate-") as scratch:
        root = Path(scratch)
        private = ModelRegistry(root / "models")
        tuned, _ = build_tuned(private, base, adapter_dir)
        demo = demo_corpus(root / "demo_corpus.jsonl")
        started = {
            (ref, prefix): _start_intents_eval(
                models_dir, root / (prefix or "demo"), ref, corpus or demo, queries
            )
            for prefix, (corpus, queries) in sets.items()
            for ref, models_dir in (
                (base.manifest.ref, registry.root),
                (tuned.manifest.ref, private.root),
            )
        }
        known = (recorded.get("evaluation") or {}).get("metrics") or {}
        tables = {
            base.manifest.ref: metrics_of(registry, base, suite, device),
            tuned.manifest.ref: {k: known[k] for k in METRICS}
            if all(k in known for k in METRICS)
            else evaluate(TorchEncoder(tuned, device=device), suite),
        }
        rows = {ref: dict(table) for ref, table in tables.items()}
        for (ref, prefix), process in started.items():
            rows[ref] |= {prefix + k: v for k, v in intent_metrics(_result(process)).items()}
    base_row, tuned_row = rows[base.manifest.ref], rows[tuned.manifest.ref]
    gates = (*ALL_GATES, *(OPEN_SET_PREFIX + g for g in INTENT_GATES if open_set is not None))
    preferred, reasons = meets_gates(
        tuned_row,
        base_row,
        gates=gates,
        labels={**EVAL_LABELS, **LABELS},
    )
    recorded["evaluation"] = {
        "metrics": tuned_row,
        "parent": base.manifest.ref,
        "parent_metrics": base_row,
        "splits": {
            **SPLITS,
            "intents": "chatda/demo/catalog.yaml (120 intents) vs "
            "chatda/demo/eval/intents_queries.jsonl (60 in-scope, 10 out-of-scope)",
            **(
                {"open_set_a": "split A of `python -m bench.open_set` (BENCHMARKS § 2)"}
                if open_set
                else {}
            ),
        },
    }
    recorded["gate"] = {"preferred": preferred, "gates": list(gates), "reasons": reasons}
    (adapter_dir / MANIFEST).write_text(json.dumps(recorded, ensure_ascii=False, indent=2) + "\n")
    return recorded
