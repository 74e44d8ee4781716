"""Verification's known queries: a title that names exactly one article, or no query at all."""

from __future__ import annotations

import uuid

from pymilvus import MilvusClient

from chatda.storage.articles_schema import create_articles_collection
from indexer.reindex import known_queries


def test_shared_and_blank_titles_are_notknown_queries(milvus_uri: str) -> None:
    client = MilvusClient(uri=milvus_uri)
    name = f"articles__knownq_{uuid.uuid4().hex[:8]}__20260101T000000"
    create_articles_collection(client, name, "e5-small-ko@base")
    articles = [("a", "같은 제목"), ("b", "같은 제목"), ("c", '따옴표 "제목"'), ("d", " ")]
    client.insert(
        name,
        [
            {
                "chunk_id": f"{post_id}#0",
                "post_id": post_id,
                "chunk_no": 0,
                "title": title,
                "text": "본문",
                "bm25_text": "본문",
                "series": "",
                "category": "",
                "tags": [],
                "published_at": 0,
                "updated_at": 0,
                "model_version": "e5-small-ko@base",
                "dense": [0.05] * 384,
            }
            for post_id, title in articles
        ],
    )
    try:
        # a and b share a title (which ranks first is a coin toss), d has none
        assert known_queries(client, name, ["a", "c", "d"]) == {"c": '따옴표 "제목"'}
    finally:
        client.drop_collection(name)
        client.close()
