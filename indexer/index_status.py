"""`chatda index status`: what the article index is made of, for the operator.

Every article collection with its model (read back from the registry: names carry the model's
slug), row count, and whether the alias serves it; plus the ingest group's lag.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from pymilvus import MilvusClient

from chatda.models.registry import ModelRegistry
from chatda.storage.articles_schema import alias_target, collection_name, list_article_collections

_ANY_TIME = datetime(2000, 1, 1, tzinfo=UTC)  # only the model slug of a name is compared


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


def model_of(name: str, registry: ModelRegistry) -> str | None:
    """The registered model whose slug the collection name carries (None: unknown model)."""
    for version in registry.versions():
        prefix = collection_name(version.manifest.ref, _ANY_TIME).rsplit("__", 1)[0] + "__"
        if name.startswith(prefix):
            return version.manifest.ref
    return None


def index_status(
    client: MilvusClient, registry: ModelRegistry, alias: str, ingest_lag: int | None
) -> IndexStatus:
    target = alias_target(client, alias)
    collections = [
        CollectionStatus(
            name=name,
            model=model_of(name, registry),
            rows=int(client.get_collection_stats(name).get("row_count", 0)),
            serving=name == target,
        )
        for name in list_article_collections(client)
    ]
    return IndexStatus(alias, target, collections, ingest_lag)
