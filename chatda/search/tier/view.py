"""One consistent state of the tier, and the scoring of a batch of queries against it.

Dense: one matrix product of the batch's query embeddings with every chunk vector, on the
model's device, filtered by each query's mask, and ``topk``; only the top rows leave the
device. BM25: rank-bm25's BM25Okapi over the chunks' Kiwi terms (the ``bm25_text`` the ingest
writes), vectorised over posting lists: only chunks that contain a query term are touched.
Both return chunks, as the Milvus legs do, so collapse, fusion and highlighting are shared.
"""

from __future__ import annotations

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
        self._weights: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}

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
        device = self.dense.device
        if device.type == "cpu":  # numpy's BLAS: 2x torch's CPU matmul here (BENCHMARKS § 5)
            vectors = embeddings.detach().to(dtype=torch.float32).numpy()
            sims = torch.from_numpy(vectors @ self.dense.numpy().T)
        else:
            sims = (embeddings.to(device=device, dtype=self.dense.dtype) @ self.dense.T).float()
        if self.live < self.n or any(m is not None for m in masks):
            allowed = torch.stack(
                [
                    self._alive_on_device if m is None else torch.as_tensor(m, device=device)
                    for m in masks
                ]
            )
            sims = sims.masked_fill(~allowed, float("-inf"))
        top = torch.topk(sims, min(depth, self.n), dim=1)
        values, rows = top.values.cpu().numpy(), top.indices.cpu().numpy()
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

    def bm25(self, query: DocumentQuery, mask: np.ndarray | None) -> list[ChunkHit]:
        """BM25Okapi's top ``bm25_depth`` chunks with a positive score."""
        scores = self.bm25_scores(query.terms)
        rows = np.flatnonzero((scores > 0) & (mask if mask is not None else self.alive))
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
        for term in terms:
            weighted = self._term_weights(term)
            if weighted is not None:
                rows, weights = weighted
                scores[rows] += weights  # a row appears once in a term's postings
        return scores

    def _term_weights(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The term's rows and BM25 weight in each, computed once per view (common terms
        recur across the queries of a batch and the batches of a second)."""
        cached = self._weights.get(term)
        if cached is not None or term in self._weights:
            return cached
        found = self.columns.terms.lookup(term, self.n, len(self.idf))
        weighted = None
        if found is not None:
            term_id, rows, counts = found
            tf = counts.astype(np.float64)
            norm = K1 * (1 - B + B * self.doc_len[rows] / self.avgdl)
            weighted = rows, self.idf[term_id] * tf * (K1 + 1) / (tf + norm)
        if len(self._weights) >= _WEIGHT_CACHE:
            self._weights.pop(next(iter(self._weights)))
        self._weights[term] = weighted
        return weighted

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
