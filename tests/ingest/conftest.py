"""Fixtures of the ingest tests: a Milvus client on the session server, and the worker's
building blocks shared with the in-process workers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pymilvus import MilvusClient


@pytest.fixture(scope="session")
def milvus(milvus_uri: str) -> Iterator[MilvusClient]:
    client = MilvusClient(uri=milvus_uri)
    yield client
    client.close()
