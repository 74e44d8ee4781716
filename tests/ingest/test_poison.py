"""No single record stops the worker: Tansu → worker (on a thread) → milvus-lite, real model.

Each poison record is followed, on its own partition, by a good article: the good one is only
indexed (and the group's lag only reaches zero) if the worker got past the poison record. The
dead-letter topic is private to this module, so every envelope on it is counted.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from collections.abc import Iterator

import pytest
from kafka import KafkaProducer
from kafka.record.default_records import DefaultRecordBatchBuilder
from pymilvus import MilvusClient

from chatda.articles.message import ArticleMessage
from chatda.articles.progress import wait_until_indexed
from chatda.broker.kafka import end_offsets, make_producer
from chatda.models.encoder import Encoder
from ingest.worker import IngestWorker
from tests.ingest.helpers import (
    Names,
    WorkerThread,
    chunk_counts,
    read_topic,
    sample_article,
    worker_config,
)

# What a publisher may send; the worker's own producer keeps the default limit.
BIG_PRODUCER_BYTES = 8 * 1024 * 1024


@pytest.fixture(scope="module")
def names() -> Names:
    return Names.fresh("poison")


@pytest.fixture(scope="module")
def worker(
    kafka_bootstrap: str, milvus_uri: str, encoder: Encoder, names: Names, tmp_path_factory
) -> Iterator[WorkerThread]:
    config = worker_config(kafka_bootstrap, milvus_uri, tmp_path_factory.mktemp("p"), names)
    with WorkerThread(IngestWorker(config, encoder)) as running:
        running.wait_for_partitions(config.partitions)
        yield running


@pytest.fixture(scope="module")
def producer(kafka_bootstrap: str) -> Iterator[KafkaProducer]:
    p = make_producer(kafka_bootstrap, max_request_size=BIG_PRODUCER_BYTES)
    yield p
    p.close()


@pytest.fixture(scope="module")
def sent() -> Counter[str]:
    """Poison records sent by this module, by key: the dead-letter topic must match it."""
    return Counter()


def send(
    producer: KafkaProducer, names: Names, key: bytes, value: bytes, partition: int = 0
) -> int:
    """Put one record on ``partition``; its offset."""
    return producer.send(names.topic, key=key, value=value, partition=partition).get(30).offset


def send_good(producer: KafkaProducer, names: Names, message: ArticleMessage, partition: int):
    send(producer, names, message.key, message.to_wire(), partition)


def settle(kafka_bootstrap: str, names: Names, milvus: MilvusClient, worker: WorkerThread):
    wait_until_indexed(
        kafka_bootstrap, milvus, names.group_id, names.alias, names.topic, timeout_s=120
    )
    assert worker.error is None, worker.error


def envelopes(kafka_bootstrap: str, names: Names, count: int) -> dict[str, dict]:
    """Every envelope on the dead-letter topic, by original key; exactly ``count`` of them."""
    assert sum(end_offsets(kafka_bootstrap, names.dead_letter_topic).values()) == count
    records = read_topic(kafka_bootstrap, names.dead_letter_topic, count)
    docs = [json.loads(r.value) for r in records]
    keys = [base64.b64decode(d["key_b64"]).decode() for d in docs]
    assert len(set(keys)) == count, Counter(keys)
    return dict(zip(keys, docs, strict=True))


def test_deep_nesting_is_dead_lettered_and_the_worker_goes_on(
    worker: WorkerThread,
    producer: KafkaProducer,
    kafka_bootstrap: str,
    names: Names,
    milvus: MilvusClient,
    sent: Counter[str],
) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    offset = send(producer, names, b"pz-deep", deep, partition=1)
    sent["pz-deep"] += 1
    after = sample_article(1, "pz")
    send_good(producer, names, after, partition=1)
    settle(kafka_bootstrap, names, milvus, worker)

    assert chunk_counts(milvus, names.alias)[after.post_id] >= 1
    envelope = envelopes(kafka_bootstrap, names, sum(sent.values()))["pz-deep"]
    assert envelope["error"]["reason"] == "json"
    assert "depth" in envelope["error"]["message"]
    assert envelope["source"]["partition"] == 1 and envelope["source"]["offset"] == offset
    assert base64.b64decode(envelope["value_b64"]) == deep


def test_an_unexpected_error_decoding_one_record_is_dead_lettered(
    worker: WorkerThread,
    producer: KafkaProducer,
    kafka_bootstrap: str,
    names: Names,
    milvus: MilvusClient,
    sent: Counter[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whatever a defect makes decoding raise for one record stays with that record."""
    decode = worker.worker._decode
    victim = sample_article(2, "pz")

    def broken_decode(record):  # a stand-in for a decoder defect no real record triggers yet
        if record.key == victim.key:
            raise RecursionError("maximum recursion depth exceeded")
        return decode(record)

    monkeypatch.setattr(worker.worker, "_decode", broken_decode)
    send_good(producer, names, victim, partition=2)
    sent[victim.post_id] += 1
    after = sample_article(3, "pz")
    send_good(producer, names, after, partition=2)
    settle(kafka_bootstrap, names, milvus, worker)

    counts = chunk_counts(milvus, names.alias)
    assert counts[after.post_id] >= 1 and victim.post_id not in counts
    envelope = envelopes(kafka_bootstrap, names, sum(sent.values()))[victim.post_id]
    assert envelope["error"]["reason"] == "decode"
    assert "RecursionError" in envelope["error"]["message"]


def test_a_5_mb_record_is_dead_lettered_once_and_indexing_goes_on(
    worker: WorkerThread,
    producer: KafkaProducer,
    kafka_bootstrap: str,
    names: Names,
    milvus: MilvusClient,
    sent: Counter[str],
) -> None:
    """The issue's case: small poison records, then a 5 MB one, in one partition's batch.

    Before, the 5 MB envelope exceeded the producer's limit, the batch was retried forever,
    and every retry wrote the small envelopes again."""
    big = sample_article(4, "pz").model_copy(
        update={"post_id": "pz-big", "body": "가" * (5 * 1024 * 1024 // 3)}
    )
    small = {f"pz-small-{i}": f'{{"post_id": "pz-small-{i}", '.encode() for i in range(5)}
    for key, value in small.items():
        send(producer, names, key.encode(), value, partition=3)
        sent[key] += 1
    big_value = big.to_wire()
    assert len(big_value) > 5 * 1024 * 1024
    send(producer, names, big.key, big_value, partition=3)
    sent[big.post_id] += 1
    after = [sample_article(i, "pz") for i in (5, 6)]
    for message in after:
        send_good(producer, names, message, partition=3)
    settle(kafka_bootstrap, names, milvus, worker)

    counts = chunk_counts(milvus, names.alias)
    assert all(counts[m.post_id] >= 1 for m in after)
    by_key = envelopes(kafka_bootstrap, names, sum(sent.values()))
    assert {by_key[k]["error"]["reason"] for k in small} == {"json"}
    envelope = by_key[big.post_id]
    assert envelope["error"]["reason"] == "size"
    assert envelope["value_truncated"] is True
    assert envelope["value_size"] == len(big_value)
    assert envelope["value_sha256"] == hashlib.sha256(big_value).hexdigest()
    assert big_value.startswith(base64.b64decode(envelope["value_b64"]))
    (record,) = [
        r
        for r in read_topic(kafka_bootstrap, names.dead_letter_topic, sum(sent.values()))
        if r.key == big.key
    ]
    limit = worker.worker.dead_letters.max_bytes  # type: ignore[union-attr]
    assert DefaultRecordBatchBuilder.estimate_size_in_bytes(record.key, record.value, []) <= limit
