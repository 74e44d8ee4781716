"""The article index as search reads it: the serving alias in Milvus, one call per leg.

Every call is blocking (pymilvus is synchronous) and takes a gRPC ``timeout`` so the server
stops working on a request the API has already given up on. Search works without Milvus: with
no ``milvus_uri`` configured, or before the first connection succeeds, the document legs report
"skipped" and the rest of the answer still comes back. Scores leave this module "higher is
better" on every backend (``ScoreConvention``), so nothing downstream knows about milvus-lite.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymilvus import MilvusClient

from chatda.search.hits import ChunkHit
from chatda.storage.index_models import served_index
from chatda.storage.milvus_client import Reloader, ScoreConvention, connect
from chatda.storage.scan import scan

log = logging.getLogger(__name__)

OUTPUT_FIELDS = [
    "post_id",
    "chunk_no",
    "title",
    "text",
    "category",
    "series",
    "tags",
    "published_at",
]
_MIN_EF = 64
_TITLE_BATCH = 1000


class MilvusUnavailable(RuntimeError):
    """No Milvus connection (not configured, or not reachable yet)."""


@dataclass(frozen=True)
class _Connection:
    client: MilvusClient
    convention: ScoreConvention


def _hit(raw: dict[str, Any], score: float) -> ChunkHit:
    entity = raw["entity"]
    return ChunkHit(
        chunk_id=raw["chunk_id"],
        post_id=entity["post_id"],
        chunk_no=int(entity["chunk_no"]),
        title=entity["title"],
        text=entity["text"],
        category=entity.get("category") or "",
        series=entity.get("series") or "",
        tags=tuple(entity.get("tags") or ()),
        published_at=int(entity.get("published_at") or 0),
        score=score,
    )


class ArticleIndex:
    """A lazily connected handle on the ``alias`` collection; safe to share between threads."""

    def __init__(self, uri: str | None, data_dir: Path, alias: str) -> None:
        self.uri = uri
        self.data_dir = data_dir
        self.alias = alias
        self._connection: _Connection | None = None
        self._collections: dict[str, str] = {}
        self._reloader = Reloader()

    @classmethod
    def over(cls, client: MilvusClient, alias: str) -> ArticleIndex:
        """The search legs on a client its caller already holds (and closes): a job that is
        connected anyway need not open, and wait for, a second connection."""
        index = cls(None, Path(), alias)
        index._connection = _Connection(client, ScoreConvention.from_client(client))
        return index

    def serve(self, model_ref: str, collection: str) -> None:
        """Queries encoded by ``model_ref`` search ``collection`` from now on.

        The previous model's collection stays mapped, so a request that started before a
        switch finishes on the collection its embedding belongs to.
        """
        previous = {r: c for r, c in self._collections.items() if r != model_ref}
        self._collections = {**dict(list(previous.items())[-1:]), model_ref: collection}

    def collection_for(self, model_ref: str) -> str:
        """The collection built with ``model_ref``; MilvusUnavailable when none serves yet.

        Blocking on a miss (it asks Milvus what the alias serves now, so the first search
        after the first ingest need not wait for the model follower's next check): call it
        from a leg's thread.
        """
        collection = self._collections.get(model_ref)
        if collection is None:
            served = served_index(self._use().client, self.alias)
            if served is None or served.model != model_ref:
                raise MilvusUnavailable(f"no article collection of model {model_ref} is served")
            self.serve(model_ref, served.collection)
            collection = served.collection
        return collection

    @property
    def configured(self) -> bool:
        return self.uri is not None

    @property
    def connected(self) -> bool:
        return self._connection is not None

    @property
    def client(self) -> MilvusClient:
        return self._use().client

    @property
    def templated_filters(self) -> bool:
        """Which filter form ``build_filter`` must produce for this backend."""
        return self._use().convention.backend.filter_templates

    def connect(self) -> bool:
        """Connect if configured and not yet connected; False (logged) when it cannot."""
        if self._connection is not None:
            return True
        if self.uri is None:
            return False
        try:
            client = connect(self.uri, self.data_dir)
            self._connection = _Connection(client, ScoreConvention.from_client(client))
        except Exception as exc:  # any failure means "not yet"; the caller retries later
            log.warning("milvus not reachable at %s: %s", self.uri, exc)
            return False
        return True

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.client.close()

    def _use(self) -> _Connection:
        connection = self._connection
        if connection is None:
            reason = "not configured" if self.uri is None else "not connected"
            raise MilvusUnavailable(f"article index {reason}")
        return connection

    def dense(
        self,
        vector: Sequence[float],
        depth: int,
        expression: str,
        params: dict[str, Any],
        timeout_s: float,
        collection: str | None = None,
    ) -> list[ChunkHit]:
        """The ``depth`` chunks nearest to ``vector`` (inner product of unit vectors).

        ``collection``: the collection built with the model that encoded ``vector`` (default:
        whatever the alias serves).
        """
        connection = self._use()
        result = self._search(
            connection,
            collection or self.alias,
            data=[list(vector)],
            anns_field="dense",
            limit=depth,
            filter=expression,
            filter_params=params,
            output_fields=OUTPUT_FIELDS,
            search_params={"metric_type": "IP", "params": {"ef": max(_MIN_EF, depth)}},
            timeout=timeout_s,
        )
        return [_hit(raw, float(raw["distance"])) for raw in result[0]]

    def bm25(
        self,
        text: str,
        depth: int,
        expression: str,
        params: dict[str, Any],
        timeout_s: float,
        collection: str | None = None,
    ) -> list[ChunkHit]:
        """The ``depth`` best BM25 chunks for ``text`` (query morphemes joined by spaces)."""
        connection = self._use()
        result = self._search(
            connection,
            collection or self.alias,
            data=[text],
            anns_field="sparse",
            limit=depth,
            filter=expression,
            filter_params=params,
            output_fields=OUTPUT_FIELDS,
            search_params={"metric_type": "BM25"},
            timeout=timeout_s,
        )
        score = connection.convention.bm25_score
        return [_hit(raw, score(float(raw["distance"]))) for raw in result[0]]

    def query(self, collection: str, **request: Any) -> list[dict[str, Any]]:
        """Rows by filter (``client.query``), with the same recovery as a search."""
        connection = self._use()
        rows: list[dict[str, Any]] = self._call(
            connection, connection.client.query, collection, **request
        )
        return rows

    def _search(self, connection: _Connection, collection: str, **request: Any) -> Any:
        return self._call(connection, connection.client.search, collection, **request)

    def _call(self, connection: _Connection, method: Any, collection: str, **request: Any) -> Any:
        """One read; a collection the server came back without (a restarted milvus-lite) is
        loaded again in the background and reported unavailable meanwhile."""
        try:
            return method(collection, **request)
        except Exception as exc:
            if self._reloader.released(exc, connection.client, collection):
                raise MilvusUnavailable(f"collection {collection} is loading again") from exc
            raise

    def titles(self, limit: int) -> list[tuple[str, str]]:
        """``(post_id, title)`` of up to ``limit`` articles, read from their first chunks."""
        connection = self._use()
        batches = scan(
            connection.client,
            self.alias,
            ["post_id", "title"],
            filter="chunk_no == 0",
            batch_size=min(_TITLE_BATCH, limit),
            limit=limit,
        )
        return [(row["post_id"], row["title"]) for batch in batches for row in batch]
