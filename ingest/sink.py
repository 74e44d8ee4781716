"""Milvus writes of the ingest: rows keyed by chunk id, in the collection the alias serves.

Idempotence comes from the keys: chunk ``n`` of article ``p`` is always row ``p#n``, and a
write is an upsert, so writing a batch twice (after a crash before the offset commit) leaves
exactly the rows of writing it once. What an upsert cannot do, removing chunks an article no
longer has, is done by deleting the surplus ids, computed from what the index holds now.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException

from chatda.storage.article_rows import ArticleChunk, chunk_rows
from chatda.storage.articles_schema import (
    alias_target,
    collection_name,
    create_articles_collection,
)
from chatda.storage.index_models import ServedIndex, model_slug_prefix, served_index
from chatda.storage.indexed_posts import IndexedPost, indexed_posts
from ingest.pipeline import PreparedArticle

logger = logging.getLogger(__name__)

_WRITE_GROUP = 512


class ModelMismatch(RuntimeError):
    """The alias serves a collection whose embedding model cannot be determined."""


class ArticleSink:
    """Reads and writes article chunks of the collection ``alias`` served when last resolved.

    Writes go to the concrete collection, never through the alias: a batch embedded for one
    model must land in that model's collection even if the alias moves meanwhile (a re-index
    swap); the worker then follows the alias into the new collection's consumer group.
    Reads use Strong consistency: the version check must see the previous batch's writes,
    and real Milvus defaults to Bounded staleness.
    """

    def __init__(self, client: MilvusClient, alias: str) -> None:
        self.client = client
        self.alias = alias
        self.collection: str | None = None

    def resolve(self, default_model: str) -> ServedIndex:
        """The collection behind the alias and its model; on first start, created for
        ``default_model`` (the serving model) with the alias pointing at it.
        """
        served = served_index(self.client, self.alias)
        if served is None:
            fresh = self._unclaimed_name(default_model)
            create_articles_collection(self.client, fresh, default_model)
            try:
                self.client.create_alias(fresh, self.alias)
                logger.info("milvus alias created alias=%s collection=%s", self.alias, fresh)
                served = ServedIndex(fresh, default_model)
            except MilvusException:
                served = served_index(self.client, self.alias)
                if served is None:
                    raise
                if served.collection != fresh:  # another worker won the race with its own
                    self.client.drop_collection(fresh)
        model = served.model
        if model is None and served.collection.startswith(model_slug_prefix(default_model)):
            model = default_model  # built before collections recorded their model
        if model is None:
            raise ModelMismatch(
                f"alias {self.alias!r} points at {served.collection!r}, whose model is not "
                "recorded; re-index it (chatda index reindex)"
            )
        create_articles_collection(self.client, served.collection)  # loads it after a restart
        self.collection = served.collection
        return ServedIndex(served.collection, model)

    def alias_moved(self) -> bool:
        """Whether the alias now serves another collection than the one written to.

        An unreachable Milvus reads as "not moved": the next write fails and is retried.
        """
        try:
            return alias_target(self.client, self.alias) not in (None, self.collection)
        except MilvusException:
            return False

    def load(self) -> None:
        """Load the collection again (a restarted Milvus brings it back released)."""
        create_articles_collection(self.client, self._target())

    def _target(self) -> str:
        if self.collection is None:
            raise RuntimeError("ArticleSink.resolve() must run before reads and writes")
        return self.collection

    def _unclaimed_name(self, model_version: str) -> str:
        """A collection name for this model that no other alias serves.

        Names have one-second resolution, so a second alias created in the same second (tests,
        a parallel re-index) would share a collection; waiting for the next second avoids it.
        A same-named collection without an alias is one a crashed start left behind: reused.
        """
        while True:
            name = collection_name(model_version, datetime.now(UTC))
            if not self.client.has_collection(name):
                return name
            owners = set(self.client.list_aliases(collection_name=name)["aliases"])
            if owners <= {self.alias}:
                return name
            time.sleep(0.2)

    def indexed(self, post_ids: Iterable[str]) -> dict[str, IndexedPost]:
        """Version and chunk numbers of every given article present in the index."""
        return indexed_posts(self.client, self._target(), post_ids)

    def write(self, rows: Sequence[dict[str, Any]], delete_ids: Sequence[str]) -> None:
        """Upsert ``rows``, then delete ``delete_ids``; both are safe to repeat."""
        target = self._target()
        for start in range(0, len(rows), _WRITE_GROUP):
            self.client.upsert(target, list(rows[start : start + _WRITE_GROUP]))
        if delete_ids:
            self.client.delete(target, ids=list(delete_ids))


def article_rows(
    article: PreparedArticle, vectors: np.ndarray, model_version: str
) -> list[dict[str, Any]]:
    """The Milvus rows of one prepared article; ``vectors`` holds one row per chunk."""
    m = article.message
    chunks = [
        ArticleChunk(
            post_id=m.post_id,
            chunk_no=c.n,
            title=article.title,
            text=c.text,
            bm25_text=c.bm25_text,
            series=m.series,
            category=m.category,
            tags=m.tags,
            published_at=article.published_epoch,
            updated_at=article.updated_epoch,
        )
        for c in article.chunks
    ]
    return chunk_rows(chunks, vectors, model_version)


def batch_rows(
    articles: Sequence[PreparedArticle], vectors: np.ndarray, model_version: str
) -> list[dict[str, Any]]:
    """The Milvus rows of prepared articles, with ``vectors`` as ``Pipeline.embed`` returns
    them for ``articles`` (one row per chunk, in article then chunk order)."""
    rows: list[dict[str, Any]] = []
    offset = 0
    for article in articles:
        count = len(article.chunks)
        rows.extend(article_rows(article, vectors[offset : offset + count], model_version))
        offset += count
    return rows
