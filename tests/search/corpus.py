"""Article rows built the way the ingest worker builds them, for the search tests and bench.

Title carried into each chunk, BM25 text = Kiwi morphemes of the embedded text, passage
embeddings: the legs see what production data looks like.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chatda.models.encoder import Encoder
from chatda.text.chunker import chunk
from chatda.text.morphemes import default_morphemes
from chatda.text.normalize import normalize_document, normalize_query


@dataclass(frozen=True)
class Article:
    post_id: str
    title: str
    body: str
    category: str
    series: str = ""
    tags: list[str] = field(default_factory=list)
    published: datetime = datetime(2026, 1, 1, tzinfo=UTC)


def article_rows(
    encoder: Encoder, articles: list[Article], max_tokens: int
) -> list[dict[str, Any]]:
    morphemes = default_morphemes()
    rows: list[dict[str, Any]] = []
    embed_texts: list[str] = []
    for article in articles:
        title = normalize_query(article.title).text
        body = normalize_document(article.body).text
        for piece in chunk(title, body, encoder.count_tokens, max_tokens):
            embed_texts.append(piece.embed_text)
            rows.append(
                {
                    "chunk_id": f"{article.post_id}#{piece.n}",
                    "post_id": article.post_id,
                    "chunk_no": piece.n,
                    "title": title,
                    "text": piece.text,
                    "bm25_text": morphemes.joined(piece.embed_text),
                    "series": article.series,
                    "category": article.category,
                    "tags": article.tags,
                    "published_at": int(article.published.timestamp()),
                    "updated_at": int(article.published.timestamp()),
                    "model_version": "test",
                }
            )
    vectors = encoder.encode(embed_texts, "passage")
    for row, vector in zip(rows, vectors, strict=True):
        row["dense"] = vector.tolist()
    return rows
