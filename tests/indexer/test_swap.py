"""The swap when Milvus is gone: no alias move, a clear error, and the live collection intact.

A private milvus-lite server (not the session one), since the test stops it under the client.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pymilvus import MilvusClient

from chatda.storage.articles_schema import alias_target, create_articles_collection, ensure_alias
from chatda.storage.milvus_server import MilvusLiteServer
from indexer.reindex import ReindexError, swap

LIVE, BUILT = "articles__live__20260101T000000", "articles__built__20260102T000000"


def test_milvus_down_at_swap_time_moves_nothing(tmp_path: Path) -> None:
    server = MilvusLiteServer(tmp_path).start()
    client = MilvusClient(uri=server.uri)
    create_articles_collection(client, LIVE, "e5-small-ko@base")
    create_articles_collection(client, BUILT, "e5-small-ko@next")
    ensure_alias(client, "articles", LIVE)
    server.stop()
    with pytest.raises(ReindexError, match=r"nothing was swapped.*run the re-index again"):
        swap(client, "articles", BUILT)
    client.close()
    with MilvusLiteServer(tmp_path, port=server.port) as restarted:
        again = MilvusClient(uri=restarted.uri)
        assert alias_target(again, "articles") == LIVE
        swap(again, "articles", BUILT)  # and the retry, once Milvus is back, goes through
        assert alias_target(again, "articles") == BUILT
        again.close()
