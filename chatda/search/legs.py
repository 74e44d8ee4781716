"""Document legs: the dense and the BM25 search of the article index, as awaitables.

The two legs are separate Milvus searches, run concurrently, rather than one
``hybrid_search``: the answer reports each leg's own rank and score per article, which a
hybrid request does not return (it gives only the fused score), and fusion stays ours, with
per-profile weights (docs/search.md has the timings of both ways). Each leg runs on a bounded
thread pool, since pymilvus blocks; a leg the engine stops waiting for finishes its thread
(bounded by the gRPC timeout) without holding up the answer.

``Leg`` is the seam the engine depends on, so tests swap in doubles (a leg that sleeps past
its budget) without touching Milvus.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from chatda.search.articles import ArticleIndex
from chatda.search.hits import ChunkHit
from chatda.search.profiles import SourceName


@dataclass(frozen=True)
class LegQuery:
    """Everything a leg needs: both query forms, the filter, how many chunks, and until when."""

    terms: str
    vector: np.ndarray | None
    depth: int
    deadline: float
    model_ref: str
    """The model of ``vector``: the leg searches that model's collection."""
    expression: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    def remaining_s(self) -> float:
        """Time left, for the gRPC timeout; never 0, which pymilvus would read as "none"."""
        return max(0.001, self.deadline - time.monotonic())


class Leg(Protocol):
    name: SourceName

    async def search(self, query: LegQuery) -> list[ChunkHit]: ...


class DenseLeg:
    name = SourceName.DENSE

    def __init__(self, index: ArticleIndex, pool: Executor) -> None:
        self.index = index
        self.pool = pool

    async def search(self, query: LegQuery) -> list[ChunkHit]:
        if query.vector is None:
            raise ValueError("the dense leg needs the query embedding")
        vector = query.vector.tolist()
        return await asyncio.get_running_loop().run_in_executor(
            self.pool,
            lambda: self.index.dense(
                vector,
                query.depth,
                query.expression,
                query.params,
                query.remaining_s(),
                self.index.collection_for(query.model_ref),
            ),
        )


class Bm25Leg:
    name = SourceName.BM25

    def __init__(self, index: ArticleIndex, pool: Executor) -> None:
        self.index = index
        self.pool = pool

    async def search(self, query: LegQuery) -> list[ChunkHit]:
        if not query.terms:  # nothing BM25 can match ("ㅋㅋ", "?!"): an empty, honest answer
            return []
        return await asyncio.get_running_loop().run_in_executor(
            self.pool,
            lambda: self.index.bm25(
                query.terms,
                query.depth,
                query.expression,
                query.params,
                query.remaining_s(),
                self.index.collection_for(query.model_ref),
            ),
        )
