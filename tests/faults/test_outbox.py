"""The article outbox and its reconciler against the real SQL store (SQLite), the session
Tansu broker and milvus-lite, with a real ingest worker applying what Kafka holds.

"Lost by the broker" is made by recording a row without sending it, which is exactly what an
in-memory broker's restart leaves: the store has the row, Kafka has nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition
from prometheus_client import REGISTRY
from pydantic import SecretStr
from pymilvus import MilvusClient
from sqlalchemy import Engine, select

from chatda.articles.message import ArticleMessage
from chatda.articles.outbox import FAILED, Outbox
from chatda.articles.publisher import BrokerUnavailable, Publisher
from chatda.db.engine import make_engine, upgrade
from chatda.db.tables import job_runs
from chatda.models.encoder import Encoder
from chatda.settings import Settings
from indexer.outbox_job import JOB, Reconciled, indexed_versions, reconcile
from indexer.scheduler import run_named_job
from ingest.worker import IngestWorker
from tests.indexer.conftest import job_store
from tests.ingest.helpers import (
    Names,
    articles_app,
    chunk_counts,
    expected_chunks,
    sample_article,
    worker_config,
)

LONG_AGO = datetime.now(UTC) - timedelta(hours=1)


class Stack:
    """One test's topic, alias, outbox and in-process worker, and the steps tests combine."""

    def __init__(
        self,
        bootstrap: str,
        milvus: MilvusClient,
        engine: Engine,
        worker: IngestWorker,
        names: Names,
    ) -> None:
        self.bootstrap = bootstrap
        self.milvus = milvus
        self.outbox = Outbox(engine)
        self.worker = worker
        self.names = names

    def publisher(self, outbox: bool = True) -> Publisher:
        return Publisher(self.bootstrap, self.names.topic, 4, self.outbox if outbox else None)

    def accept(self, *messages: ArticleMessage) -> None:
        """The normal path: recorded, then sent."""
        with self.publisher() as publisher:
            publisher.publish_many(messages)

    def send_only(self, *messages: ArticleMessage) -> None:
        """On Kafka without an outbox row (another publisher's send, or a re-send)."""
        with self.publisher(outbox=False) as publisher:
            publisher.publish_many(messages)

    def index(self) -> None:
        """Apply everything on the topic so far (a re-read is an idempotent redelivery)."""
        self.worker.process(topic_records(self.bootstrap, self.names.topic))

    def reconcile(self, *, grace_s: float = 60, max_attempts: int = 3) -> Reconciled:
        return reconcile(
            self.outbox,
            lambda post_ids: indexed_versions(self.milvus, self.names.alias, post_ids),
            lambda: self.publisher(outbox=False),
            grace_s=grace_s,
            max_attempts=max_attempts,
        )

    def pending(self) -> dict[str, int]:
        return {row.post_id: row.updated_epoch for row in self.outbox.unconfirmed()}


