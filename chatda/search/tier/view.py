"""One consistent state of the tier, and the scoring of a batch of queries against it.

Dense: one matrix product of the batch's query embeddings with every chunk vector, on the
model's device, filtered by each query's mask, and ``topk``; only the top rows leave the
device. BM25: rank-bm25's BM25Okapi over the chunks' Kiwi terms (the ``bm25_text`` the ingest
writes), vectorised over posting lists: a rare term adds its weights at its posting rows, a
common one (in an eighth of the rows or more) is one contiguous vector add of its cached
per-row weights. Score arrays (BM25's, and on CPU the dense similarities) are pooled in the
view, one per concurrent scorer, not allocated per query: on this box a fresh array of 100k
floats costs more in page faults at first touch than the scoring itself, and how much
depends on the allocator's history. Both return chunks, as the Milvus legs do, so collapse,
fusion and highlighting are shared.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from chatda.search.hits import ChunkHit
from chatda.search.tier.columns import ChunkColumns

K1 = 1.5
B = 0.75
EPSILON = 0.25
"""BM25Okapi's defaults (rank-bm25), so the tier's scores equal the reference's exactly."""
_WEIGHT_CACHE = 4096
_DENSE_SHARE = 8
"""A term in at least ``n / _DENSE_SHARE`` rows gets a dense weight vector: a contiguous add
of ``n`` floats beats a gather-add-scatter of an eighth of them."""
_DENSE_TERMS = 64
"""Dense weight vectors one view holds at once: ``8 * n`` bytes each (51 MiB at most for
100k rows); further common terms stay sparse. ``TierView.cache_nbytes`` counts them."""
_SAMPLE_STRIDE = 16
"""Every 16th score bounds the top ``depth`` from below (``_candidates``)."""

_Weights = np.ndarray | tuple[np.ndarray, np.ndarray]
"""A term's BM25 weight in each row: dense (one per row, 0 where absent) or (rows, weights)."""


@dataclass(frozen=True)
class DocumentQuery:
    """One search's document legs: its terms, how deep each leg goes (0: not wanted), filters."""

    terms: tuple[str, ...]
    dense_depth: int
    bm25_depth: int
    category: tuple[str, ...] = ()
    series: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    published_from: int | None = None
    published_to: int | None = None

    @property
    def filtered(self) -> bool:
        return bool(
            self.category
            or self.series
            or self.tags
            or self.published_from is not None
            or self.published_to is not None
        )


@dataclass(frozen=True)
class DocumentHits:
    dense: list[ChunkHit] = field(default_factory=list)
    bm25: list[ChunkHit] = field(default_factory=list)


