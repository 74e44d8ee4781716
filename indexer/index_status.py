"""`chatda index status`: what the article index is made of, for the operator.

Every article collection with its model (the ``chatda.model`` property, or the slug its name
carries), row count, and whether the alias serves it; plus the lag of the serving collection's
ingest group.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pymilvus import MilvusClient

from chatda.models.registry import ModelRegistry
from chatda.storage.articles_schema import alias_target, list_article_collections
from chatda.storage.index_models import collection_model


@dataclass(frozen=True)
class CollectionStatus:
    name: str
    model: str | None
    rows: int
    serving: bool


@dataclass(frozen=True)
class IndexStatus:
    alias: str
    target: str | None
    collections: list[CollectionStatus]
    ingest_lag: int | None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def index_status(
    client: MilvusClient, registry: ModelRegistry, alias: str, ingest_lag: int | None
) -> IndexStatus:
    target = alias_target(client, alias)
    collections = [
        CollectionStatus(
            name=name,
            model=collection_model(client, name, registry),
            rows=int(client.get_collection_stats(name).get("row_count", 0)),
            serving=name == target,
        )
        for name in list_article_collections(client)
    ]
    return IndexStatus(alias, target, collections, ingest_lag)