def topic_records(bootstrap: str, topic: str, timeout_s: float = 30) -> list:
    """Every record of ``topic``, read from the start up to each partition's high watermark."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records: list = []
        deadline = time.monotonic() + timeout_s
        while True:
            for batch in consumer.poll(timeout_ms=100).values():
                records.extend(batch)
            ends = {tp: consumer.highwater(tp) for tp in partitions}
            if all(end is not None and consumer.position(tp) >= end for tp, end in ends.items()):
                return sorted(records, key=lambda r: (r.partition, r.offset))
            assert time.monotonic() < deadline, f"{topic}: read {len(records)}, ends {ends}"
    finally:
        consumer.close()


def counter(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'chatda.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def stack(
    kafka_bootstrap: str,
    milvus_uri: str,
    milvus: MilvusClient,
    encoder: Encoder,
    engine: Engine,
    tmp_path: Path,
) -> Stack:
    names = Names.fresh("outbox")
    worker = IngestWorker(worker_config(kafka_bootstrap, milvus_uri, tmp_path, names), encoder)
    worker.sink.resolve(encoder.ref)
    return Stack(kafka_bootstrap, milvus, engine, worker, names)


@pytest.fixture(scope="module")
def milvus(milvus_uri: str) -> Iterator[MilvusClient]:
    client = MilvusClient(uri=milvus_uri)
    yield client
    client.close()


def newer(message: ArticleMessage, seconds: int, **changes: object) -> ArticleMessage:
    return message.model_copy(
        update={"updated_at": message.updated_at + timedelta(seconds=seconds), **changes}
    )


def delete_of(message: ArticleMessage, seconds: int) -> ArticleMessage:
    return ArticleMessage(
        post_id=message.post_id,
        op="delete",
        updated_at=message.updated_at + timedelta(seconds=seconds),
    )


def test_indexed_rows_are_confirmed_and_unindexed_ones_wait(stack: Stack) -> None:
    a, b, lost = (sample_article(i, "ok") for i in range(3))
    stack.accept(a, b)
    stack.outbox.record([lost])  # accepted, then the broker lost it
    assert set(stack.pending()) == {a.post_id, b.post_id, lost.post_id}
    stack.index()
    assert stack.reconcile() == Reconciled(confirmed=2, resent=0, failed=0, waiting=1)
    assert stack.pending() == {lost.post_id: lost.updated_epoch}


def test_a_lost_row_is_resent_once_and_then_indexed_exactly_once(
    stack: Stack, encoder: Encoder
) -> None:
    lost = sample_article(7, "lost", sentences=3)
    stack.outbox.record([lost], now=LONG_AGO)
    resent_before = counter("chatda_outbox_resent_total")
    assert stack.reconcile(grace_s=60).resent == 1
    assert stack.reconcile(grace_s=60).resent == 0  # attempt 1: the grace is now 120 s
    assert counter("chatda_outbox_resent_total") == resent_before + 1
    (record,) = topic_records(stack.bootstrap, stack.names.topic)
    assert record.key == lost.key and record.value == lost.to_wire()

    stack.send_only(lost)  # the original turns up after all: the same version twice
    stack.index()
    stack.index()  # and a redelivery of both
    assert chunk_counts(stack.milvus, stack.names.alias) == {
        lost.post_id: expected_chunks(encoder, lost)
    }
    assert stack.reconcile().confirmed == 1
    assert stack.pending() == {}


def test_an_older_row_is_confirmed_by_a_newer_version_in_the_index(stack: Stack) -> None:
    first = sample_article(1, "ver")
    stack.send_only(newer(first, 60, title="새 제목 1"))
    stack.index()
    stack.outbox.record([first], now=LONG_AGO)
    assert stack.reconcile().confirmed == 1

    ahead = newer(first, 120, title="더 새 제목")
    stack.outbox.record([ahead], now=LONG_AGO)  # newer than the index: not delivered
    assert stack.reconcile(grace_s=60) == Reconciled(confirmed=0, resent=1, failed=0, waiting=0)


def test_after_the_last_attempt_a_row_is_failed_and_no_longer_sent(stack: Stack) -> None:
    stuck = sample_article(3, "cap")
    stack.outbox.record([stuck], now=LONG_AGO)
    failed_before = counter("chatda_outbox_failed_total")
    assert stack.reconcile(grace_s=0, max_attempts=1).resent == 1
    assert stack.reconcile(grace_s=0, max_attempts=1).failed == 1
    assert counter("chatda_outbox_failed_total") == failed_before + 1
    (row,) = stack.outbox.unconfirmed()
    assert row.status == FAILED and row.attempts == 1
    assert stack.reconcile(grace_s=0, max_attempts=5).resent == 0  # failed stays failed
    assert len(topic_records(stack.bootstrap, stack.names.topic)) == 1

    stack.index()  # the one re-send does land: a failed row is still confirmed, and removed
    assert stack.reconcile().confirmed == 1
    assert stack.pending() == {}


def test_delete_rows_are_confirmed_when_nothing_older_is_left(stack: Stack) -> None:
    kept, never, superseded = (sample_article(i, "del") for i in range(3))
    stack.accept(kept, superseded)
    stack.index()
    stack.reconcile()
    assert stack.pending() == {}

    removal = delete_of(kept, 60)
    stack.outbox.record([removal, delete_of(never, 60)], now=LONG_AGO)
    stack.outbox.record([delete_of(superseded, 60)], now=LONG_AGO)
    stack.send_only(newer(superseded, 120))  # a newer upsert won over the delete
    stack.index()
    result = stack.reconcile(grace_s=86400)
    assert (result.confirmed, result.waiting) == (2, 1)
    assert stack.pending() == {kept.post_id: removal.updated_epoch}  # its chunks are still there

    stack.send_only(removal)
    stack.index()
    assert stack.reconcile().confirmed == 1
    assert kept.post_id not in chunk_counts(stack.milvus, stack.names.alias)


def test_newest_version_wins_and_a_failed_send_restores_the_accepted_one(
    stack: Stack, tmp_path: Path
) -> None:
    accepted = sample_article(5, "undo")
    stack.accept(accepted)
    stack.outbox.record([newer(accepted, -60)])  # an older version never displaces it
    assert stack.pending() == {accepted.post_id: accepted.updated_epoch}

    # Larger than the producer's request limit: kafka-python refuses the send itself.
    huge = {"body": "가" * 400_000}
    too_big = ArticleMessage.model_validate(
        {**newer(accepted, 60).model_dump(), **huge}, context={"max_text_chars": 10**6}
    )
    fresh = ArticleMessage.model_validate(
        {**sample_article(6, "undo").model_dump(), **huge}, context={"max_text_chars": 10**6}
    )
    with stack.publisher() as publisher, pytest.raises(BrokerUnavailable):
        publisher.publish_many([too_big, fresh])
    assert stack.pending() == {accepted.post_id: accepted.updated_epoch}
    (row,) = stack.outbox.unconfirmed()
    assert row.payload == accepted.to_wire().decode()


def test_two_reconcilers_at_once_send_each_row_once(
    stack: Stack, tmp_path: Path, milvus: MilvusClient
) -> None:
    lost = [sample_article(i, "race") for i in range(12)]
    stack.outbox.record(lost, now=LONG_AGO)
    other = Stack(
        stack.bootstrap,
        milvus,
        make_engine(f"sqlite:///{tmp_path / 'chatda.db'}"),  # a second process's connection
        stack.worker,
        stack.names,
    )
    start = threading.Barrier(2)
    results: list[Reconciled] = []

    def run(side: Stack) -> None:
        start.wait()
        results.append(side.reconcile(grace_s=60))

    threads = [threading.Thread(target=run, args=(side,)) for side in (stack, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sum(r.resent for r in results) == len(lost)
    on_kafka = topic_records(stack.bootstrap, stack.names.topic)
    assert sorted(r.key for r in on_kafka) == sorted(m.key for m in lost)
    assert {row.attempts for row in stack.outbox.unconfirmed()} == {1}
    other.outbox.close()


def test_the_scheduled_job_keeps_history_only_for_runs_that_resent(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kafka_bootstrap: str, milvus_uri: str
) -> None:
    names = Names.fresh("job")
    with job_store(
        monkeypatch,
        tmp_path,
        kafka_bootstrap=kafka_bootstrap,
        milvus_uri=milvus_uri,
        articles_topic=names.topic,
        articles_alias=names.alias,
        outbox_grace_s="60",
    ) as engine:
        outbox = Outbox(engine)
        outbox.record([sample_article(1, "job")])  # sent just now: nothing to do yet
        assert run_named_job(JOB)["detail"] == ""
        outbox.record([sample_article(2, "job")], now=LONG_AGO)
        result = run_named_job(JOB)
        assert result["status"] == "ok" and "re-sent 1" in result["detail"]
        with engine.connect() as conn:
            runs = conn.execute(select(job_runs.c.detail).where(job_runs.c.job == JOB)).all()
        assert [r.detail for r in runs] == [result["detail"]]
        assert run_named_job(JOB, trigger="manual")["status"] == "ok"  # by hand: always kept
        with engine.connect() as conn:
            assert len(conn.execute(select(job_runs).where(job_runs.c.job == JOB)).all()) == 2


def test_the_api_records_what_it_accepts_and_answers_503_when_the_store_fails(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    names = Names.fresh("api")
    settings = Settings(
        data_dir=tmp_path,
        kafka_bootstrap=kafka_bootstrap,
        articles_topic=names.topic,
        publisher_token=SecretStr("publisher-token"),
        max_text_chars=2000,
    )
    app = articles_app(settings)
    auth = {"Authorization": "Bearer publisher-token"}
    article, other = sample_article(1, "api"), sample_article(2, "api")
    engine = make_engine(settings.sql_url)
    with TestClient(app) as client:
        posted = client.post("/v1/articles", json=article.model_dump(mode="json"), headers=auth)
        assert posted.status_code == 202
        assert {r.post_id: r.op for r in Outbox(engine).unconfirmed()} == {
            article.post_id: "upsert"
        }
        deleted = client.delete(f"/v1/articles/{article.post_id}", headers=auth)
        assert deleted.status_code == 202
        assert {r.post_id: r.op for r in Outbox(engine).unconfirmed()} == {
            article.post_id: "delete"
        }

        with engine.begin() as conn:  # the store breaks: nothing may be accepted unrecorded
            conn.exec_driver_sql("DROP TABLE article_outbox")
        refused = client.post("/v1/articles", json=other.model_dump(mode="json"), headers=auth)
    engine.dispose()
    assert refused.status_code == 503
    assert "outbox" in refused.json()["error"]["message"]
    sent = topic_records(kafka_bootstrap, names.topic)
    assert [r.key for r in sent] == [article.key, article.key]  # the refused one never left
