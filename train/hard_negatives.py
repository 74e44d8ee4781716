"""BM25-mined hard negatives and the false-negative filter.

In-batch negatives are mostly easy; BM25 over Kiwi morphemes finds passages that share a query's
words but are not its gold passage, which is what a lexical-first search gets wrong. Some of them
are in fact relevant (silver labels are incomplete), so a negative the current model already
scores above the positive (minus a margin) is dropped rather than pushed away.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from chatda.lexical.bm25 import BM25Index
from train.prompts import Kind

Encode = Callable[[Sequence[str], Kind], np.ndarray]


@dataclass(frozen=True)
class Mined:
    """A (query, positive) pair with its BM25 candidates, best-ranked first."""

    query: str
    positive: str
    candidates: list[str]


class Bm25Index:
    """BM25 over Kiwi content morphemes of a passage collection.

    Scores are BM25Okapi's (chatda.lexical.bm25 is tested equal to it), vectorised, so mining
    costs one sparse product per query instead of a Python loop over the collection.
    """

    def __init__(self, passages: Sequence[str], terms: Callable[[str], list[str]]) -> None:
        self.passages = list(passages)
        self._terms = terms
        tokenized = [terms(p) or ["∅"] for p in tqdm(self.passages, desc="BM25 index", unit="doc")]
        self._bm25 = BM25Index(tokenized)

    def top(self, query: str, k: int) -> list[int]:
        """Indices of the ``k`` best passages for ``query`` (ties keep collection order)."""
        scores = self._bm25.scores(self._terms(query) or ["∅"])
        k = min(k, len(self.passages))
        best = np.argpartition(-scores, k - 1)[:k]
        return sorted(best.tolist(), key=lambda i: (-scores[i], i))


def mine(index: Bm25Index, pairs: Sequence[tuple[str, str]], k: int) -> list[Mined]:
    """BM25 top-``k`` for each query minus its gold passage (by text, so duplicates go too)."""
    out = []
    for query, positive in tqdm(pairs, desc="mining negatives", unit="query"):
        ranked = [index.passages[i] for i in index.top(query, k + 1)]
        candidates = [p for p in ranked if p.strip() != positive.strip()][:k]
        out.append(Mined(query=query, positive=positive, candidates=candidates))
    return out


@dataclass(frozen=True)
class FilterReport:
    """How many candidates the filter removed, for the manifest."""

    candidates: int
    dropped: int
    pairs_without_negative: int


def filter_false_negatives(
    mined: Sequence[Mined], encode: Encode, margin: float
) -> tuple[list[Mined], FilterReport]:
    """Drop candidates scored above ``score(query, positive) - margin`` by the current model."""
    queries = encode([m.query for m in mined], "query")
    texts = sorted({t for m in mined for t in (m.positive, *m.candidates)})
    rows = encode(texts, "passage")
    row_of = {t: i for i, t in enumerate(texts)}
    kept: list[Mined] = []
    total = dropped = empty = 0
    for q, m in zip(queries, mined, strict=True):
        threshold = float(q @ rows[row_of[m.positive]]) - margin
        survivors = [c for c in m.candidates if float(q @ rows[row_of[c]]) < threshold]
        total += len(m.candidates)
        dropped += len(m.candidates) - len(survivors)
        empty += not survivors
        kept.append(Mined(query=m.query, positive=m.positive, candidates=survivors))
    return kept, FilterReport(candidates=total, dropped=dropped, pairs_without_negative=empty)
