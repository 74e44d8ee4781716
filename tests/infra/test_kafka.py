"""Kafka factories and offset arithmetic against the session Tansu broker."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable

import kafka.record.util
from kafka import KafkaConsumer

from chatda.broker.kafka import (
    broker_supports_idempotence,
    committed_lag,
    end_offsets,
    ensure_topics,
    make_consumer,
    make_producer,
)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def produce(bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes]]) -> None:
    producer = make_producer(bootstrap)
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value)
        producer.flush(timeout=10)
    finally:
        producer.close()


def drain(consumers: list[KafkaConsumer], expected: int, timeout_s: float = 30) -> list[list]:
    """Poll each consumer on its own thread, as separate services would, until ``expected``
    distinct records arrived and every consumer holds an assignment.

    Concurrent polling lets all members join the group in one round instead of triggering a
    second rebalance each; distinct (partition, offset) pairs absorb re-delivery after one.
    """
    got: list[list] = [[] for _ in consumers]
    assigned = [False] * len(consumers)
    stop = threading.Event()

    def run(i: int, consumer: KafkaConsumer) -> None:
        while not stop.is_set():
            for records in consumer.poll(timeout_ms=100).values():
                got[i].extend(records)
            assigned[i] = bool(consumer.assignment())

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(consumers)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout_s
    distinct: set[tuple[int, int]] = set()
    try:
        while time.monotonic() < deadline:
            distinct = {(r.partition, r.offset) for records in got for r in list(records)}
            if len(distinct) >= expected and all(assigned):
                return got
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join()
    raise AssertionError(f"got {len(distinct)} of {expected} records in {timeout_s}s")


def test_crc32c_c_extension_is_used() -> None:
    assert kafka.record.util.crc32c_c is not None
    assert kafka.record.util._crc32c is kafka.record.util.crc32c_c


def test_tansu_supports_the_idempotent_producer(kafka_bootstrap: str) -> None:
    assert broker_supports_idempotence(kafka_bootstrap)
    producer = make_producer(kafka_bootstrap)
    try:
        assert producer.config["enable_idempotence"] is True
        assert producer.config["acks"] == -1
    finally:
        producer.close()


def test_ensure_topics_is_idempotent(kafka_bootstrap: str) -> None:
    a, b = unique("ensure-a"), unique("ensure-b")
    assert sorted(ensure_topics(kafka_bootstrap, {a: 2, b: 1})) == sorted([a, b])
    assert ensure_topics(kafka_bootstrap, {a: 2, b: 1}) == []
    assert sorted(end_offsets(kafka_bootstrap, a)) == [0, 1]


def test_round_trip_with_keys(kafka_bootstrap: str) -> None:
    topic = unique("roundtrip")
    ensure_topics(kafka_bootstrap, {topic: 3})
    sent = [(f"post-{i % 4}".encode(), f"본문 {i}".encode()) for i in range(12)]
    produce(kafka_bootstrap, topic, sent)

    consumer = make_consumer(kafka_bootstrap, unique("g"), [topic])
    try:
        (records,) = drain([consumer], len(sent))
    finally:
        consumer.close()
    assert sorted((r.key, r.value) for r in records) == sorted(sent)
    partitions_by_key: dict[bytes, set[int]] = {}
    for r in records:
        partitions_by_key.setdefault(r.key, set()).add(r.partition)
    assert all(len(p) == 1 for p in partitions_by_key.values())  # one key, one partition
    for key in partitions_by_key:  # per-key order is production order
        values = [r.value for r in sorted(records, key=lambda r: r.offset) if r.key == key]
        assert values == [v for k, v in sent if k == key]


def test_two_consumers_split_four_partitions(kafka_bootstrap: str) -> None:
    topic, group = unique("split"), unique("g")
    ensure_topics(kafka_bootstrap, {topic: 4})
    produce(kafka_bootstrap, topic, [(f"k{i}".encode(), b"v") for i in range(40)])

    consumers = [make_consumer(kafka_bootstrap, group, [topic]) for _ in range(2)]
    try:
        got = drain(consumers, 40)
        assignments = [{tp.partition for tp in c.assignment()} for c in consumers]
    finally:
        for c in consumers:
            c.close()
    assert [len(a) for a in assignments] == [2, 2]
    assert assignments[0] | assignments[1] == {0, 1, 2, 3}
    assert len({(r.partition, r.offset) for records in got for r in records}) == 40


def test_end_offsets_and_committed_lag(kafka_bootstrap: str) -> None:
    topic, group = unique("lag"), unique("g")
    ensure_topics(kafka_bootstrap, {topic: 2})
    # Batched sends: several records per batch is where Tansu's ListOffsets undercounts.
    produce(kafka_bootstrap, topic, [(f"k{i}".encode(), b"v") for i in range(10)])
    assert sum(end_offsets(kafka_bootstrap, topic).values()) == 10
    assert committed_lag(kafka_bootstrap, group, topic) == 10  # never committed: from earliest

    consumer = make_consumer(kafka_bootstrap, group, [topic])
    try:
        drain([consumer], 10)
        consumer.commit()
    finally:
        consumer.close()
    assert committed_lag(kafka_bootstrap, group, topic) == 0

    produce(kafka_bootstrap, topic, [(b"late", b"v")] * 3)
    assert sum(end_offsets(kafka_bootstrap, topic).values()) == 13
    assert committed_lag(kafka_bootstrap, group, topic) == 3


def test_acks_override_turns_idempotence_off(kafka_bootstrap: str) -> None:
    producer = make_producer(kafka_bootstrap, acks=1)
    try:
        assert producer.config["enable_idempotence"] is False
    finally:
        producer.close()
