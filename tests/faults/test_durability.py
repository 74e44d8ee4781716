"""A 202 means searchable: a worker SIGKILLed mid-batch, and the whole local stack restarted
(the in-memory broker included) right after publishing, lose and duplicate nothing.

The stack is assembled as ``chatda up`` assembles it: ``chatda ingest`` runs as a real child of
``cli.supervisor.Supervisor``, the broker is a real Tansu (records in memory only), Milvus
a real milvus-lite server, articles go through the outbox publisher, and a restart runs
``cli.up_command.redeliver_accepted``. Every article carries a marker word in its title;
"exactly once" is checked per article (rows per post_id equal its chunk count) and per marker
(rows whose title holds it).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException

from chatda.articles.message import ArticleMessage
from chatda.articles.outbox import Outbox
from chatda.articles.progress import wait_until_indexed
from chatda.articles.publisher import Publisher
from chatda.broker.tansu import TansuBroker
from chatda.db.engine import make_engine, upgrade
from chatda.models.encoder import Encoder
from chatda.settings import Settings
from chatda.storage.milvus_server import MilvusLiteServer
from cli.supervisor import Backoff, Supervisor
from cli.up_command import redeliver_accepted
from ingest.worker import IngestWorker
from tests.ingest.helpers import (
    TEST_CHUNK_TOKENS,
    TEST_MAX_TEXT_CHARS,
    Names,
    WorkerThread,
    chunk_counts,
    code,
    expected_chunks,
    sample_article,
    worker_config,
)


def marked(i: int, prefix: str) -> ArticleMessage:
    """Article ``i`` with its marker word (``code(i)``) in the title."""
    article = sample_article(i, prefix)
    return article.model_copy(update={"title": f"{article.title} {code(i)}"})


def stack_settings(data_dir: Path, names: Names, bootstrap: str, milvus_uri: str) -> Settings:
    return Settings(
        data_dir=data_dir,
        kafka_bootstrap=bootstrap,
        milvus_uri=milvus_uri,
        articles_topic=names.topic,
        articles_alias=names.alias,
        ingest_group_id=names.group_id,
        dead_letter_topic=names.dead_letter_topic,
    )


def ingest_command(settings: Settings, models_dir: Path) -> tuple[list[str], dict[str, str]]:
    """``chatda ingest`` as ``chatda up`` runs it: configured by the environment only."""
    env = {
        **os.environ,
        "CHATDA_DATA_DIR": str(settings.data_dir),
        "CHATDA_KAFKA_BOOTSTRAP": str(settings.kafka_bootstrap),
        "CHATDA_MILVUS_URI": str(settings.milvus_uri),
        "CHATDA_MODELS_DIR": str(models_dir),
        "CHATDA_ARTICLES_TOPIC": settings.articles_topic,
        "CHATDA_ARTICLES_ALIAS": settings.articles_alias,
        "CHATDA_INGEST_GROUP_ID": settings.ingest_group_id,
        "CHATDA_DEAD_LETTER_TOPIC": settings.dead_letter_topic,
        "CHATDA_INGEST_BATCH_SIZE": "4",
        "CHATDA_CHUNK_MAX_TOKENS": str(TEST_CHUNK_TOKENS),
        "CHATDA_MAX_TEXT_CHARS": str(TEST_MAX_TEXT_CHARS),
        "CHATDA_DEVICE": "cpu",
        "CHATDA_CPU_THREADS": "1",
    }
    return [sys.executable, "-m", "cli.main", "ingest"], env


class Supervised:
    """A supervisor ticking on a thread, as ``chatda up`` runs it; a context manager."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.supervisor = Supervisor(Backoff(first_s=0.5, max_s=2), echo=self.lines.append)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.supervisor.run, args=(self._stop, 0.1))

    def __enter__(self) -> Supervisor:
        self._thread.start()
        return self.supervisor

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.supervisor.stop(timeout_s=60)


def publish(settings: Settings, messages: list[ArticleMessage]) -> None:
    with Publisher.from_settings(settings) as publisher:  # the API's path: with the outbox
        publisher.publish_many(messages)


def rows_or_zero(client: MilvusClient, alias: str) -> int:
    try:
        return sum(chunk_counts(client, alias).values())
    except MilvusException:  # no alias before the worker's first start
        return 0


def marker_hits(client: MilvusClient, alias: str, messages: list[ArticleMessage]) -> Counter[str]:
    """Rows per marker word, read from the titles Milvus holds."""
    rows = client.query(
        alias,
        filter='title like "%qz%"',
        output_fields=["title"],
        limit=16384,
        consistency_level="Strong",
    )
    markers = {m.title.rsplit(" ", 1)[1] for m in messages if m.title}
    hits: Counter[str] = Counter()
    for row in rows:
        word = row["title"].rsplit(" ", 1)[1]
        if word in markers:
            hits[word] += 1
    return hits


