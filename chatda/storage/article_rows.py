"""Article chunks as rows of the articles collection: the one place that names their fields.

Three writers fill the collection: the ingest worker (chunks it just cut), the re-index copy
(stored rows re-embedded and re-tokenised) and the search tests and bench (a small corpus of
their own). All of them build rows here, so a row written by any of them has the shape of
``chatda.storage.articles_schema``, and the ids follow :func:`chunk_id`, on which the ingest's
idempotence rests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from chatda.storage.indexed_posts import chunk_id

STORED_FIELDS = (
    "post_id",
    "chunk_no",
    "title",
    "text",
    "series",
    "category",
    "tags",
    "published_at",
    "updated_at",
)
"""What a copy reads back to rebuild a chunk (:meth:`ArticleChunk.stored`); the rest of a row
(BM25 text, vector, model) is derived again by whoever writes it."""


@dataclass(frozen=True, slots=True)
class ArticleChunk:
    """One chunk of one article with everything its row holds except the vector.

    ``bm25_text`` is the Kiwi morphemes of the embedded text (title + chunk) joined by spaces:
    what the collection's BM25 function indexes, so the lexical leg matches morphemes.
    """

    post_id: str
    chunk_no: int
    title: str
    text: str
    bm25_text: str
    series: str
    category: str
    tags: Sequence[str]
    published_at: int
    updated_at: int

    @classmethod
    def stored(cls, row: Mapping[str, Any], bm25_text: str) -> ArticleChunk:
        """The chunk a row read with :data:`STORED_FIELDS` holds, with new BM25 text."""
        return cls(
            post_id=row["post_id"],
            chunk_no=row["chunk_no"],
            title=row["title"],
            text=row["text"],
            bm25_text=bm25_text,
            series=row["series"],
            category=row["category"],
            tags=list(row.get("tags") or []),
            published_at=row["published_at"],
            updated_at=row["updated_at"],
        )


def chunk_rows(
    chunks: Sequence[ArticleChunk], vectors: np.ndarray, model_version: str
) -> list[dict[str, Any]]:
    """The collection rows of ``chunks``; ``vectors`` holds one passage embedding per chunk,
    made by ``model_version`` (recorded in each row, so a reader knows which model it needs)."""
    return [
        {
            "chunk_id": chunk_id(c.post_id, c.chunk_no),
            "post_id": c.post_id,
            "chunk_no": c.chunk_no,
            "title": c.title,
            "text": c.text,
            "bm25_text": c.bm25_text,
            "dense": vector.tolist(),
            "series": c.series,
            "category": c.category,
            "tags": list(c.tags),
            "published_at": c.published_at,
            "updated_at": c.updated_at,
            "model_version": model_version,
        }
        for c, vector in zip(chunks, vectors, strict=True)
    ]
