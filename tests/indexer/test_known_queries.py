"""Verification's known queries: a title that names exactly one article, or no query at all."""

from __future__ import annotations

import uuid

import numpy as np
from pymilvus import MilvusClient

from chatda.storage.article_rows import ArticleChunk, chunk_rows
from chatda.storage.articles_schema import create_articles_collection
from indexer.reindex_verify import known_queries


def test_shared_and_blank_titles_are_notknown_queries(milvus_uri: str) -> None:
    client = MilvusClient(uri=milvus_uri)
    name = f"articles__knownq_{uuid.uuid4().hex[:8]}__20260101T000000"
    create_articles_collection(client, name, "e5-small-ko@base")
    articles = [("a", "같은 제목"), ("b", "같은 제목"), ("c", '따옴표 "제목"'), ("d", " ")]
    chunks = [
        ArticleChunk(post_id, 0, title, "본문", "본문", "", "", [], 0, 0)
        for post_id, title in articles
    ]
    client.insert(name, chunk_rows(chunks, np.full((len(chunks), 384), 0.05), "e5-small-ko@base"))
    try:
        # a and b share a title (which ranks first is a coin toss), d has none
        assert known_queries(client, name, ["a", "c", "d"]) == {"c": '따옴표 "제목"'}
    finally:
        client.drop_collection(name)
        client.close()