def assert_exactly_once(
    client: MilvusClient, alias: str, encoder: Encoder, messages: list[ArticleMessage]
) -> None:
    chunks = {m.post_id: expected_chunks(encoder, m) for m in messages}
    assert chunk_counts(client, alias) == chunks
    by_marker = {m.title.rsplit(" ", 1)[1]: chunks[m.post_id] for m in messages if m.title}
    assert marker_hits(client, alias, messages) == by_marker


@pytest.fixture
def milvus_client(milvus_uri: str) -> Iterator[MilvusClient]:
    client = MilvusClient(uri=milvus_uri)
    yield client
    client.close()


def test_worker_sigkill_mid_batch_is_restarted_and_nothing_is_lost_or_doubled(
    kafka_bootstrap: str,
    milvus_uri: str,
    milvus_client: MilvusClient,
    encoder: Encoder,
    models_dir: Path,
    tmp_path: Path,
) -> None:
    names = Names.fresh("sigkill")
    settings = stack_settings(tmp_path, names, kafka_bootstrap, milvus_uri)
    messages = [marked(i, "sigkill") for i in range(32)]
    publish(settings, messages)
    with Supervised() as supervisor:
        supervisor.spawn("ingest", *ingest_command(settings, models_dir))
        deadline = time.monotonic() + 240
        while rows_or_zero(milvus_client, names.alias) == 0:  # its first batch is written
            assert time.monotonic() < deadline
            time.sleep(0.05)
        victim = supervisor.process("ingest")
        assert victim is not None
        victim.send_signal(signal.SIGKILL)  # mid-stream: 4 records a batch, 32 records
        wait_until_indexed(
            kafka_bootstrap, milvus_client, names.group_id, names.alias, names.topic, 300
        )
        assert supervisor.exit_codes("ingest") == [-signal.SIGKILL]
        assert supervisor.restarts("ingest") == 1
    assert rows_or_zero(milvus_client, names.alias) > 0
    assert_exactly_once(milvus_client, names.alias, encoder, messages)

    engine = make_engine(settings.sql_url)
    try:
        done = redeliver_accepted(settings)  # what the next `chatda up` start would find
        assert done.startswith(f"{len(messages)} confirmed, 0 sent again"), done
        assert Outbox(engine).unconfirmed() == []
    finally:
        engine.dispose()


def test_restarting_the_whole_stack_delivers_every_accepted_article_once(
    encoder: Encoder, tmp_path: Path
) -> None:
    """Broker, Milvus and worker stop and start again; the worker runs on a thread here (the
    test above covers the supervised process), since what is at stake is the broker's loss."""
    names = Names.fresh("restart")
    milvus_dir = tmp_path / "milvus-server"
    messages = [marked(i, "restart") for i in range(40)]
    indexed_first = messages[:8]

    # The first run of the stack: a few articles get indexed, then 32 more are accepted and
    # the stack stops before any worker took them off the (in-memory) broker.
    with TansuBroker() as broker, MilvusLiteServer(milvus_dir) as milvus:
        settings = stack_settings(tmp_path, names, broker.bootstrap, milvus.uri)
        publish(settings, indexed_first)
        config = worker_config(broker.bootstrap, milvus.uri, tmp_path, names, batch_size=4)
        with WorkerThread(IngestWorker(config, encoder)):
            client = MilvusClient(uri=milvus.uri)
            wait_until_indexed(
                broker.bootstrap, client, names.group_id, names.alias, names.topic, 300
            )
            client.close()
        publish(settings, messages[8:])  # 202s; nothing consumes them before the stop
    engine = make_engine(settings.sql_url)
    upgrade(engine)
    assert len(Outbox(engine).unconfirmed()) == len(messages)  # accepted, none confirmed yet
    engine.dispose()

    # The next run: a fresh broker holds nothing; Milvus kept its data.
    with TansuBroker() as broker, MilvusLiteServer(milvus_dir) as milvus:
        settings = stack_settings(tmp_path, names, broker.bootstrap, milvus.uri)
        done = redeliver_accepted(settings)  # what `chatda up` runs before its children
        assert done.startswith(f"{len(indexed_first)} confirmed, 32 sent again, 0 failed"), done
        client = MilvusClient(uri=milvus.uri)
        assert chunk_counts(client, names.alias) == {
            m.post_id: expected_chunks(encoder, m) for m in indexed_first
        }
        config = worker_config(broker.bootstrap, milvus.uri, tmp_path, names, batch_size=4)
        with WorkerThread(IngestWorker(config, encoder)):
            wait_until_indexed(
                broker.bootstrap, client, names.group_id, names.alias, names.topic, 300
            )
        assert_exactly_once(client, names.alias, encoder, messages)
        assert redeliver_accepted(settings).startswith("32 confirmed, 0 sent again")
        client.close()
