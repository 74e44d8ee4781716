"""Select the calibrated decision's hyper-parameters on open-set split A (issue #27).

`python -m bench.calibration_select DIR [--split a]` reads ``DIR/{split}_corpus.jsonl`` and
``DIR/{split}_queries.jsonl`` (``bench.open_set``), matches every query once, then fits the
calibrator for each option set and scores each (threshold, margin) rule without matching again:
only the fit changes between rules. Prints one JSON line per option set, best last, ranked by
the mean of in-scope accuracy (an ambiguous answer holding the right intent counts half: the
user still has to pick) and out-of-scope rejection.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import tempfile
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
from chatda.catalog.store import CatalogStore
from chatda.db.engine import make_engine, upgrade
from chatda.evaluation.data import CorpusItem, EvalQuery, read_jsonl
from chatda.evaluation.intents_eval import corpus_to_intents
from chatda.models.encoder import TorchEncoder
from chatda.models.registry import ModelRegistry
from chatda.settings import get_settings
from chatda.text.morphemes import default_morphemes
from chatda.text.normalize import normalize_query

THRESHOLDS = (0.15, 0.2, 0.25, 0.3, 0.35, 0.4)
MARGINS = (0.0, 0.02, 0.05, 0.1)
FEATURE_SETS = (FEATURES, ("fused", "gap", "zscore"), ("fused", "zscore"))
SHARES = (0.25, 0.5, 0.75)
L2 = (1e-3, 1e-2)


async def _collect(directory: Path, split: str) -> dict[str, Any]:
    settings = get_settings()
    registry = ModelRegistry(settings.models_dir)
    encoder = TorchEncoder(registry.get("e5-small-ko", "base"), device=settings.device)
    corpus = read_jsonl(directory / f"{split}_corpus.jsonl", CorpusItem)
    queries = read_jsonl(directory / f"{split}_queries.jsonl", EvalQuery)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'eval.db'}")
        upgrade(engine)
        store = CatalogStore(engine)
        store.import_intents(corpus_to_intents(corpus))
        batcher = DynamicBatcher(encoder, queue_limit=1 << 20, default_timeout_s=600)
        morphemes = default_morphemes()
        service = CatalogService(store, batcher, morphemes, 0.92, settings.intent_lexical_weight)
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
            rows = []
            for q, (_, scores, _) in zip(queries, matched, strict=True):
                fused = np.array([s.score for s in scores])
                dense = np.array([s.dense for s in scores])
                all_dense = dense
                feats = candidate_features(
                    fused[:2], dense[:2], float(all_dense.mean()), float(all_dense.std())
                )
                top_ids = [corpus[snap.intents[s.index].id - 1].id for s in scores[:2]]
                rows.append((q, feats, top_ids, float(fused[0])))
            return {
                "snap": snap,
                "terms": service._terms,
                "bg_vectors": np.asarray(bg.embeddings),
                "bg_terms": morphemes.terms_batch(background),
                "rows": rows,
            }
        finally:
            await batcher.close()
            engine.dispose()


def _metrics(rows: list, p1: np.ndarray, p2: np.ndarray, tau: float, margin: float) -> dict:
    n_in = n_in_ok = n_in_amb = n_out = n_out_rej = n_amb = 0
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
    acc, rej = n_in_ok / n_in, n_out_rej / n_out
    return {
        "in_scope_correct": round(acc, 4),
        "out_of_scope_rejected": round(rej, 4),
        "ambiguous_share": round(n_amb / len(rows), 4),
        "in_scope_ambiguous_with_right": round(n_in_amb / n_in, 4),
        "objective": round((acc + 0.5 * n_in_amb / n_in + rej) / 2, 4),
    }


def _raw(rows: list, threshold: float) -> dict:
    n_in = sum(1 for r in rows if r[0].relevant)
    ok = sum(1 for q, _, t, f in rows if q.relevant and f >= threshold and t[0] in q.relevant)
    rej = sum(1 for q, _, _, f in rows if not q.relevant and f < threshold)
    return {
        "in_scope_correct": round(ok / n_in, 4),
        "out_of_scope_rejected": round(rej / (len(rows) - n_in), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("directory", type=Path)
    parser.add_argument("--split", default="a")
    args = parser.parse_args()
    data = asyncio.run(_collect(args.directory, args.split))
    rows = data["rows"]
    print(json.dumps({"raw@0.92": _raw(rows, 0.92)}))
    feats = np.array([r[1][0] for r in rows])
    feats2 = np.array([r[1][1] if len(r[1]) > 1 else r[1][0] for r in rows])
    examples = collect_examples(
        data["snap"], data["terms"], data["bg_vectors"], data["bg_terms"], FitOptions()
    )
    results = []
    for share, l2, use in itertools.product(SHARES, L2, FEATURE_SETS):
        options = FitOptions(intent_out_share=share, l2=l2, use=use)
        cal = fit_logistic(
            examples.features, examples.labels, example_weights(examples, options), l2, use
        )
        p1, p2 = cal.probability(feats), cal.probability(feats2)
        for tau, margin in itertools.product(THRESHOLDS, MARGINS):
            m = _metrics(rows, p1, p2, tau, margin)
            results.append(
                {"share": share, "l2": l2, "use": use, "tau": tau, "margin": margin, **m}
            )
    results.sort(key=lambda r: r["objective"])
    for r in results[-25:]:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
