"""Article rows for the search tests, built by the ingest worker's own steps: its pipeline
(normalize, chunk with the title carried, Kiwi morphemes for BM25, passage embeddings) and its
row builder (``ingest.sink.batch_rows``), so the legs see what production data looks like."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chatda.articles.message import ArticleMessage
from chatda.models.encoder import Encoder
from chatda.text.morphemes import default_morphemes
from chatda.text.normalize import DEFAULT_MAX_CHARS
from ingest.pipeline import Pipeline
from ingest.sink import batch_rows

OVERLAP_SENTENCES = 1
"""The chunker's default, as the worker runs it unless ``CHATDA_CHUNK_OVERLAP_SENTENCES``."""


@dataclass(frozen=True)
class Article:
    post_id: str
    title: str
    body: str
    category: str
    series: str = ""
    tags: list[str] = field(default_factory=list)
    published: datetime = datetime(2026, 1, 1, tzinfo=UTC)

    def message(self) -> ArticleMessage:
        """As a publisher would send it (first version: updated when published), left
        unvalidated: some tests index what validation refuses, such as a date outside its
        range, as a row written before that check existed would hold."""
        return ArticleMessage.model_construct(
            post_id=self.post_id,
            title=self.title,
            body=self.body,
            category=self.category,
            series=self.series,
            tags=self.tags,
            published_at=self.published,
            updated_at=self.published,
        )


def article_rows(
    encoder: Encoder, articles: list[Article], max_tokens: int
) -> list[dict[str, Any]]:
    pipeline = Pipeline(
        encoder, default_morphemes(), max_tokens, OVERLAP_SENTENCES, DEFAULT_MAX_CHARS
    )
    prepared = [pipeline.prepare(article.message()) for article in articles]
    return batch_rows(prepared, pipeline.embed(prepared), "test")
