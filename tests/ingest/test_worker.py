"""The ingest worker end to end: Tansu → worker (on a thread) → milvus-lite, with the real model.

One worker serves the whole module on its own topic, group and alias. 200 articles are
published once; the other tests publish changes on top and wait for the group's lag to reach
zero, which the worker only allows after Milvus acknowledged the write.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from pymilvus import MilvusClient

from chatda.articles.message import ArticleMessage
from chatda.articles.progress import wait_until_indexed
from chatda.articles.publisher import Publisher
from chatda.broker.kafka import make_producer
from chatda.models.encoder import Encoder
from chatda.search.tier import announcements
from chatda.storage.milvus_client import ScoreConvention
from chatda.text.morphemes import default_morphemes
from ingest.pipeline import PreparedArticle
from ingest.worker import IngestWorker
from tests.ingest.helpers import (
    BASE_TIME,
    Names,
    WorkerThread,
    chunk_counts,
    code,
    expected_chunks,
    read_topic,
    row_count,
    sample_article,
    worker_config,
)

COUNT = 200
PREFIX = "w"


@pytest.fixture(scope="module")
def names() -> Names:
    return Names.fresh("worker")


@pytest.fixture(scope="module")
def worker(
    kafka_bootstrap: str, milvus_uri: str, encoder: Encoder, names: Names, tmp_path_factory
) -> Iterator[WorkerThread]:
    config = worker_config(kafka_bootstrap, milvus_uri, tmp_path_factory.mktemp("w"), names)
    with WorkerThread(IngestWorker(config, encoder)) as running:
        yield running


@pytest.fixture(scope="module")
def publisher(kafka_bootstrap: str, names: Names) -> Iterator[Publisher]:
    with Publisher(kafka_bootstrap, names.topic, 4) as p:
        yield p


@pytest.fixture(scope="module")
def published(
    worker: WorkerThread,
    publisher: Publisher,
    kafka_bootstrap: str,
    names: Names,
    milvus: MilvusClient,
) -> list[ArticleMessage]:
    """The 200 articles, published and indexed."""
    messages = [sample_article(i, PREFIX) for i in range(COUNT)]
    publisher.publish_many(messages)
    settle(kafka_bootstrap, names, milvus)
    return messages


def settle(kafka_bootstrap: str, names: Names, milvus: MilvusClient) -> None:
    wait_until_indexed(
        kafka_bootstrap, milvus, names.group_id, names.alias, names.topic, timeout_s=300
    )


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def rows_of(milvus: MilvusClient, names: Names, post_id: str) -> list[dict]:
    return sorted(
        milvus.query(
            names.alias,
            filter=f'post_id == "{post_id}"',
            output_fields=["chunk_id", "chunk_no", "text", "title", "updated_at", "tags"],
            consistency_level="Strong",
        ),
        key=lambda row: row["chunk_no"],
    )


def test_200_articles_are_searchable_with_the_right_chunks(
    published: list[ArticleMessage], milvus: MilvusClient, names: Names, encoder: Encoder
) -> None:
    expected = {m.post_id: expected_chunks(encoder, m) for m in published}
    assert max(expected.values()) > 1  # the long articles really span several chunks
    assert chunk_counts(milvus, names.alias) == expected
    assert row_count(milvus, names.alias) == sum(expected.values())

    morphemes = default_morphemes()
    convention = ScoreConvention.from_client(milvus)
    hits = milvus.search(
        names.alias,
        data=[morphemes.joined(f"코드 {code(i)}") for i in range(COUNT)],
        anns_field="sparse",
        limit=1,
        output_fields=["post_id"],
        consistency_level="Strong",
    )
    assert [h[0]["entity"]["post_id"] for h in hits] == [m.post_id for m in published]
    assert all(convention.bm25_score(h[0]["distance"]) > 0 for h in hits)

    firsts = milvus.query(
        names.alias,
        filter="chunk_no == 0",
        output_fields=["chunk_id", "dense", "model_version"],
        limit=16384,
        consistency_level="Strong",
    )
    assert {row["model_version"] for row in firsts} == {encoder.ref}
    hits = milvus.search(
        names.alias,
        data=[list(row["dense"]) for row in firsts],
        anns_field="dense",
        limit=1,
        output_fields=["chunk_id"],
    )
    assert [h[0]["entity"]["chunk_id"] for h in hits] == [row["chunk_id"] for row in firsts]

    # Semantic: a question phrased like a title finds that article (or a twin of the same
    # demo article, which shares its text) among the first hits.
    sample = list(range(0, 75, 8))
    queries = [(published[i].title or "").rsplit(" ", 1)[0] for i in sample]
    hits = milvus.search(
        names.alias,
        data=encoder.encode(queries, "query").tolist(),
        anns_field="dense",
        limit=5,
        output_fields=["post_id"],
    )
    for i, found in zip(sample, hits, strict=True):
        twins = {f"{PREFIX}-{j:04d}" for j in range(i % 75, COUNT, 75)}
        assert twins & {h["entity"]["post_id"] for h in found}, published[i].title


def test_row_carries_the_facets(
    published: list[ArticleMessage], milvus: MilvusClient, names: Names
) -> None:
    message = published[7]
    (row,) = milvus.query(
        names.alias,
        filter=f'chunk_id == "{message.post_id}#0"',
        output_fields=["*"],
        consistency_level="Strong",
    )
    assert row["title"] == message.title
    assert (row["series"], row["category"], list(row["tags"])) == (
        message.series,
        message.category,
        message.tags,
    )
    assert row["published_at"] == message.published_epoch
    assert row["updated_at"] == message.updated_epoch
    assert code(7) in row["bm25_text"] and code(7) in row["text"]


def test_shorter_update_removes_surplus_chunks(
    published: list[ArticleMessage],
    publisher: Publisher,
    milvus: MilvusClient,
    names: Names,
    kafka_bootstrap: str,
) -> None:
    old = published[0]
    assert len(rows_of(milvus, names, old.post_id)) > 1
    new = old.model_copy(
        update={"body": "짧아진 본문입니다.", "updated_at": old.updated_at + timedelta(minutes=1)}
    )
    publisher.publish(new)
    settle(kafka_bootstrap, names, milvus)
    (row,) = rows_of(milvus, names, old.post_id)
    assert row["chunk_id"] == f"{old.post_id}#0"
    assert row["text"] == "짧아진 본문입니다."
    assert row["updated_at"] == new.updated_epoch


def test_delete_removes_every_chunk(
    published: list[ArticleMessage],
    publisher: Publisher,
    milvus: MilvusClient,
    names: Names,
    kafka_bootstrap: str,
) -> None:
    target = published[10]
    assert len(rows_of(milvus, names, target.post_id)) > 1
    publisher.delete(target.post_id, target.updated_at + timedelta(minutes=1))
    publisher.delete("w-never-indexed", BASE_TIME)
    settle(kafka_bootstrap, names, milvus)
    assert rows_of(milvus, names, target.post_id) == []


def test_every_written_article_is_announced_after_its_write(
    published: list[ArticleMessage],
    publisher: Publisher,
    milvus: MilvusClient,
    names: Names,
    kafka_bootstrap: str,
) -> None:
    """The API replicas' article tiers follow writes through these announcements."""
    target = published[20]
    publisher.delete(target.post_id, target.updated_at + timedelta(minutes=1))
    settle(kafka_bootstrap, names, milvus)
    consumer = announcements.follow_from_end(kafka_bootstrap, f"{names.topic}-indexed")
    try:
        consumer.seek_to_beginning()
        announced = []
        while batches := consumer.poll(timeout_ms=1000):
            for records in batches.values():
                announced += [p for r in records for p in announcements.decode(r.value)]
    finally:
        consumer.close()
    assert set(announced) >= {m.post_id for m in published} | {target.post_id}
    assert announced.count(target.post_id) >= 2  # its write, then its delete
    assert rows_of(milvus, names, target.post_id) == []


