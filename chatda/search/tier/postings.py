"""Term → chunks postings, append-only, with the document frequencies BM25 needs.

Chunk rows are only ever appended, so each posting list is sorted by row: a view that sees
rows ``[:n]`` reads the prefix of a list below ``n`` (``searchsorted``). Deleted rows stay in
the lists and are masked by the view's ``alive``; ``df`` counts live rows only, so idf and
BM25Okapi's mean-idf floor follow deletes exactly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np

from chatda.search.tier.growing import GrowingArray


class Postings:
    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self.rows: list[GrowingArray] = []
        self.counts: list[GrowingArray] = []
        self.df = GrowingArray(np.int64)
        """Live rows containing each term, by term id."""

    def add(self, row: int, terms: Iterable[str]) -> None:
        for term, count in Counter(terms).items():
            term_id = self.vocab.get(term)
            if term_id is None:
                term_id = self.vocab[term] = len(self.rows)
                self.rows.append(GrowingArray(np.int64, 4))
                self.counts.append(GrowingArray(np.float32, 4))
                self.df.append(0)
            self.rows[term_id].append(row)
            self.counts[term_id].append(count)
            self.df.buffer[term_id] += 1

    def remove(self, terms: Iterable[str]) -> None:
        """A row holding ``terms`` died: it no longer counts in any term's df."""
        for term in set(terms):
            self.df.buffer[self.vocab[term]] -= 1

    def lookup(self, term: str, n: int, n_terms: int) -> tuple[int, np.ndarray, np.ndarray] | None:
        """The term's id and the rows below ``n`` that contain it (dead ones included), with
        the term's count in each; ``n_terms``: the vocabulary size the reader knows."""
        term_id = self.vocab.get(term)
        if term_id is None or term_id >= n_terms:
            return None
        rows = self.rows[term_id].view()
        end = int(np.searchsorted(rows, n))
        return term_id, rows[:end], self.counts[term_id].view()[:end]

    @property
    def nbytes(self) -> int:
        lists = sum(r.nbytes + c.nbytes for r, c in zip(self.rows, self.counts, strict=True))
        return lists + self.df.nbytes + 100 * len(self.vocab)
