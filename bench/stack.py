"""The local stack a benchmark runs against: Tansu, milvus-lite, the demo catalog (and, from
``demo_indexed_stack``, the demo articles indexed), and the environment every process it
starts reads (a worker, the API, ``chatda index …``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pymilvus import MilvusClient

from chatda.articles.message import ArticleMessage
from chatda.articles.progress import wait_until_indexed
from chatda.articles.publisher import Publisher
from chatda.broker.tansu import TansuBroker
from chatda.demo import articles_path, catalog_path
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
def demo_indexed_stack() -> Iterator[Stack]:
    """The local stack with the demo articles published and indexed (the worker stopped)."""
    settings = get_settings()
    with local_stack() as stack:
        lines = articles_path().read_text(encoding="utf-8").splitlines()
        with Publisher(stack.bootstrap, settings.articles_topic, settings.article_partitions) as p:
            p.publish_many([ArticleMessage.model_validate(json.loads(x)) for x in lines if x])
        with ingest_worker(stack.env):
            stack.wait_indexed(900)
        yield stack


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