def test_stale_versions_never_overwrite_newer_content(
    published: list[ArticleMessage],
    publisher: Publisher,
    milvus: MilvusClient,
    names: Names,
    kafka_bootstrap: str,
) -> None:
    current = published[2]
    before = rows_of(milvus, names, current.post_id)
    stale_before = metric("chatda_ingest_stale_total")
    older = current.model_copy(
        update={"body": "낡은 내용", "updated_at": current.updated_at - timedelta(minutes=1)}
    )
    publisher.publish(older)
    publisher.delete(published[3].post_id, published[3].updated_at - timedelta(minutes=1))
    settle(kafka_bootstrap, names, milvus)
    assert rows_of(milvus, names, current.post_id) == before
    assert rows_of(milvus, names, published[3].post_id) != []
    assert metric("chatda_ingest_stale_total") == stale_before + 2


def test_newest_version_in_a_batch_wins(
    published: list[ArticleMessage],
    publisher: Publisher,
    milvus: MilvusClient,
    names: Names,
    kafka_bootstrap: str,
) -> None:
    base = published[4]
    versions = [
        base.model_copy(
            update={"body": f"버전 {n}", "updated_at": base.updated_at + timedelta(minutes=n)}
        )
        for n in (2, 3, 1)
    ]
    publisher.publish_many(versions)
    settle(kafka_bootstrap, names, milvus)
    (row,) = rows_of(milvus, names, base.post_id)
    assert row["text"] == "버전 3"


