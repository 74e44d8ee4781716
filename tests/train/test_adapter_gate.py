"""The adapter gate's parts that need no model: what it reads from an intents eval, the demo
corpus it evaluates on, and the promotion rule over its wider set of metrics."""

from __future__ import annotations

import json
from pathlib import Path

from train.adapter_gate import ALL_GATES, LABELS, demo_corpus, intent_metrics
from train.promotion import meets_gates


def _result(served_curve: bool) -> dict:
    served = {"in_scope_correct": 0.6, "out_of_scope_rejected": 0.9}
    if served_curve:
        served["curve"] = {"auroc": 0.91}
    return {
        "methods": {"fused": {"recall@1": 0.7833, "mrr@10": 0.8681}, "dense": {"recall@1": 0.1}},
        "decision": {"served": served, "old_rule": {"curve": {"auroc": 0.88}}},
    }


def test_intent_metrics_read_the_fused_ranking_and_the_served_decision() -> None:
    assert intent_metrics(_result(served_curve=True)) == {
        "intents_fused_r1": 78.33,
        "intents_fused_mrr10": 86.81,
        "decision_in_scope_correct": 60.0,
        "decision_out_of_scope_rejected": 90.0,
        "decision_auroc": 91.0,
    }
    # The raw rule has no served curve: the old rule's AUROC is the same score's.
    assert intent_metrics(_result(served_curve=False))["decision_auroc"] == 88.0


def test_demo_corpus_is_the_demo_catalog(tmp_path: Path) -> None:
    rows = [json.loads(line) for line in demo_corpus(tmp_path / "c.jsonl").read_text().splitlines()]
    assert len(rows) == 120 and len({r["id"] for r in rows}) == 120
    assert all(r["title"] and r["text"] for r in rows)


def test_every_gate_must_hold_and_each_miss_is_named() -> None:
    base = dict.fromkeys(ALL_GATES, 50.0)
    assert meets_gates(dict(base), base, gates=ALL_GATES, labels=LABELS) == (True, [])
    worse = {**base, "decision_out_of_scope_rejected": 40.0}
    allowed, reasons = meets_gates(worse, base, gates=ALL_GATES, labels=LABELS)
    assert not allowed
    assert reasons == ["demo decision: out-of-scope rejected 40.00 < serving 50.00"]
    # The default gates are still the KorQuAD pair alone.
    assert meets_gates(worse, base)[0]
