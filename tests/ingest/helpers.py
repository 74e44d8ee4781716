"""Shared pieces of the ingest tests: deterministic articles, a worker on a thread or in a
subprocess, and Milvus/Kafka read-backs."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace, TracebackType

from fastapi import FastAPI
from kafka import KafkaConsumer
from pymilvus import MilvusClient

from chatda.articles.message import ArticleMessage
from chatda.demo import articles_path
from chatda.models.encoder import Encoder
from chatda.settings import Settings
from chatda.text.chunker import chunk
from chatda.text.normalize import normalize_document, normalize_query
from ingest.config import WorkerConfig
from ingest.worker import IngestWorker
from query.auth_failures import AuthFailures
from query.errors import install_error_handlers
from query.routes import articles
from query.services import PublisherSlot

REPO = Path(__file__).resolve().parents[2]
BASE_TIME = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
# Small chunks make short (fast to embed) bodies span several chunks.
TEST_CHUNK_TOKENS = 64
TEST_MAX_TEXT_CHARS = 2000
_DEMO = [json.loads(line) for line in articles_path().read_text(encoding="utf-8").splitlines()]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def code(i: int) -> str:
    """A Latin word unique to article ``i`` that Kiwi keeps whole: a BM25 needle."""
    letters = ""
    for _ in range(3):
        i, digit = divmod(i, 26)
        letters += chr(ord("a") + digit)
    return f"qz{letters}"


def _clause(text: str, limit: int) -> str:
    """The start of ``text`` up to the last space within ``limit`` characters."""
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0]


def sample_article(i: int, prefix: str, *, sentences: int | None = None) -> ArticleMessage:
    """Article ``i``: a demo article's title and opening, tagged with ``code(i)``.

    Every tenth article keeps three sentences (several chunks); the rest are a short title
    and one short clause, since embedding time grows with tokens and 200 must index fast.
    """
    demo = _DEMO[i % len(_DEMO)]
    first = demo["body"].split("\n")[0]
    count = sentences if sentences is not None else (3 if i % 10 == 0 else 1)
    parts = first.split(". ")
    opening = ". ".join(parts[:count]) if count > 1 else _clause(parts[0], 30)
    return ArticleMessage(
        post_id=f"{prefix}-{i:04d}",
        title=f"{_clause(demo['title'].split(':')[0], 20)} {i}",
        body=f"자료 코드는 {code(i)} 입니다. {opening}",
        series=demo["series"],
        category=demo["category"],
        tags=demo["tags"],
        author=demo["author"],
        url=f"https://example.com/{prefix}/{i}",
        published_at=datetime.fromisoformat(demo["published_at"]),
        updated_at=BASE_TIME,
    )


def expected_chunks(encoder: Encoder, message: ArticleMessage) -> int:
    """How many chunks the worker must write for ``message`` (the chunker, run directly)."""
    title = normalize_query(message.title or "").text
    body = normalize_document(message.body or "").text
    return len(
        chunk(title, body, lambda t: encoder.count_tokens(t, "passage"), TEST_CHUNK_TOKENS, 1)
    )


@dataclass(frozen=True)
class Names:
    """Per-module topic, dead-letter topic, group and alias, so modules never interfere."""

    topic: str
    dead_letter_topic: str
    group_id: str
    alias: str

    @classmethod
    def fresh(cls, label: str) -> Names:
        tag = uuid.uuid4().hex[:8]
        return cls(
            f"articles-{label}-{tag}",
            f"articles-dlq-{label}-{tag}",
            f"ingest-{label}-{tag}",
            f"articles_{label}_{tag}",
        )


def worker_config(
    bootstrap: str, milvus_uri: str, data_dir: Path, names: Names, **overrides: object
) -> WorkerConfig:
    base = WorkerConfig(
        bootstrap=bootstrap,
        milvus_uri=milvus_uri,
        data_dir=data_dir,
        topic=names.topic,
        dead_letter_topic=names.dead_letter_topic,
        indexed_topic=f"{names.topic}-indexed",
        group_id=names.group_id,
        alias=names.alias,
        partitions=4,
        batch_size=64,
        chunk_max_tokens=TEST_CHUNK_TOKENS,
        overlap_sentences=1,
        max_text_chars=TEST_MAX_TEXT_CHARS,
        poll_timeout_ms=200,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


class WorkerThread:
    """An ``IngestWorker`` running on a thread of the test process; a context manager.

    Exiting stops it the way SIGTERM would (finish the batch, commit, close) and re-raises
    anything the worker raised.
    """

    def __init__(self, worker: IngestWorker) -> None:
        self.worker = worker
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="ingest-worker", daemon=True)

    def _run(self) -> None:
        try:
            self.worker.run(self.stop)
        except BaseException as exc:
            self.error = exc
            raise

    def __enter__(self) -> WorkerThread:
        self.thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop.set()
        self.thread.join(timeout=120)
        assert not self.thread.is_alive(), "worker did not stop"
        if self.error is not None and exc is None:
            raise self.error

    def wait_for_partitions(self, count: int, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.worker.assignment) != count:
            assert self.error is None, self.error
            assert time.monotonic() < deadline, f"assignment {self.worker.assignment}"
            time.sleep(0.1)


def spawn_worker(
    bootstrap: str,
    milvus_uri: str,
    models_dir: Path,
    data_dir: Path,
    names: Names,
    log_path: Path,
    batch_size: int,
) -> subprocess.Popen[bytes]:
    """``chatda ingest`` as a child process, configured the way an operator would."""
    env = {
        **os.environ,
        "CHATDA_KAFKA_BOOTSTRAP": bootstrap,
        "CHATDA_MILVUS_URI": milvus_uri,
        "CHATDA_MODELS_DIR": str(models_dir),
        "CHATDA_DATA_DIR": str(data_dir),
        "CHATDA_DEVICE": "cpu",
        "CHATDA_CPU_THREADS": "1",
        "CHATDA_MAX_TEXT_CHARS": str(TEST_MAX_TEXT_CHARS),
        "CHATDA_DEAD_LETTER_TOPIC": names.dead_letter_topic,
    }
    argv = [
        sys.executable, "-m", "cli.main", "ingest",
        "--topic", names.topic,
        "--group", names.group_id,
        "--alias", names.alias,
        "--batch-size", str(batch_size),
        "--chunk-max-tokens", str(TEST_CHUNK_TOKENS),
    ]  # fmt: skip
    with log_path.open("wb") as log:
        return subprocess.Popen(argv, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)


def chunk_counts(client: MilvusClient, alias: str) -> Counter[str]:
    """Rows per post_id currently in the collection behind ``alias``."""
    rows = client.query(
        alias,
        filter='post_id != ""',
        output_fields=["post_id"],
        limit=16384,
        consistency_level="Strong",
    )
    return Counter(row["post_id"] for row in rows)


def row_count(client: MilvusClient, alias: str) -> int:
    (row,) = client.query(alias, filter="", output_fields=["count(*)"], consistency_level="Strong")
    return int(row["count(*)"])


def read_topic(bootstrap: str, topic: str, expected: int, timeout_s: float = 30) -> list:
    """The first ``expected`` records of ``topic`` from the beginning, in offset order."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    records: list = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
    finally:
        consumer.close()
    assert len(records) >= expected, f"{len(records)} of {expected} records on {topic}"
    return sorted(records, key=lambda r: (r.partition, r.offset))


def articles_app(settings: Settings) -> FastAPI:
    """The articles router alone over the three parts of the API's state it uses (settings,
    the publisher slot and the publisher guard's wrong-token limiter): a stand-in for
    ``query.state.ApiState``, built and closed by a lifespan as the real app does."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        slot = PublisherSlot(settings)
        app.state.chatda = SimpleNamespace(
            settings=settings, publisher=slot, auth_failures=AuthFailures()
        )
        try:
            yield
        finally:
            await asyncio.to_thread(slot.close)

    app = FastAPI(lifespan=lifespan)
    install_error_handlers(app)
    app.include_router(articles.router)
    return app