def test_poison_records_go_to_the_dead_letter_topic(
    published: list[ArticleMessage],
    worker: WorkerThread,
    milvus: MilvusClient,
    names: Names,
    kafka_bootstrap: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    good = [sample_article(i, "dlq") for i in range(4)]
    oversize = good[0].model_copy(update={"post_id": "dlq-big", "body": "가" * 2001})
    exploding = sample_article(9, "dlq")
    prepare = worker.worker.pipeline.prepare

    def flaky_prepare(message: ArticleMessage) -> PreparedArticle:
        if message.post_id == exploding.post_id:
            raise RuntimeError("kiwi exploded")
        return prepare(message)

    monkeypatch.setattr(worker.worker.pipeline, "prepare", flaky_prepare)
    poison = {
        "json": (b"dlq-json", b'{"post_id": "dlq-json", "title": '),
        "schema": (b"dlq-schema", json.dumps({"post_id": "dlq schema!", "op": "x"}).encode()),
        "size": (b"dlq-big", oversize.to_wire()),
        "encoding": (b"dlq-utf8", b'{"post_id": "dlq-utf8", "title": "\xed\xa0\x80\xff"}'),
        "pipeline": (exploding.key, exploding.to_wire()),
    }
    sends = [(m.key, m.to_wire()) for m in good[:2]]
    sends += list(poison.values()) + [(m.key, m.to_wire()) for m in good[2:]]
    before = {
        reason: metric("chatda_ingest_dead_letters_total", reason=reason) for reason in poison
    }
    producer = make_producer(kafka_bootstrap)
    try:
        sent = [producer.send(names.topic, key=k, value=v) for k, v in sends]
        placed = [future.get(timeout=30) for future in sent]
    finally:
        producer.close()
    settle(kafka_bootstrap, names, milvus)

    counts = chunk_counts(milvus, names.alias)
    assert all(counts[m.post_id] >= 1 for m in good)
    assert not {"dlq-json", "dlq-big", "dlq-utf8", exploding.post_id} & set(counts)

    envelopes = [
        json.loads(r.value) for r in read_topic(kafka_bootstrap, names.dead_letter_topic, 5)
    ]
    by_reason = {e["error"]["reason"]: e for e in envelopes}
    assert set(by_reason) == set(poison)
    placed_by_value = {v: meta for (k, v), meta in zip(sends, placed, strict=True)}
    for reason, (key, value) in poison.items():
        envelope = by_reason[reason]
        assert base64.b64decode(envelope["value_b64"]) == value
        assert base64.b64decode(envelope["key_b64"]) == key
        meta = placed_by_value[value]
        assert envelope["source"] == {
            "topic": names.topic,
            "partition": meta.partition,
            "offset": meta.offset,
            "timestamp_ms": envelope["source"]["timestamp_ms"],
        }
        assert envelope["error"]["message"]
        assert metric("chatda_ingest_dead_letters_total", reason=reason) == before[reason] + 1
    assert "post_id" in by_reason["schema"]["error"]["message"]
    assert "at most 2000 characters" in by_reason["size"]["error"]["message"]
    assert "kiwi exploded" in by_reason["pipeline"]["error"]["message"]


def test_metrics_count_records_chunks_lag_and_latency(
    published: list[ArticleMessage],
    publisher: Publisher,
    milvus: MilvusClient,
    names: Names,
    kafka_bootstrap: str,
    encoder: Encoder,
) -> None:
    """Deltas over articles of its own: the counters belong to the process, and every worker
    of the test run adds to them. More articles than one poll takes (``batch_size`` 64), so
    the worker is behind for a batch's time, which the lag gauge must show, then back at 0."""
    fresh = [sample_article(i, "metrics") for i in range(100)]
    counted = (
        ("chatda_ingest_records_total", {"outcome": "indexed"}),
        ("chatda_ingest_chunks_total", {}),
        ("chatda_ingest_publish_to_searchable_seconds_count", {}),
    )
    before = [metric(name, **labels) for name, labels in counted]
    lags: list[float | None] = []
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            lags.append(REGISTRY.get_sample_value("chatda_ingest_consumer_lag"))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        publisher.publish_many(fresh)
        settle(kafka_bootstrap, names, milvus)
        deadline = time.monotonic() + 30  # the gauge is set right after the last commit
        while REGISTRY.get_sample_value("chatda_ingest_consumer_lag") != 0:
            assert time.monotonic() < deadline, lags[-5:]
            time.sleep(0.05)
    finally:
        sampling.set()
        sampler.join()
    after = [metric(name, **labels) for name, labels in counted]
    chunks = sum(expected_chunks(encoder, m) for m in fresh)
    assert [a - b for a, b in zip(after, before, strict=True)] == [len(fresh), chunks, len(fresh)]
    assert max(lag or 0 for lag in lags) > 0
