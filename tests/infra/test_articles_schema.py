"""The article collection on milvus-lite: naming, creation, every search path, aliases, CRUD."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pymilvus import AnnSearchRequest, MilvusClient, RRFRanker, WeightedRanker

from chatda.storage.articles_schema import (
    alias_target,
    collection_name,
    create_articles_collection,
    ensure_alias,
    list_article_collections,
)
from chatda.storage.milvus_client import ScoreConvention
from tests.infra.samples import ROWS, chunk, unit_vector


def ids(hits: list[dict]) -> list[str]:
    return [hit["entity"]["chunk_id"] for hit in hits]


def test_collection_name_follows_milvus_rules() -> None:
    now = datetime(2026, 11, 25, 19, 15, tzinfo=timezone(timedelta(hours=9)))
    assert collection_name("e5-small-ko@base", now) == "articles__e5_small_ko_base__20261125T101500"
    assert collection_name("모델", now) == "articles__model__20261125T101500"
    assert len(collection_name("x" * 400, now).encode()) <= 255
    with pytest.raises(ValueError, match="timezone-aware"):
        collection_name("m", datetime(2026, 1, 1))


def test_create_is_idempotent_and_listed(milvus: MilvusClient) -> None:
    name = collection_name(f"idem-{uuid.uuid4().hex[:6]}", datetime.now(UTC))
    try:
        create_articles_collection(milvus, name)
        create_articles_collection(milvus, name)
        assert name in list_article_collections(milvus)
        assert set(milvus.list_indexes(name)) >= {"dense", "sparse", "category", "published_at"}
    finally:
        milvus.drop_collection(name)


def test_dense_search_finds_nearest(milvus: MilvusClient, articles: str) -> None:
    (hits,) = milvus.search(
        articles, data=[unit_vector(2)], anns_field="dense", limit=3, output_fields=["chunk_id"]
    )
    assert ids(hits)[0] == "seoul-trip#0"
    assert hits[0]["distance"] > 0.9  # inner product of unit vectors, positive on both backends


def test_bm25_scores_are_normalised_positive_best_first(
    milvus: MilvusClient, articles: str
) -> None:
    convention = ScoreConvention.from_client(milvus)
    (hits,) = milvus.search(
        articles, data=["서울 맛집"], anns_field="sparse", limit=3, output_fields=["chunk_id"]
    )
    assert ids(hits)[:2] == ["seoul-food#0", "seoul-trip#0"]
    assert all(hit["distance"] < 0 for hit in hits)  # milvus-lite's raw sign
    scores = [convention.bm25_score(hit["distance"]) for hit in hits]
    assert all(score > 0 for score in scores)
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize(
    "ranker", [RRFRanker(60), WeightedRanker(0.5, 0.5)], ids=["rrf", "weighted"]
)
def test_hybrid_search(milvus: MilvusClient, articles: str, ranker: object) -> None:
    dense = AnnSearchRequest(data=[unit_vector(0)], anns_field="dense", param={}, limit=5)
    sparse = AnnSearchRequest(data=["서울 맛집"], anns_field="sparse", param={}, limit=5)
    (hits,) = milvus.hybrid_search(
        articles, [dense, sparse], ranker, limit=3, output_fields=["chunk_id"]
    )
    assert ids(hits)[0] == "seoul-food#0"
    assert all(hit["distance"] > 0 for hit in hits)


def test_array_contains_tag_filter(milvus: MilvusClient, articles: str) -> None:
    rows = milvus.query(articles, filter='array_contains(tags, "서울")', output_fields=["chunk_id"])
    assert sorted(r["chunk_id"] for r in rows) == ["seoul-food#0", "seoul-trip#0"]


def test_alias_create_then_alter(milvus: MilvusClient) -> None:
    suffix = uuid.uuid4().hex[:6]
    old, new = f"articles__alias_a_{suffix}__x", f"articles__alias_b_{suffix}__x"
    alias = f"articles_serving_{suffix}"
    try:
        for name in (old, new):
            create_articles_collection(milvus, name)
        milvus.insert(new, [chunk("only-in-new", 5, "새 문서")])
        assert alias_target(milvus, alias) is None
        ensure_alias(milvus, alias, old)
        assert alias_target(milvus, alias) == old
        ensure_alias(milvus, alias, old)  # no-op
        ensure_alias(milvus, alias, new)
        assert alias_target(milvus, alias) == new
        rows = milvus.query(alias, filter="chunk_no >= 0", output_fields=["chunk_id"])
        assert [r["chunk_id"] for r in rows] == ["only-in-new#0"]  # reads follow the alias
    finally:
        milvus.drop_alias(alias)
        for name in (old, new):
            milvus.drop_collection(name)


def test_upsert_delete_by_filter_and_query_iterator(milvus: MilvusClient) -> None:
    name = f"articles__crud_{uuid.uuid4().hex[:6]}__x"
    try:
        create_articles_collection(milvus, name)
        milvus.insert(name, ROWS[:3])
        milvus.upsert(name, [{**ROWS[0], "category": "수정됨"}])
        (row,) = milvus.query(name, filter='chunk_id == "seoul-food#0"', output_fields=["category"])
        assert row["category"] == "수정됨"

        milvus.delete(name, filter='post_id == "busan-sea"')
        iterator = milvus.query_iterator(name, batch_size=1, output_fields=["chunk_id"])
        seen: list[str] = []
        while batch := iterator.next():
            seen.extend(r["chunk_id"] for r in batch)
        iterator.close()
        assert sorted(seen) == ["seoul-food#0", "seoul-trip#0"]
    finally:
        milvus.drop_collection(name)
