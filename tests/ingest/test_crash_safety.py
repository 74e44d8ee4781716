"""Exactly-once in effect: crashes, redelivery, a worker group sharing and handing over
partitions. Workers that must be killed or signalled run as ``chatda ingest`` subprocesses.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException

from chatda.articles.message import ArticleMessage
from chatda.articles.progress import serving_lag, wait_until_indexed
from chatda.articles.publisher import Publisher
from chatda.broker.kafka import committed_lag
from chatda.models.encoder import Encoder
from chatda.storage.index_models import ingest_group
from ingest.worker import IngestWorker
from tests.ingest.helpers import (
    Names,
    WorkerThread,
    chunk_counts,
    expected_chunks,
    read_topic,
    row_count,
    sample_article,
    spawn_worker,
    worker_config,
)


@pytest.fixture
def child() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Subprocesses a test starts; killed if the test leaves them running."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def publish(bootstrap: str, names: Names, messages: list[ArticleMessage]) -> None:
    with Publisher(bootstrap, names.topic, 4) as publisher:
        publisher.publish_many(messages)


def assert_exactly_once(
    milvus: MilvusClient, names: Names, encoder: Encoder, messages: list[ArticleMessage]
) -> None:
    expected = {m.post_id: expected_chunks(encoder, m) for m in messages}
    assert chunk_counts(milvus, names.alias) == expected
    assert row_count(milvus, names.alias) == sum(expected.values())


def rows_or_zero(milvus: MilvusClient, alias: str) -> int:
    try:
        return row_count(milvus, alias)
    except MilvusException:  # the worker has not created the alias yet
        return 0


def test_batch_written_but_not_committed_is_redone_once(
    kafka_bootstrap: str, milvus_uri: str, milvus: MilvusClient, encoder: Encoder, tmp_path: Path
) -> None:
    names = Names.fresh("redo")
    messages = [sample_article(i, "redo", sentences=3 if i % 3 == 0 else 1) for i in range(12)]
    publish(kafka_bootstrap, names, messages)
    worker = IngestWorker(worker_config(kafka_bootstrap, milvus_uri, tmp_path, names), encoder)
    group = ingest_group(names.group_id, worker.sink.resolve(encoder.ref).collection)

    # Written to Milvus, offsets never committed: what a crash right before the commit leaves.
    worker.process(read_topic(kafka_bootstrap, names.topic, len(messages)))
    assert committed_lag(kafka_bootstrap, group, names.topic) == len(messages)
    assert_exactly_once(milvus, names, encoder, messages)

    with WorkerThread(worker):
        wait_until_indexed(
            kafka_bootstrap, milvus, names.group_id, names.alias, names.topic, timeout_s=120
        )
    assert worker.stats.records == 2 * len(messages)  # the batch really came back, rewritten
    assert_exactly_once(milvus, names, encoder, messages)


def test_sigkill_mid_stream_then_restart_loses_and_duplicates_nothing(
    kafka_bootstrap: str,
    milvus_uri: str,
    milvus: MilvusClient,
    encoder: Encoder,
    models_dir: Path,
    tmp_path: Path,
    child: list[subprocess.Popen[bytes]],
) -> None:
    names = Names.fresh("kill")
    messages = [sample_article(i, "kill") for i in range(60)]
    publish(kafka_bootstrap, names, messages)
    log = tmp_path / "worker.log"
    proc = spawn_worker(kafka_bootstrap, milvus_uri, models_dir, tmp_path, names, log, 4)
    child.append(proc)

    deadline = time.monotonic() + 240
    while rows_or_zero(milvus, names.alias) == 0:
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # right after its first write: mid-stream, mid-batch
    proc.wait()
    lag = serving_lag(kafka_bootstrap, milvus, names.group_id, names.alias, names.topic)
    assert lag is not None and lag > 0

    config = worker_config(kafka_bootstrap, milvus_uri, tmp_path, names, batch_size=16)
    with WorkerThread(IngestWorker(config, encoder)):
        wait_until_indexed(
            kafka_bootstrap, milvus, names.group_id, names.alias, names.topic, timeout_s=300
        )
    assert_exactly_once(milvus, names, encoder, messages)


def test_two_workers_split_partitions_and_one_leaves_cleanly(
    kafka_bootstrap: str,
    milvus_uri: str,
    milvus: MilvusClient,
    encoder: Encoder,
    models_dir: Path,
    tmp_path: Path,
    child: list[subprocess.Popen[bytes]],
) -> None:
    names = Names.fresh("pair")
    first = [sample_article(i, "pair") for i in range(40)]
    later = [sample_article(i, "pair") for i in range(40, 60)]
    log = tmp_path / "worker.log"
    proc = spawn_worker(kafka_bootstrap, milvus_uri, models_dir, tmp_path, names, log, 4)
    child.append(proc)
    config = worker_config(kafka_bootstrap, milvus_uri, tmp_path, names, batch_size=4)
    with WorkerThread(IngestWorker(config, encoder)) as local:
        local.wait_for_partitions(2, timeout_s=240)  # the subprocess holds the other two
        publish(kafka_bootstrap, names, first)
        deadline = time.monotonic() + 240
        while "ingest batch records=" not in log.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)  # while its partitions still hold work
        assert proc.wait(timeout=120) == 0, log.read_text()
        assert "ingest worker stopped" in log.read_text()
        local.wait_for_partitions(4)
        publish(kafka_bootstrap, names, later)
        wait_until_indexed(
            kafka_bootstrap, milvus, names.group_id, names.alias, names.topic, timeout_s=300
        )
    assert local.worker.stats.records > 0
    assert_exactly_once(milvus, names, encoder, first + later)
