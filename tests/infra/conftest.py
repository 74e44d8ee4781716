"""Milvus fixtures for the infra tests: a client on the session server and a filled collection."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from pymilvus import MilvusClient

from chatda.storage.articles_schema import create_articles_collection
from tests.infra.samples import ROWS


@pytest.fixture(scope="session")
def milvus(milvus_uri: str) -> Iterator[MilvusClient]:
    client = MilvusClient(uri=milvus_uri)
    yield client
    client.close()


@pytest.fixture(scope="module")
def articles(milvus: MilvusClient) -> Iterator[str]:
    """A loaded article collection holding ROWS; dropped after the module."""
    name = f"articles__test_{uuid.uuid4().hex[:8]}__20260101T000000"
    create_articles_collection(milvus, name)
    milvus.insert(name, ROWS)
    yield name
    milvus.drop_collection(name)
