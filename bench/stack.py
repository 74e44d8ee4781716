"""The local stack a benchmark runs against: Tansu, milvus-lite, the demo catalog, and the
environment every process it starts reads (a worker, the API, ``chatda index …``)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pymilvus import MilvusClient

from chatda.articles.progress import wait_until_indexed
from chatda.broker.tansu import TansuBroker
from chatda.demo import catalog_path
from chatda.settings import get_settings
from chatda.storage.milvus_server import MilvusLiteServer


@dataclass(frozen=True)
class Stack:
    bootstrap: str
    milvus_uri: str
    env: dict[str, str]

    def wait_indexed(self, timeout_s: float) -> None:
        """Until the ingest group of the collection the alias serves has no lag."""
        settings = get_settings()
        probe = MilvusClient(uri=self.milvus_uri)
        try:
            wait_until_indexed(
                self.bootstrap,
                probe,
                settings.ingest_group_id,
                settings.articles_alias,
                settings.articles_topic,
                timeout_s,
            )
        finally:
            probe.close()


@contextmanager
def local_stack() -> Iterator[Stack]:
    settings = get_settings()
    with (
        tempfile.TemporaryDirectory() as tmp,
        TansuBroker() as broker,
        MilvusLiteServer(Path(tmp) / "milvus") as milvus,
    ):
        yield Stack(
            broker.bootstrap,
            milvus.uri,
            {
                "CHATDA_DATA_DIR": tmp,
                "CHATDA_MODELS_DIR": str(settings.models_dir.resolve()),
                "CHATDA_KAFKA_BOOTSTRAP": broker.bootstrap,
                "CHATDA_MILVUS_URI": milvus.uri,
                "CHATDA_CATALOG_FILE": str(catalog_path()),
                "CHATDA_REQUEST_TIMEOUT_MS": "60000",
            },
        )


@contextmanager
def ingest_worker(env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """``chatda ingest`` as its own process, stopped (SIGTERM: batch finished) on exit."""
    worker = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "ingest"],
        env={**os.environ, **env, "CHATDA_LOG_LEVEL": "WARNING"},
    )
    try:
        yield worker
    finally:
        worker.terminate()
        worker.wait(60)
