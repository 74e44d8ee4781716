"""``chatda.storage.article_rows``: rows that fill the collection's schema, and a copy that
reads a row back rebuilds the same chunk (what the re-index relies on)."""

from __future__ import annotations

import uuid

import numpy as np
from pymilvus import MilvusClient

from chatda.storage.article_rows import STORED_FIELDS, ArticleChunk, chunk_rows
from chatda.storage.articles_schema import article_schema, create_articles_collection
from tests.infra.samples import unit_vector

CHUNKS = [
    ArticleChunk(
        post_id="fx-fee",
        chunk_no=n,
        title="해외송금 수수료 아끼는 법",
        text=text,
        bm25_text=f"해외 송금 수수료 {text}",
        series="송금 가이드",
        category="송금",
        tags=["환전", "수수료"],
        published_at=1767225600,
        updated_at=1767312000 + n,
    )
    for n, text in enumerate(["받는 은행 코드를 확인하세요.", "영문 이름이 틀리면 반송됩니다."])
]


def test_rows_fill_every_written_field_of_the_schema() -> None:
    rows = chunk_rows(CHUNKS, np.array([unit_vector(0), unit_vector(1)]), "e5-small-ko@base")
    written = {f.name for f in article_schema().fields if not f.is_function_output}
    assert all(set(row) == written for row in rows)
    assert [row["chunk_id"] for row in rows] == ["fx-fee#0", "fx-fee#1"]
    assert {row["model_version"] for row in rows} == {"e5-small-ko@base"}
    assert rows[1]["dense"] == unit_vector(1)


def test_a_stored_row_rebuilds_its_chunk(milvus: MilvusClient) -> None:
    name = f"articles__rows_{uuid.uuid4().hex[:8]}__20260101T000000"
    create_articles_collection(milvus, name, "e5-small-ko@base")
    try:
        vectors = np.array([unit_vector(0), unit_vector(1)])
        milvus.insert(name, chunk_rows(CHUNKS, vectors, "e5-small-ko@base"))
        stored = milvus.query(
            name, filter="", limit=10, output_fields=list(STORED_FIELDS), consistency_level="Strong"
        )
        rebuilt = sorted(
            (ArticleChunk.stored(row, f"해외 송금 수수료 {row['text']}") for row in stored),
            key=lambda c: c.chunk_no,
        )
        assert rebuilt == CHUNKS
    finally:
        milvus.drop_collection(name)
