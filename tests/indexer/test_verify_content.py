"""Verification never fails because of what an article says: any title an accepted article
can carry is a usable known query, or is left out, and the re-index goes on.

Found in an adversarial audit: one title with a Private Use character (U+E000) made every
re-index exit 1, because the known queries looked titles up with a Milvus filter and the
filter refuses such characters (and titles over 256 characters)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymilvus import MilvusClient

from chatda.models.encoder import Encoder
from chatda.search.articles import ArticleIndex
from chatda.storage.article_rows import ArticleChunk, chunk_rows
from chatda.storage.articles_schema import create_articles_collection
from chatda.text.morphemes import default_morphemes
from indexer.reindex_verify import known_queries, verify

MODEL = "e5-small-ko@base"
TITLES = {
    "pua": "사용자 정의 문자 \ue000 제목",
    "tag-char": "태그 문자 \U000e0041 제목",
    "unassigned": "미지정 문자 \U0003fffd 제목",
    "long": "아주 긴 제목 " * 40,
    "symbols": "★★★",
    "quotes": 'back\\slash "따옴표" 제목',
    "plain": "해외송금 수수료 아끼는 법",
}


@pytest.fixture
def collections(milvus_uri: str, encoder: Encoder) -> Iterator[tuple[MilvusClient, list[str]]]:
    """Two identical collections (live and built) holding one article per title."""
    client = MilvusClient(uri=milvus_uri)
    morphemes = default_morphemes()
    chunks = [
        ArticleChunk(post_id, 0, title, "본문", morphemes.joined(title), "", "", [], 0, 0)
        for post_id, title in TITLES.items()
    ]
    vectors = encoder.encode([c.title for c in chunks], "passage")
    names = [f"articles__verify_{uuid.uuid4().hex[:8]}__2026010{i}T000000" for i in (1, 2)]
    for name in names:
        create_articles_collection(client, name, MODEL)
        client.insert(name, chunk_rows(chunks, vectors, MODEL))
    try:
        yield client, names
    finally:
        for name in names:
            client.drop_collection(name)
        client.close()


def test_every_title_is_a_known_query(collections) -> None:
    client, (live, _) = collections
    assert known_queries(client, live, sorted(TITLES)) == TITLES


def test_verification_runs_over_any_title(collections, milvus_uri: str, encoder: Encoder) -> None:
    client, (live, built) = collections
    index = ArticleIndex(milvus_uri, Path("."), "unused")
    assert index.connect()
    try:
        result = verify(client, index, live, built, encoder, encoder, default_morphemes(), set, 100)
    finally:
        index.close()
    assert result.mismatched == [] and result.articles == len(TITLES)
    assert result.problems(0.0) == []
    # every title is a dense query; "★★★" has no term BM25 could match, so it skips that leg
    assert result.live["dense"].queries == result.built["dense"].queries == len(TITLES)
    assert result.live["bm25"].queries == result.built["bm25"].queries == len(TITLES) - 1
