"""`chatda index status` against a real milvus-lite server: collections, models, alias, rows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pymilvus import MilvusClient

from chatda.models.registry import ModelRegistry
from chatda.storage.articles_schema import (
    alias_target,
    collection_name,
    create_articles_collection,
    ensure_alias,
)
from chatda.storage.index_models import model_from_name
from indexer.index_status import index_status


def test_status_names_models_rows_and_the_serving_collection(
    milvus_uri: str, models_dir: Path
) -> None:
    client = MilvusClient(uri=milvus_uri)
    registry = ModelRegistry(models_dir)
    alias = "status_test_alias"
    old = collection_name("e5-small-ko@base", datetime(2026, 1, 1, tzinfo=UTC))
    new = collection_name("e5-small-ko@base", datetime(2026, 2, 1, tzinfo=UTC))
    stranger = collection_name("other-model@v1", datetime(2026, 3, 1, tzinfo=UTC))
    for name in (old, new, stranger):
        create_articles_collection(client, name)
    ensure_alias(client, alias, new)
    try:
        report = index_status(client, registry, alias, ingest_lag=7)
        by_name = {c.name: c for c in report.collections}
        assert report.target == new and report.ingest_lag == 7
        assert by_name[new].serving and not by_name[old].serving
        assert by_name[old].model == "e5-small-ko@base"
        assert by_name[stranger].model is None
        assert by_name[new].rows == 0
        assert model_from_name("not_an_article_collection", registry) is None
    finally:
        client.drop_alias(alias)
        for name in (old, new, stranger):
            client.drop_collection(name)
        client.close()


def test_rollback_and_gc(milvus_uri: str, models_dir: Path) -> None:
    from indexer.collections import IndexStateError, gc, rollback

    client = MilvusClient(uri=milvus_uri)
    registry = ModelRegistry(models_dir)
    alias = "rollback_test_alias"
    builds = [
        collection_name("e5-small-ko@base", datetime(2026, month, 1, tzinfo=UTC))
        for month in (1, 2, 3, 4)
    ]
    other_model = collection_name("other-model@v1", datetime(2026, 3, 15, tzinfo=UTC))
    # another alias's live collection, older and of a registered model: not this alias's build
    elsewhere = collection_name("e5-small-ko@base", datetime(2025, 12, 1, tzinfo=UTC))
    for name in [*builds, other_model, elsewhere]:
        create_articles_collection(client, name)
    ensure_alias(client, "rollback_test_other_alias", elsewhere)
    try:
        with pytest.raises(IndexStateError, match="does not exist"):
            rollback(client, registry, alias)
        ensure_alias(client, alias, builds[3])
        assert rollback(client, registry, alias) == (builds[3], builds[2])  # skips other_model
        assert alias_target(client, alias) == builds[2]
        assert gc(client, alias, keep=1) == [builds[0]]
        remaining = set(client.list_collections())
        assert elsewhere in remaining  # older, but another alias serves it
        assert builds[0] not in remaining
        assert {builds[1], builds[2], builds[3]} <= remaining  # newer than serving: kept
        assert gc(client, alias, keep=0) == [builds[1]]
        assert client.has_collection(other_model)  # built after the serving one: left alone
        with pytest.raises(IndexStateError, match="no earlier collection of a registered"):
            rollback(client, registry, alias)
    finally:
        client.drop_alias(alias)
        client.drop_alias("rollback_test_other_alias")
        for name in [*builds, other_model, elsewhere]:
            if client.has_collection(name):
                client.drop_collection(name)
        client.close()
