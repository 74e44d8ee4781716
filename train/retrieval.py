"""``chatda train retrieval``: query → passage tuning with BM25 hard negatives.

Pairs come from click feedback (a JSONL export until the SQL click table exists), silver pairs
from an unlabeled collection (:mod:`train.silver`) and a small share of BM25 top-1 positives.
Each pair gets the best-ranked BM25 negative that survives the false-negative filter; pairs left
without one still train on in-batch negatives. Loss: MultipleNegativesRankingLoss at e5's own
temperature, GradCache'd on a CPU so the batch can be big.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatda.models.registry import ModelRegistry, ModelVersion
from train import data, silver
from train.hard_negatives import Bm25Index, FilterReport, Mined, filter_false_negatives, mine
from train.prompts import with_prompt
from train.runner import (
    TrainConfig,
    describe,
    describe_loss,
    fit,
    load_for_training,
    ranking_loss,
    register,
)

if TYPE_CHECKING:
    from datasets import Dataset

    from chatda.models.registry import ModelManifest

Pair = tuple[str, str]
Terms = Callable[[str], list[str]]


@dataclass
class RetrievalData:
    """Training pairs with their provenance, and the collection negatives are mined from."""

    pairs: list[Pair]
    collection: list[str]
    sources: dict[str, int] = field(default_factory=dict)


def build_data(
    data_dir: Path,
    feedback: Sequence[Pair],
    max_pairs: int,
    bm25_share: float,
    seed: int,
    index: Callable[[list[str]], Bm25Index],
    split: Callable[[str], list[str]],
    chunk_chars: int = 300,
) -> tuple[RetrievalData, Bm25Index]:
    """Feedback first, then silver pairs (chat replies last: least like a search), then BM25
    top-1 positives for ``bm25_share`` of all."""
    rng = random.Random(seed)
    chunks = silver.chunk_documents(data.konlpy_documents(data_dir), split, chunk_chars)
    chat_rows = data.chatbot_pairs(data_dir)
    chat = silver.chat_pairs(chat_rows, len(chat_rows), rng)
    entailed = silver.entailment_pairs(
        data.klue_nli_triplets(data_dir) + data.kornli_triplets(data_dir), rng
    )
    collection = list(
        dict.fromkeys(
            [c.text for c in chunks]
            + [p for _, p in entailed]
            + [a for _, a in chat]
            + [p for _, p in feedback]
        )
    )
    bm25 = index(collection)

    n_bm25 = int(max_pairs * bm25_share)
    budget = max_pairs - n_bm25
    groups = {
        "feedback": list(feedback),
        "title": silver.title_pairs(chunks, per_title=3, rng=rng),
        "cloze": silver.cloze_pairs(chunks, per_chunk=3, rng=rng),
        "entailment": entailed,
    }
    pairs: list[Pair] = []
    sources: dict[str, int] = {}
    for name, group in groups.items():
        take = group[: max(0, budget - len(pairs))]
        pairs += take
        sources[name] = len(take)
    n_chat = max(0, budget - len(pairs))
    pairs += chat[:n_chat]
    sources["chat"] = len(chat[:n_chat])
    top1 = [(q, bm25.passages[bm25.top(q, 1)[0]]) for q, _ in chat[n_chat : n_chat + n_bm25]]
    pairs += top1
    sources["bm25_top1"] = len(top1)
    rng.shuffle(pairs)
    return RetrievalData(pairs=pairs, collection=collection, sources=sources), bm25


def build_datasets(manifest: ModelManifest, mined: Sequence[Mined]) -> dict[str, Dataset]:
    """Queries get the query prompt, positives and negatives the passage prompt."""
    from datasets import Dataset

    hard = [m for m in mined if m.candidates]
    easy = [m for m in mined if not m.candidates]
    datasets: dict[str, Dataset] = {}
    if hard:
        datasets["hard"] = Dataset.from_dict(
            {
                "anchor": with_prompt(manifest, "query", (m.query for m in hard)),
                "positive": with_prompt(manifest, "passage", (m.positive for m in hard)),
                "negative": with_prompt(manifest, "passage", (m.candidates[0] for m in hard)),
            }
        )
    if easy:
        datasets["pairs"] = Dataset.from_dict(
            {
                "anchor": with_prompt(manifest, "query", (m.query for m in easy)),
                "positive": with_prompt(manifest, "passage", (m.positive for m in easy)),
            }
        )
    return datasets


def train(
    registry: ModelRegistry,
    parent: ModelVersion,
    d: RetrievalData,
    bm25: Bm25Index,
    config: TrainConfig,
    negatives_k: int,
    filter_margin: float | None,
    evaluate: Callable[[ModelVersion], dict[str, Any]] | None = None,
) -> ModelVersion:
    """Mine, optionally filter with the parent, fine-tune, register ``retrieval-<time>``."""
    from chatda.models.encoder import TorchEncoder

    mined = mine(bm25, d.pairs, negatives_k)
    report: FilterReport | None = None
    if filter_margin is not None:
        encoder = TorchEncoder(parent, device=config.device, cpu_threads=config.cpu_threads)
        mined, report = filter_false_negatives(mined, encoder.encode, filter_margin)
        del encoder
    model = load_for_training(parent, config)
    datasets = build_datasets(parent.manifest, mined)
    loss = ranking_loss(model, config)
    result = fit(model, datasets, {name: loss for name in datasets}, config)
    training = {
        "task": "retrieval",
        "config": describe(config),
        "data": {
            "pairs": len(d.pairs),
            "sources": d.sources,
            "collection_passages": len(d.collection),
            "with_hard_negative": sum(1 for m in mined if m.candidates),
        },
        "hard_negatives": {
            "miner": "BM25Okapi scores (chatda.lexical.bm25) over Kiwi content morphemes",
            "k": negatives_k,
            "filter_margin": filter_margin,
            "filter": asdict(report) if report else None,
        },
        "loss": describe_loss(loss),
        "steps": result.steps,
        "loss_curve": result.losses,
    }
    return register(registry, parent, model, "retrieval", training, evaluate)
