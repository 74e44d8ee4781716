"""Dead-letter envelopes (``chatda.broker.dead_letter``): always within the producer's limit,
and delivered once per record.

The size bound is checked with kafka-python's own estimate, the one ``KafkaProducer.send``
refuses on; the delivery tests use the real Tansu broker.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterator

import pytest
from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.record.default_records import DefaultRecordBatchBuilder

from chatda.broker.dead_letter import MAX_MESSAGE_CHARS, DeadLetters, PoisonRecord, fitted
from chatda.broker.kafka import end_offsets, ensure_topics, make_producer
from tests.ingest.helpers import read_topic

LIMIT = KafkaProducer.DEFAULT_CONFIG["max_request_size"]
SIZE_ERROR = PoisonRecord("size", "body: must be at most 2000 characters")


def source(key: bytes | None, value: bytes | None, offset: int = 7) -> ConsumerRecord:
    return ConsumerRecord(
        "articles", 2, None, offset, 1_700_000_000_000, 0, key, value, [], None, 0, 0, -1
    )


def framed(key: bytes | None, value: bytes) -> int:
    return DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, [])


def check_bytes(doc: dict, name: str, data: bytes) -> bytes:
    """The carried prefix, after checking it and the size and digest of the whole."""
    prefix = base64.b64decode(doc[f"{name}_b64"])
    assert data.startswith(prefix)
    assert doc[f"{name}_size"] == len(data)
    assert doc[f"{name}_sha256"] == hashlib.sha256(data).hexdigest()
    assert doc[f"{name}_truncated"] is (len(prefix) < len(data))
    return prefix


def test_a_small_record_travels_whole() -> None:
    value = b'{"post_id": "p-1", "title": "\xea\xb0\x80"}'
    key, data = fitted(source(b"p-1", value), SIZE_ERROR, LIMIT)
    doc = json.loads(data)
    assert key == b"p-1"
    assert check_bytes(doc, "value", value) == value
    assert check_bytes(doc, "key", b"p-1") == b"p-1"
    assert doc["error"] == {"reason": "size", "message": SIZE_ERROR.detail}
    assert doc["source"] == {
        "topic": "articles",
        "partition": 2,
        "offset": 7,
        "timestamp_ms": 1_700_000_000_000,
    }


def test_a_5_mb_record_is_cut_to_fit_the_producer_limit() -> None:
    value = bytes(range(256)) * (5 * 1024 * 1024 // 256)
    key, data = fitted(source(b"pz-big", value), SIZE_ERROR, LIMIT)
    assert framed(key, data) <= LIMIT
    doc = json.loads(data)
    prefix = check_bytes(doc, "value", value)
    assert doc["value_truncated"] is True
    assert len(prefix) > 0.7 * LIMIT  # the room goes to the record, not to padding
    assert key == b"pz-big" and doc["key_truncated"] is False


@pytest.mark.parametrize("size", range(LIMIT * 3 // 4 - 1200, LIMIT * 3 // 4 + 200, 97))
def test_every_size_near_the_limit_fits(size: int) -> None:
    """Around the point where base64 outgrows the limit, whole or cut, never over."""
    value = b"v" * size
    key, data = fitted(source(b"k", value), SIZE_ERROR, LIMIT)
    assert framed(key, data) <= LIMIT
    prefix = check_bytes(json.loads(data), "value", value)
    if prefix != value:  # cut no deeper than needed: a base64 group, a flag, a varint byte
        assert framed(key, data) > LIMIT - 16


def test_a_huge_key_is_cut_once_the_value_is_gone() -> None:
    big_key, value = b"k" * (2 * LIMIT), b"x" * LIMIT
    key, data = fitted(source(big_key, value), SIZE_ERROR, LIMIT)
    assert framed(key, data) <= LIMIT
    doc = json.loads(data)
    assert check_bytes(doc, "value", value) == b""
    assert key == check_bytes(doc, "key", big_key)
    assert doc["key_truncated"] is True and len(key or b"") > LIMIT // 4


def test_a_long_reason_is_clipped() -> None:
    error = PoisonRecord("schema", "; ".join(f"extra{i}: Extra inputs" for i in range(50_000)))
    _, data = fitted(source(b"k", b"{}"), error, LIMIT)
    message = json.loads(data)["error"]["message"]
    assert len(message) < MAX_MESSAGE_CHARS + 40
    assert message.endswith(f"({len(error.detail)} characters)")


def test_a_record_without_key_or_value() -> None:
    key, data = fitted(source(None, None), PoisonRecord("schema", "no value"), LIMIT)
    doc = json.loads(data)
    assert key is None and doc["key_b64"] is None and doc["value_b64"] is None


@pytest.fixture()
def dead_letter_topic(kafka_bootstrap: str) -> str:
    topic = f"articles-dlq-unit-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_bootstrap, {topic: 1})
    return topic


@pytest.fixture()
def producer(kafka_bootstrap: str) -> Iterator[KafkaProducer]:
    p = make_producer(kafka_bootstrap)
    yield p
    p.close()


def test_a_5_mb_record_reaches_the_broker_once(
    kafka_bootstrap: str, dead_letter_topic: str, producer: KafkaProducer
) -> None:
    value = b"a" * (5 * 1024 * 1024)
    letters = DeadLetters(producer, dead_letter_topic)
    assert letters.max_bytes == producer.config["max_request_size"]
    failures = [(source(b"pz-big", value, 1), SIZE_ERROR), (source(b"p", b"[", 2), SIZE_ERROR)]
    letters.send(failures)
    letters.send(failures)  # a retried batch: both are acknowledged already
    assert sum(end_offsets(kafka_bootstrap, dead_letter_topic).values()) == 2
    records = read_topic(kafka_bootstrap, dead_letter_topic, 2)
    big = json.loads(records[0].value)
    assert big["value_truncated"] is True and big["source"]["offset"] == 1
    check_bytes(big, "value", value)
    assert framed(records[0].key, records[0].value) <= letters.max_bytes


def test_an_envelope_refused_for_good_is_sent_without_the_bytes(
    kafka_bootstrap: str, dead_letter_topic: str, producer: KafkaProducer
) -> None:
    """A non-retriable refusal (here: the producer's limit lowered below the one the envelope
    was cut for, as a broker with a smaller message.max.bytes would refuse) must not block
    the batch: the envelope goes again with the reason and coordinates only."""
    letters = DeadLetters(producer, dead_letter_topic)
    producer.config["max_request_size"] = 4096
    value = b"b" * 100_000
    letters.send([(source(b"pz-refused", value, 3), SIZE_ERROR)])
    (record,) = read_topic(kafka_bootstrap, dead_letter_topic, 1)
    doc = json.loads(record.value)
    assert record.key == b"pz-refused"
    assert "MessageSizeTooLarge" in doc["error"]["refused"]
    assert check_bytes(doc, "value", value) == b""
    assert doc["source"]["offset"] == 3
