"""Search hits: chunks as a leg returns them, and articles as the answer groups them.

The index holds chunks, but people look for articles: each leg's chunk list is collapsed to
one entry per article (its best chunk) before fusion, so an article with many matching chunks
does not crowd the page, and each leg's rank is an article rank.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChunkHit:
    """One chunk as a leg found it; ``score`` is already "higher is better" for every backend."""

    chunk_id: str
    post_id: str
    chunk_no: int
    title: str
    text: str
    category: str
    series: str
    tags: tuple[str, ...]
    published_at: int
    score: float


@dataclass(frozen=True, slots=True)
class ArticleHit:
    """An article's place in one leg: 1-based rank among articles, via its best chunk."""

    rank: int
    score: float
    chunk: ChunkHit

    @property
    def post_id(self) -> str:
        return self.chunk.post_id


def collapse(hits: Sequence[ChunkHit]) -> list[ArticleHit]:
    """One entry per article, best chunk first; ranks follow the best chunks' order."""
    best: dict[str, ChunkHit] = {}
    for hit in sorted(hits, key=lambda h: -h.score):  # stable: the backend's order breaks ties
        best.setdefault(hit.post_id, hit)
    return [ArticleHit(rank, hit.score, hit) for rank, hit in enumerate(best.values(), start=1)]
