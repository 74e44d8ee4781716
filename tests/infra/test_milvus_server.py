"""The milvus-lite server process: start, stop, data-dir lock, and persistence across restarts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pymilvus import MilvusClient

from chatda.process import ServerStartError, port_accepts
from chatda.storage.articles_schema import create_articles_collection
from chatda.storage.milvus_server import MilvusLiteServer
from tests.infra.samples import ROWS


def test_restart_keeps_data_after_load(tmp_path: Path) -> None:
    name = "articles__restart__20260101T000000"
    with MilvusLiteServer(tmp_path) as server:
        client = MilvusClient(uri=server.uri)
        create_articles_collection(client, name)
        client.insert(name, ROWS[:3])
        client.close()
        pid = server.pid
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not port_accepts("127.0.0.1", server.port)

    with MilvusLiteServer(tmp_path) as server:
        client = MilvusClient(uri=server.uri)
        try:
            assert client.list_collections() == [name]
            client.load_collection(name)  # collections come back released
            rows = client.query(name, filter="chunk_no >= 0", output_fields=["chunk_id"])
            assert sorted(r["chunk_id"] for r in rows) == sorted(r["chunk_id"] for r in ROWS[:3])
        finally:
            client.close()


def test_second_server_on_same_data_dir_fails_clearly(tmp_path: Path) -> None:
    locked = pytest.raises(ServerStartError, match="exited with code")
    with MilvusLiteServer(tmp_path), locked as info:
        MilvusLiteServer(tmp_path).start()
    assert "DataDirLockedError" in str(info.value)  # the log tail names the cause
