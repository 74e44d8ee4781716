"""Backend detection, BM25 score normalisation for both backends, and the embedded connection."""

from __future__ import annotations

from pathlib import Path

from milvus_lite.server_manager import server_manager_instance
from pymilvus import MilvusClient

from chatda.storage.milvus_client import (
    Backend,
    ScoreConvention,
    connect,
    detect_backend,
    embedded_db_path,
)


def test_milvus_lite_server_is_detected(milvus: MilvusClient) -> None:
    assert detect_backend(milvus) is Backend.MILVUS_LITE
    assert ScoreConvention.from_client(milvus) == ScoreConvention(Backend.MILVUS_LITE)


def test_milvus_lite_negated_bm25_becomes_positive() -> None:
    lite = ScoreConvention(Backend.MILVUS_LITE)
    assert lite.bm25_score(-1.53) == 1.53
    assert lite.bm25_score(-2.0) > lite.bm25_score(-0.5)  # lite's best hit is most negative


def test_real_milvus_positive_bm25_passes_through() -> None:
    # No real Milvus here: the convention is constructed explicitly for that backend.
    real = ScoreConvention(Backend.MILVUS)
    assert real.bm25_score(1.53) == 1.53
    assert real.bm25_score(2.0) > real.bm25_score(0.5)


def test_filter_templates_only_on_real_milvus() -> None:
    assert Backend.MILVUS.filter_templates
    assert not Backend.MILVUS_LITE.filter_templates


def test_embedded_connection_uses_data_dir(tmp_path: Path) -> None:
    client = connect(None, tmp_path)
    try:
        assert detect_backend(client) is Backend.MILVUS_LITE
        client.create_collection("probe", dimension=2)
        assert client.list_collections() == ["probe"]
    finally:
        client.close()
        # The embedded server otherwise lives until exit and logs into pytest's closed stream.
        server_manager_instance.release_server(str(embedded_db_path(tmp_path)))
    assert embedded_db_path(tmp_path).is_dir()


def test_uri_connection(milvus_uri: str, tmp_path: Path) -> None:
    client = connect(milvus_uri, tmp_path)
    try:
        assert detect_backend(client) is Backend.MILVUS_LITE
    finally:
        client.close()
    assert not embedded_db_path(tmp_path).exists()
