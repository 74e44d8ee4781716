"""The Milvus collection of article chunks, its versioned names, and the serving alias.

Every re-index (new embedding model, new analyzer) builds a fresh collection named after the
model version and build time, then moves the serving alias onto it in one step, so search
never sees a half-built index and rollback is another alias move.

Schema, one row per chunk: dense vectors (HNSW, inner product on normalised vectors) and a
BM25 sparse vector that Milvus derives itself from ``bm25_text`` (Kiwi morphemes joined by
spaces, so the ``standard`` analyzer's whitespace/punctuation split yields Korean morphemes).
Scalar fields carry the filters. ``tags`` has no scalar index: milvus-lite 3.2 rejects scalar
indexes on ARRAY fields ("field type ARRAY does not support scalar index"); array filters
still work there by scanning.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

from pymilvus import CollectionSchema, DataType, Function, FunctionType, MilvusClient
from pymilvus.exceptions import MilvusException
from pymilvus.milvus_client.index import IndexParams

logger = logging.getLogger(__name__)

COLLECTION_PREFIX = "articles__"
MODEL_PROPERTY = "chatda.model"
DENSE_DIM = 384
MAX_TAGS = 16
MAX_TAG_CHARS = 64
MAX_NAME_BYTES = 255
_VARCHAR_MAX = 65535
_SCALAR_INDEXED = ("post_id", "series", "category", "published_at", "updated_at")
_HNSW_PARAMS = {"M": 16, "efConstruction": 200}
_BM25_PARAMS = {"bm25_k1": 1.2, "bm25_b": 0.75}


def collection_name(model_version: str, now: datetime) -> str:
    """``articles__<model slug>__<UTC yyyymmddThhmmss>``, valid under Milvus naming rules.

    Milvus names must match ``[A-Za-z_][A-Za-z0-9_]*`` and fit 255 bytes (milvus-lite is more
    lenient, so the stricter rule is enforced here). ``now`` must be timezone-aware so two
    hosts in different zones cannot produce out-of-order names.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%S")
    slug = re.sub(r"[^a-z0-9]+", "_", model_version.lower()).strip("_") or "model"
    room = MAX_NAME_BYTES - len(COLLECTION_PREFIX) - len("__") - len(stamp)
    return f"{COLLECTION_PREFIX}{slug[:room].rstrip('_')}__{stamp}"


def article_schema() -> CollectionSchema:
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=256)
    schema.add_field("post_id", DataType.VARCHAR, max_length=128)
    schema.add_field("chunk_no", DataType.INT64)
    schema.add_field("title", DataType.VARCHAR, max_length=2048)
    schema.add_field("text", DataType.VARCHAR, max_length=_VARCHAR_MAX)
    schema.add_field(
        "bm25_text",
        DataType.VARCHAR,
        max_length=_VARCHAR_MAX,
        enable_analyzer=True,
        analyzer_params={"type": "standard"},
    )
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=DENSE_DIM)
    schema.add_field("series", DataType.VARCHAR, max_length=256)
    schema.add_field("category", DataType.VARCHAR, max_length=128)
    schema.add_field(
        "tags",
        DataType.ARRAY,
        element_type=DataType.VARCHAR,
        max_capacity=MAX_TAGS,
        max_length=MAX_TAG_CHARS,
    )
    schema.add_field("published_at", DataType.INT64)
    schema.add_field("updated_at", DataType.INT64)
    schema.add_field("model_version", DataType.VARCHAR, max_length=128)
    schema.add_function(
        Function(
            name="bm25_text_to_sparse",
            function_type=FunctionType.BM25,
            input_field_names=["bm25_text"],
            output_field_names=["sparse"],
        )
    )
    return schema


def article_index_params() -> IndexParams:
    """Every index of the collection, each named after its field."""
    params = MilvusClient.prepare_index_params()
    params.add_index("dense", "HNSW", "dense", metric_type="IP", params=_HNSW_PARAMS)
    params.add_index(
        "sparse", "SPARSE_INVERTED_INDEX", "sparse", metric_type="BM25", params=_BM25_PARAMS
    )
    for field in _SCALAR_INDEXED:
        params.add_index(field, "INVERTED", field)
    return params


def create_articles_collection(
    client: MilvusClient, name: str, model_ref: str | None = None
) -> None:
    """Create (if missing), index and load the chunk collection ``name``; safe to repeat.

    ``model_ref`` is recorded as the collection property ``chatda.model`` (see
    ``chatda.storage.index_models``): the model every vector of the collection comes from.

    Indexes are created one by one with ``sync=False``: pymilvus would otherwise poll each
    index's build state every 0.5 s (3.5 s for seven indexes), pointless on an empty
    collection. A repeat call adds any index a crashed earlier call did not get to. Loading
    is part of "ready": a collection that survived a milvus-lite restart comes back released.
    """
    if not client.has_collection(name):
        try:
            client.create_collection(name, schema=article_schema())
            logger.info("milvus collection created name=%s", name)
        except MilvusException:
            if not client.has_collection(name):  # not a lost creation race: a real failure
                raise
    existing = set(client.list_indexes(name))
    missing = IndexParams()
    for param in article_index_params():
        if param.index_name not in existing:
            missing.append(param)
    if missing:
        client.create_index(name, missing, sync=False)
    if model_ref is not None:
        client.alter_collection_properties(name, properties={MODEL_PROPERTY: model_ref})
    client.load_collection(name)


def list_article_collections(client: MilvusClient) -> list[str]:
    """Names of all article collections, sorted (within one model: oldest build first)."""
    return sorted(n for n in client.list_collections() if n.startswith(COLLECTION_PREFIX))


def alias_target(client: MilvusClient, alias: str) -> str | None:
    """The collection ``alias`` points at, or None when the alias does not exist."""
    if alias not in client.list_aliases().get("aliases", []):
        return None
    target: str = client.describe_alias(alias)["collection_name"]
    return target


def aliased_collections(client: MilvusClient) -> set[str]:
    """Every collection some alias points at: each one is serving someone."""
    aliases = client.list_aliases().get("aliases", [])
    return {client.describe_alias(alias)["collection_name"] for alias in aliases}


def ensure_alias(client: MilvusClient, alias: str, collection: str) -> None:
    """Point ``alias`` at ``collection``: create it, or switch it in one atomic alter."""
    current = alias_target(client, alias)
    if current == collection:
        return
    if current is None:
        try:
            client.create_alias(collection, alias)
            logger.info("milvus alias created alias=%s collection=%s", alias, collection)
            return
        except MilvusException:
            if alias_target(client, alias) is None:  # not a lost creation race
                raise
    client.alter_alias(collection, alias)
    logger.info("milvus alias moved alias=%s from=%s to=%s", alias, current, collection)
