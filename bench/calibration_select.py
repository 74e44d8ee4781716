"""Select the calibrated decision's hyper-parameters on open-set split A (issue #27).

`python -m bench.calibration_select DIR [--split a] [--lexical-weights 0.03,0.06]
[--centroid-weights 0,0.5] [--model tuned]` reads ``DIR/{split}_corpus.jsonl`` and
``DIR/{split}_queries.jsonl`` (``bench.open_set``). Per centroid weight it matches every query
once (every intent's dense and lexical score), then for each lexical weight fuses the two again,
refits the calibrator on the snapshot with those weights for each option set and scores each
(threshold, margin) rule without matching again. Per pair of weights it prints the fused
ranking (recall@1, MRR@10 of the in-scope queries), the rule at the current settings with the
threshold-free curves of its confidence and of the raw score, and the best option sets last,
ranked by the mean of in-scope accuracy (an ambiguous answer holding the right intent counts
half: the user still has to pick) and out-of-scope rejection. Each rule also reports
``lacking_rejected``: the share of questions about services the split's catalog lacks that it
rejects, the hard case a balanced objective can trade away (BENCHMARKS § 2, four splits).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from chatda.batching.batcher import DynamicBatcher
from chatda.catalog.calibration import FEATURES, candidate_features, fit_logistic
from chatda.catalog.calibration_fit import (
    FitOptions,
    background_queries,
    collect_examples,
    example_weights,
)
from chatda.catalog.service import CatalogService
from chatda.catalog.snapshot import Fusion
from chatda.catalog.store import CatalogStore
from chatda.db.engine import make_engine, upgrade
from chatda.evaluation.data import CorpusItem, EvalQuery, read_jsonl
from chatda.evaluation.intents_eval import corpus_to_intents
from chatda.evaluation.metrics import summarise
from chatda.evaluation.open_set import auroc
from chatda.models.encoder import TorchEncoder
from chatda.models.registry import ModelRegistry
from chatda.settings import Settings, get_settings
from chatda.text.morphemes import default_morphemes
from chatda.text.normalize import normalize_query

THRESHOLDS = (0.15, 0.2, 0.25, 0.3, 0.35, 0.4)
MARGINS = (0.0, 0.02, 0.05, 0.1)
FEATURE_SETS = (FEATURES, ("fused", "gap", "zscore"), ("fused", "zscore"), ("fused",))
SHARES = (0.25, 0.5, 0.75)
L2 = (1e-3, 1e-2)


async def _collect(directory: Path, split: str, centroid: float, model: str) -> dict[str, Any]:
    settings = get_settings()
    registry = ModelRegistry(settings.models_dir)
    encoder = TorchEncoder(registry.get("e5-small-ko", model), device=settings.device)
    corpus = read_jsonl(directory / f"{split}_corpus.jsonl", CorpusItem)
    queries = read_jsonl(directory / f"{split}_queries.jsonl", EvalQuery)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'eval.db'}")
        upgrade(engine)
        store = CatalogStore(engine)
        store.import_intents(corpus_to_intents(corpus))
        batcher = DynamicBatcher(encoder, queue_limit=1 << 20, default_timeout_s=600)
        morphemes = default_morphemes()
        fusion = Fusion(settings.intent_lexical_weight, centroid)
        service = CatalogService(store, batcher, morphemes, 0.92, fusion)
        try:
            await service.refresh()
            snap = service.snapshot
            background = list(background_queries())
            bg = await batcher.submit(background, "query", deadline=None)
            matched = []
            for start in range(0, len(queries), 64):
                matched.extend(
                    await asyncio.gather(
                        *(
                            service.match(normalize_query(q.text, 1000).text, everything=True)
                            for q in queries[start : start + 64]
                        )
                    )
                )
            n = snap.size
            dense = np.zeros((len(queries), n), dtype=np.float32)
            lexical = np.zeros((len(queries), n), dtype=np.float32)
            for q, (_, scores, _) in enumerate(matched):
                for sc in scores:
                    dense[q, sc.index] = sc.dense
                    lexical[q, sc.index] = sc.lexical
            return {
                "snap": snap,
                "terms": service._terms,
                "bg_vectors": np.asarray(bg.embeddings),
                "bg_terms": morphemes.terms_batch(background),
                "queries": queries,
                "intent_ids": [corpus[i.id - 1].id for i in snap.intents],
                "dense": dense,
                "lexical": lexical,
            }
        finally:
            await batcher.close()
            engine.dispose()


def _metrics(rows: list, p1: np.ndarray, p2: np.ndarray, tau: float, margin: float) -> dict:
    n_in = n_in_ok = n_in_amb = n_out = n_out_rej = n_amb = n_lack = n_lack_rej = 0
    for (q, _, top_ids, _), a, b in zip(rows, p1, p2, strict=True):
        if a < tau:
            kind = "no_match"
        elif a - b < margin:
            kind = "ambiguous"
        else:
            kind = "passed"
        n_amb += kind == "ambiguous"
        if q.relevant:
            n_in += 1
            n_in_ok += kind == "passed" and top_ids[0] in q.relevant
            n_in_amb += kind == "ambiguous" and bool(set(top_ids) & set(q.relevant))
        else:
            n_out += 1
            n_out_rej += kind == "no_match"
            if _lacking(q):
                n_lack += 1
                n_lack_rej += kind == "no_match"
    acc, rej = n_in_ok / n_in, n_out_rej / n_out
    return {
        "in_scope_correct": round(acc, 4),
        "out_of_scope_rejected": round(rej, 4),
        "ambiguous_share": round(n_amb / len(rows), 4),
        "in_scope_ambiguous_with_right": round(n_in_amb / n_in, 4),
        "objective": round((acc + 0.5 * n_in_amb / n_in + rej) / 2, 4),
        "lacking_rejected": round(n_lack_rej / n_lack, 4) if n_lack else None,
    }


def _lacking(query: EvalQuery) -> bool:
    """A question about a service the split's catalog lacks (``bench.open_set``'s ids): the
    hard out-of-scope case, and most of the issue's held-out out-of-scope questions."""
    return query.id.startswith(("lack-", "demo-lack-"))