class TierView:
    """Rows ``[:n]`` of one ``ChunkColumns`` with the live mask and frequencies of one moment."""

    def __init__(self, columns: ChunkColumns, version: int) -> None:
        self.columns = columns
        self.version = version
        self.collection = columns.collection
        n = self.n = columns.size
        self.dense = columns.dense[:n]
        self.alive = columns.alive.view().copy()
        self.published = columns.published.view()
        self.category = columns.category.view()
        self.series = columns.series.view()
        self.doc_len = columns.doc_len.view()
        self.live = int(self.alive.sum())
        self.idf = _okapi_idf(columns.terms.df.view().copy(), self.live)
        self.avgdl = float(self.doc_len[self.alive].mean()) if self.live else 1.0
        self._alive_on_device = torch.as_tensor(self.alive, device=self.dense.device)
        self._weights: dict[str, _Weights | None] = {}
        self._dense_terms = 0
        self._dead_rows = np.flatnonzero(~self.alive)
        self._scores = _ArrayPool(self.n, np.float64)
        self._sims = _ArrayPool(self.n, np.float32)

    @property
    def articles(self) -> int:
        return len({self.columns.texts[i].post_id for i in np.flatnonzero(self.alive)})

    def score(
        self, embeddings: torch.Tensor | None, queries: Sequence[DocumentQuery]
    ) -> list[DocumentHits]:
        """The batcher post-step's document half: top chunks per query and leg."""
        masks = [self.mask(q) for q in queries]
        dense: list[list[ChunkHit]] = [[] for _ in queries]
        depth = max((q.dense_depth for q in queries), default=0)
        if embeddings is not None and depth > 0 and self.live:
            dense = self._dense(embeddings, queries, masks, depth)
        return [
            DocumentHits(dense[i], self.bm25(q, masks[i]) if q.bm25_depth else [])
            for i, q in enumerate(queries)
        ]

    def mask(self, query: DocumentQuery) -> np.ndarray | None:
        """Live rows that pass the query's filters; None: every live row."""
        if not query.filtered:
            return None
        mask = self.alive.copy()
        if query.category:
            mask &= np.isin(self.category, self.columns.categories.known(query.category))
        if query.series:
            mask &= np.isin(self.series, self.columns.serieses.known(query.series))
        if query.tags:
            tagged = np.zeros(self.n, dtype=np.bool_)
            n_tags = len(self.columns.tags.rows)
            for tag in query.tags:
                found = self.columns.tags.lookup(tag, self.n, n_tags)
                if found is not None:
                    tagged[found[1]] = True
            mask &= tagged
        if query.published_from is not None:
            mask &= self.published >= query.published_from
        if query.published_to is not None:
            mask &= self.published <= query.published_to
        return mask

    def _dense(
        self,
        embeddings: torch.Tensor,
        queries: Sequence[DocumentQuery],
        masks: Sequence[np.ndarray | None],
        depth: int,
    ) -> list[list[ChunkHit]]:
        if self.dense.device.type == "cpu":
            values, rows = self._dense_top_cpu(embeddings, masks, min(depth, self.n))
        else:
            values, rows = self._dense_top_device(embeddings, masks, min(depth, self.n))
        hits = []
        for i, query in enumerate(queries):
            keep = np.isfinite(values[i][: query.dense_depth])
            hits.append(
                [
                    self._hit(int(r), float(v))
                    for r, v in zip(
                        rows[i][: query.dense_depth][keep],
                        values[i][: query.dense_depth][keep],
                        strict=True,
                    )
                ]
            )
        return hits

    def _dense_top_cpu(
        self, embeddings: torch.Tensor, masks: Sequence[np.ndarray | None], k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """numpy's BLAS (2x torch's CPU matmul here, BENCHMARKS § 5) into a pooled array,
        blocked rows set to -inf in place."""
        vectors = embeddings.detach().to(dtype=torch.float32).numpy()
        buffer = self._sims.take(len(vectors))
        try:
            sims = buffer[: len(vectors)]
            np.matmul(vectors, self.dense.numpy().T, out=sims)
            unfiltered = np.asarray([i for i, m in enumerate(masks) if m is None], dtype=np.intp)
            if unfiltered.size and self._dead_rows.size:
                sims[np.ix_(unfiltered, self._dead_rows)] = -np.inf
            for i, m in enumerate(masks):
                if m is not None:
                    np.copyto(sims[i], -np.inf, where=~m)
            top = torch.topk(torch.from_numpy(sims), k, dim=1)
            return top.values.numpy(), top.indices.numpy()
        finally:
            self._sims.give(buffer)

    def _dense_top_device(
        self, embeddings: torch.Tensor, masks: Sequence[np.ndarray | None], k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        device = self.dense.device
        sims = (embeddings.to(device=device, dtype=self.dense.dtype) @ self.dense.T).float()
        if self.live < self.n or any(m is not None for m in masks):
            allowed = torch.stack(
                [
                    self._alive_on_device if m is None else torch.as_tensor(m, device=device)
                    for m in masks
                ]
            )
            sims.masked_fill_(~allowed, float("-inf"))
        top = torch.topk(sims, k, dim=1)
        return top.values.cpu().numpy(), top.indices.cpu().numpy()

    def bm25(self, query: DocumentQuery, mask: np.ndarray | None) -> list[ChunkHit]:
        """BM25Okapi's top ``bm25_depth`` chunks with a positive score."""
        buffer = self._scores.take(1)
        try:
            return self._bm25(query, mask, buffer[0])
        finally:
            self._scores.give(buffer)

    def _bm25(
        self, query: DocumentQuery, mask: np.ndarray | None, scores: np.ndarray
    ) -> list[ChunkHit]:
        if not self._accumulate(query.terms, scores):
            return []
        allowed = mask if mask is not None else self.alive if self.live < self.n else None
        if allowed is not None:
            np.multiply(scores, allowed, out=scores)  # a row outside scores 0: never a hit
        rows = self._candidates(scores, query.bm25_depth)
        if rows.size == 0:
            return []
        found = scores[rows]
        depth = min(query.bm25_depth, rows.size)
        if depth < rows.size:
            part = np.argpartition(-found, depth - 1)[:depth]
            rows, found = rows[part], found[part]
        order = np.lexsort((rows, -found))
        return [self._hit(int(rows[j]), float(found[j])) for j in order]

    def bm25_scores(self, terms: Sequence[str]) -> np.ndarray:
        """BM25Okapi's score of every row (retired ones too: masks drop them); a repeated
        query term counts once per occurrence, as in BM25Okapi."""
        scores = np.zeros(self.n)
        self._accumulate(terms, scores)
        return scores

    def _accumulate(self, terms: Sequence[str], scores: np.ndarray) -> bool:
        """Write the terms' summed weights into ``scores`` (every row), term by term in query
        order as BM25Okapi adds them; False, ``scores`` untouched: no term is indexed."""
        first = True
        for term in terms:
            weighted = self._term_weights(term)
            if weighted is None:
                continue
            if isinstance(weighted, np.ndarray):
                if first:
                    np.copyto(scores, weighted)
                else:
                    np.add(scores, weighted, out=scores)
            else:
                rows, weights = weighted
                if first:
                    scores.fill(0.0)
                    scores[rows] = weights
                else:
                    scores[rows] += weights  # a row appears once in a term's postings
            first = False
        return not first

    def _candidates(self, scores: np.ndarray, depth: int) -> np.ndarray:
        """Rows with a positive score that hold the top ``depth``, few when many rows score.

        The ``depth``-th best of every ``_SAMPLE_STRIDE``-th score is a score at least
        ``depth`` rows reach, so the top ``depth`` all score at least that much: one compare
        over the rows keeps ~``depth * _SAMPLE_STRIDE`` of them (ties: all of them) instead
        of partitioning all ``n``."""
        sample = scores[::_SAMPLE_STRIDE]
        if sample.size > depth:
            bound = float(np.partition(sample, sample.size - depth)[sample.size - depth])
            if bound > 0:
                return np.flatnonzero(scores >= bound)
        return np.flatnonzero(scores > 0)

    def _term_weights(self, term: str) -> _Weights | None:
        """The term's BM25 weight per row, computed once per view (common terms recur across
        the queries of a batch and the batches of a second)."""
        cached = self._weights.get(term)
        if cached is not None or term in self._weights:
            return cached
        found = self.columns.terms.lookup(term, self.n, len(self.idf))
        weighted: _Weights | None = None
        if found is not None:
            term_id, rows, counts = found
            tf = counts.astype(np.float64)
            norm = K1 * (1 - B + B * self.doc_len[rows] / self.avgdl)
            weighted = rows, self.idf[term_id] * tf * (K1 + 1) / (tf + norm)
            if rows.size * _DENSE_SHARE >= self.n and self._dense_terms < _DENSE_TERMS:
                self._dense_terms += 1
                dense = np.zeros(self.n)
                dense[rows] = weighted[1]
                weighted = dense
        if len(self._weights) >= _WEIGHT_CACHE:
            evicted = self._weights.pop(next(iter(self._weights)))
            self._dense_terms -= int(isinstance(evicted, np.ndarray))
        self._weights[term] = weighted
        return weighted

    @property
    def cache_nbytes(self) -> int:
        """Bytes of the term weights this view has cached (dense vectors and sparse weights;
        posting rows are the columns' own) and of its pooled score arrays."""
        weights = sum(
            w.nbytes if isinstance(w, np.ndarray) else w[1].nbytes
            for w in list(self._weights.values())
            if w is not None
        )
        return weights + self._scores.nbytes + self._sims.nbytes

    def _hit(self, row: int, score: float) -> ChunkHit:
        text = self.columns.texts[row]
        return ChunkHit(
            chunk_id=text.chunk_id,
            post_id=text.post_id,
            chunk_no=text.chunk_no,
            title=text.title,
            text=text.text,
            category=self.columns.categories.values[int(self.category[row])],
            series=self.columns.serieses.values[int(self.series[row])],
            tags=text.tags,
            published_at=int(self.published[row]),
            score=score,
        )


def _okapi_idf(df: np.ndarray, n_docs: int) -> np.ndarray:
    """BM25Okapi's idf over the live vocabulary, with its floor: a negative idf becomes
    ``EPSILON`` times the mean idf (the mean taken before flooring, as rank-bm25 does)."""
    idf = np.log(n_docs - df + 0.5) - np.log(df + 0.5)
    present = df > 0
    if present.any():
        floor = EPSILON * float(idf[present].mean())
        idf = np.where(present & (idf < 0), floor, idf)
    return idf


class _ArrayPool:
    """Score arrays of ``width`` columns reused across calls, one per concurrent caller (the
    batcher's thread, BM25-only requests' threads); held as long as the view, in ``nbytes``."""

    def __init__(self, width: int, dtype: type) -> None:
        self.width = width
        self.dtype = dtype
        self._free: list[np.ndarray] = []
        self._lock = threading.Lock()
        self.nbytes = 0

    def take(self, rows: int) -> np.ndarray:
        """An array of at least ``rows`` rows, contents undefined; ``give`` it back."""
        with self._lock:
            found = self._free.pop() if self._free else None
            if found is not None and len(found) >= rows:
                return found
            if found is not None:
                self.nbytes -= found.nbytes
            array: np.ndarray = np.empty((rows, self.width), dtype=self.dtype)
            self.nbytes += array.nbytes
            return array

    def give(self, array: np.ndarray) -> None:
        with self._lock:
            self._free.append(array)
