"""Milvus going away: the worker commits nothing, retries with backoff, and catches up when
Milvus is back, without dead-lettering anything (an outage is not the records' fault)."""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client import REGISTRY
from pymilvus import MilvusClient

from chatda.articles.progress import wait_until_indexed
from chatda.articles.publisher import Publisher
from chatda.broker.kafka import committed_lag
from chatda.models.encoder import Encoder
from chatda.storage.index_models import ingest_group
from chatda.storage.milvus_server import MilvusLiteServer
from ingest.worker import IngestWorker
from tests.ingest.helpers import Names, WorkerThread, chunk_counts, sample_article, worker_config


def retries() -> float:
    return REGISTRY.get_sample_value("chatda_ingest_write_retries_total") or 0.0


def dead_letters() -> float:
    return sum(
        sample.value
        for family in REGISTRY.collect()
        if family.name == "chatda_ingest_dead_letters"
        for sample in family.samples
        if sample.name.endswith("_total")
    )


def test_worker_waits_out_a_milvus_outage(
    kafka_bootstrap: str, encoder: Encoder, tmp_path: Path
) -> None:
    names = Names.fresh("outage")
    server = MilvusLiteServer(tmp_path / "milvus").start()
    port, uri = server.port, server.uri
    config = worker_config(kafka_bootstrap, uri, tmp_path, names)
    client = MilvusClient(uri=uri)
    before, dlq_before = retries(), dead_letters()
    try:
        with (
            Publisher(kafka_bootstrap, names.topic, 4) as publisher,
            WorkerThread(IngestWorker(config, encoder, milvus=client)) as running,
        ):
            publisher.publish(sample_article(1, "out"))
            wait_until_indexed(
                kafka_bootstrap, client, names.group_id, names.alias, names.topic, timeout_s=120
            )
            server.stop()
            publisher.publish(sample_article(2, "out"))
            deadline = time.monotonic() + 60
            while retries() == before:
                assert time.monotonic() < deadline, "the worker never retried"
                time.sleep(0.1)
            assert running.worker.collection is not None
            group = ingest_group(names.group_id, running.worker.collection)
            assert committed_lag(kafka_bootstrap, group, names.topic) == 1
            server = MilvusLiteServer(tmp_path / "milvus", port=port).start()
            wait_until_indexed(
                kafka_bootstrap, client, names.group_id, names.alias, names.topic, timeout_s=120
            )
        assert chunk_counts(client, names.alias) == {"out-0001": 1, "out-0002": 1}
        assert dead_letters() == dlq_before
    finally:
        client.close()
        server.stop()