def _raw(rows: list, threshold: float) -> dict:
    n_in = sum(1 for r in rows if r[0].relevant)
    ok = sum(1 for q, _, t, f in rows if q.relevant and f >= threshold and t[0] in q.relevant)
    rej = sum(1 for q, _, _, f in rows if not q.relevant and f < threshold)
    return {
        "in_scope_correct": round(ok / n_in, 4),
        "out_of_scope_rejected": round(rej / (len(rows) - n_in), 4),
    }


def _rows(data: dict[str, Any], weight: float) -> tuple[list, dict[str, float]]:
    """Per query at this lexical weight: (query, top-two features, top-two ids, top fused);
    and the fused ranking's recall@1 and MRR@10 over the in-scope queries."""
    fused = data["dense"] + weight * data["lexical"]
    order = np.argsort(-fused, axis=1, kind="stable")
    ids = data["intent_ids"]
    rows = []
    for q, query in enumerate(data["queries"]):
        top = order[q, :2]
        dense = data["dense"][q]
        feats = candidate_features(
            fused[q, top], dense[top], float(dense.mean()), float(dense.std())
        )
        rows.append((query, feats, [ids[i] for i in top], float(fused[q, top[0]])))
    ranking = summarise(
        [[ids[i] for i in o[:10]] for o in order], [set(q.relevant) for q in data["queries"]]
    )
    return rows, {"recall@1": ranking["recall@1"], "mrr@10": ranking["mrr@10"]}


def _curve(rows: list, score: np.ndarray) -> dict[str, float | None]:
    """Threshold-free: AUROC of in-scope-and-right against out-of-scope, and the in-scope
    accuracy where 90 % / 95 % of out-of-scope queries are rejected (as the eval reports)."""
    in_scope = np.array([bool(q.relevant) for q, *_ in rows])
    right = np.array([bool(q.relevant) and t[0] in q.relevant for q, _, t, _ in rows])
    auc = auroc(score[in_scope & right], score[~in_scope])
    out: dict[str, float | None] = {"auroc": round(auc, 4) if auc is not None else None}
    for rejection in (90, 95):
        cut = float(np.quantile(score[~in_scope], rejection / 100, method="higher"))
        accepted = in_scope & right & (score > cut)
        out[f"at_{rejection}"] = round(float(accepted.sum() / in_scope.sum()), 4)
    return out


def _select(data: dict[str, Any], weight: float, settings: Settings) -> None:
    """Print one weight's ranking, its rule at the current settings, and its best rules."""
    rows, summary = _rows(data, weight)
    top_score = np.array([r[3] for r in rows])
    snap = data["snap"]
    snap = replace(snap, fusion=replace(snap.fusion, lexical=weight))
    tag = {"lexical_weight": weight, "centroid_weight": snap.fusion.centroid}
    print(json.dumps({**tag, **summary, "raw@0.92": _raw(rows, 0.92)}))
    feats = np.array([r[1][0] for r in rows])
    feats2 = np.array([r[1][1] if len(r[1]) > 1 else r[1][0] for r in rows])
    examples = collect_examples(
        snap, data["terms"], data["bg_vectors"], data["bg_terms"], FitOptions()
    )
    current = FitOptions()
    results = []
    for share, l2, use in itertools.product(SHARES, L2, FEATURE_SETS):
        options = FitOptions(intent_out_share=share, l2=l2, use=use)
        cal = fit_logistic(
            examples.features, examples.labels, example_weights(examples, options), l2, use
        )
        p1, p2 = cal.probability(feats), cal.probability(feats2)
        if options == current:
            m = _metrics(
                rows, p1, p2, settings.intent_min_confidence, settings.intent_ambiguity_margin
            )
            curve = {"confidence_curve": _curve(rows, p1), "raw_curve": _curve(rows, top_score)}
            print(json.dumps({**tag, "at_current_settings": m, **curve}))
        for tau, margin in itertools.product(THRESHOLDS, MARGINS):
            m = _metrics(rows, p1, p2, tau, margin)
            results.append(
                {
                    **tag,
                    "share": share,
                    "l2": l2,
                    "use": use,
                    "tau": tau,
                    "margin": margin,
                    **m,
                }
            )
    results.sort(key=lambda r: r["objective"])
    for r in results[-10:]:
        print(json.dumps(r))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("directory", type=Path)
    parser.add_argument("--split", default="a")
    parser.add_argument("--model", default="base", help="the e5-small-ko version to match with")
    parser.add_argument(
        "--lexical-weights",
        default=None,
        help="comma-separated weights to compare (default: CHATDA_INTENT_LEXICAL_WEIGHT)",
    )
    parser.add_argument(
        "--centroid-weights",
        default=None,
        help="comma-separated weights to compare (default: CHATDA_INTENT_CENTROID_WEIGHT)",
    )
    args = parser.parse_args()
    settings = get_settings()
    weights = (
        [float(w) for w in args.lexical_weights.split(",")]
        if args.lexical_weights
        else [settings.intent_lexical_weight]
    )
    centroids = (
        [float(w) for w in args.centroid_weights.split(",")]
        if args.centroid_weights
        else [settings.intent_centroid_weight]
    )
    for centroid in centroids:
        data = asyncio.run(_collect(args.directory, args.split, centroid, args.model))
        for weight in weights:
            _select(data, weight, settings)


if __name__ == "__main__":
    main()
