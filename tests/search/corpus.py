"""Article rows built the way the ingest worker builds them (``chatda.storage.article_rows``),
for the search tests and bench.

Title carried into each chunk, BM25 text = Kiwi morphemes of the embedded text, passage
embeddings: the legs see what production data looks like.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chatda.models.encoder import Encoder
from chatda.storage.article_rows import ArticleChunk, chunk_rows
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
    chunks: list[ArticleChunk] = []
    embed_texts: list[str] = []
    for article in articles:
        title = normalize_query(article.title).text
        body = normalize_document(article.body).text
        published = int(article.published.timestamp())
        for piece in chunk(title, body, encoder.count_tokens, max_tokens):
            embed_texts.append(piece.embed_text)
            chunks.append(
                ArticleChunk(
                    post_id=article.post_id,
                    chunk_no=piece.n,
                    title=title,
                    text=piece.text,
                    bm25_text=morphemes.joined(piece.embed_text),
                    series=article.series,
                    category=article.category,
                    tags=article.tags,
                    published_at=published,
                    updated_at=published,
                )
            )
    return chunk_rows(chunks, encoder.encode(embed_texts, "passage"), "test")
