"""Which model a collection of article vectors was built with, and the group that feeds it.

Queries must be encoded by the model that encoded the passages they are compared with, so the
model is part of a collection's identity: recorded as the collection property ``chatda.model``
when the collection is created, read back by every service that searches or writes it.
Collections created before the property existed are matched by the model slug in their name.

Each collection is fed by its own Kafka consumer group, ``<ingest group>.<collection>``: that
group's committed offsets say exactly which records the collection holds. A re-index seeds the
new collection's group with the live group's offsets, and an ingest worker that sees the alias
move simply joins the new group, so no record is lost or applied with the wrong model, however
the partitions are spread over the workers at that moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pymilvus import MilvusClient

from chatda.models.registry import ModelRegistry
from chatda.storage.articles_schema import MODEL_PROPERTY, alias_target, collection_name

_ANY_TIME = datetime(2000, 1, 1, tzinfo=UTC)  # only the model slug of a name is compared


@dataclass(frozen=True)
class ServedIndex:
    """The collection an alias points at and the model ref its vectors were built with."""

    collection: str
    model: str | None


def model_slug_prefix(model_ref: str) -> str:
    """``articles__<slug>__``: the name prefix of every collection of ``model_ref``."""
    return collection_name(model_ref, _ANY_TIME).rsplit("__", 1)[0] + "__"


def collection_model(
    client: MilvusClient, collection: str, registry: ModelRegistry | None = None
) -> str | None:
    """The model ref recorded on ``collection``; else the registered model its name carries."""
    properties = client.describe_collection(collection).get("properties") or {}
    recorded = properties.get(MODEL_PROPERTY)
    if recorded:
        return str(recorded)
    return model_from_name(collection, registry) if registry is not None else None


def model_from_name(collection: str, registry: ModelRegistry) -> str | None:
    """The registered model whose slug the collection name carries (None: unknown model)."""
    for version in registry.versions():
        if collection.startswith(model_slug_prefix(version.manifest.ref)):
            return version.manifest.ref
    return None


def served_index(
    client: MilvusClient, alias: str, registry: ModelRegistry | None = None
) -> ServedIndex | None:
    """What ``alias`` serves now, or None when the alias does not exist yet."""
    target = alias_target(client, alias)
    if target is None:
        return None
    return ServedIndex(target, collection_model(client, target, registry))


def ingest_group(base_group: str, collection: str) -> str:
    """The consumer group whose commits track what ``collection`` holds."""
    return f"{base_group}.{collection}"
