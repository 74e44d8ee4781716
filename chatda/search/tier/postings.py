"""Term → chunks postings, append-only, with the document frequencies BM25 needs.

Chunk rows are only ever appended, so each posting list is sorted by row: a view that sees
rows ``[:n]`` reads the prefix of a list below ``n`` (``searchsorted``). Deleted rows stay in
the lists and are masked by the view's ``alive``; ``df`` counts live rows only, so idf and
BM25Okapi's mean-idf floor follow deletes exactly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from chatda.search.tier.growing import GrowingArray


class Postings:
    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self.rows: list[GrowingArray] = []
        self.counts: list[GrowingArray] = []
        self.df = GrowingArray(np.int64)
        """Live rows containing each term, by term id."""

    def add(self, first_row: int, docs: Sequence[Iterable[str]]) -> None:
        """Rows ``first_row, first_row + 1, …`` hold ``docs``; one ``extend`` per term."""
        term_ids: list[int] = []
        rows: list[int] = []
        counts: list[int] = []
        for offset, terms in enumerate(docs):
            for term, count in Counter(terms).items():
                term_id = self.vocab.get(term)
                if term_id is None:
                    term_id = self.vocab[term] = len(self.rows)
                    self.rows.append(GrowingArray(np.int64, 4))
                    self.counts.append(GrowingArray(np.float32, 4))
                    self.df.append(0)
                term_ids.append(term_id)
                rows.append(first_row + offset)
                counts.append(count)
        if not term_ids:
            return
        ids = np.asarray(term_ids)
        order = np.argsort(ids, kind="stable")  # stable: rows stay ascending within a term
        ids, by_row, by_count = ids[order], np.asarray(rows)[order], np.asarray(counts)[order]
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        ends = np.r_[starts[1:], ids.size]
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            term_id = int(ids[start])
            self.rows[term_id].extend(by_row[start:end])
            self.counts[term_id].extend(by_count[start:end])
        np.add.at(self.df.buffer, ids, 1)

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
