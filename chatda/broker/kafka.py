"""Kafka client factories and offset arithmetic shared by every chatda service.

Delivery settings (acks, retries, idempotence, consumer group timings) live here once, so the
ingest API, the indexer and the event logger cannot drift apart. Works against Apache Kafka and
the local Tansu broker; where Tansu deviates, the workaround is generic and documented inline.

Record CRCs: kafka-python verifies and writes v2 record batches with CRC-32C and picks up the
C ``crc32c`` package automatically when it is importable (``kafka.record.util``); the pure-Python
fallback is much slower, so ``crc32c`` is a hard dependency of chatda.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import OffsetSpec
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import (
    CommitFailedError,
    KafkaError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
    for_code,
)
from kafka.protocol.api_key import ApiKey
from kafka.structs import OffsetAndMetadata

logger = logging.getLogger(__name__)

SESSION_TIMEOUT_MS = 6000
HEARTBEAT_INTERVAL_MS = 2000
DEFAULT_MAX_POLL_RECORDS = 100
_HIGHWATER_TIMEOUT_S = 10.0
COMMIT_TIMEOUT_MS = 10_000
"""How long a batch's commit waits for the broker before it is left to the next batch."""

PRODUCER_DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "retries": 10,
    "retry_backoff_ms": 200,
    "linger_ms": 5,
    "request_timeout_ms": 15000,
    "delivery_timeout_ms": 30000,
    "max_in_flight_requests_per_connection": 5,
}
# An ack can take as long as the producer's own delivery timeout, and no longer.
ACK_TIMEOUT_S = PRODUCER_DEFAULTS["delivery_timeout_ms"] / 1000


@contextlib.contextmanager
def _admin(bootstrap: str) -> Iterator[KafkaAdminClient]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="chatda-admin")
    try:
        yield admin
    finally:
        admin.close()


def broker_supports_idempotence(bootstrap: str) -> bool:
    """True when the broker advertises InitProducerId, which an idempotent producer needs."""
    with _admin(bootstrap) as admin:
        return ApiKey.InitProducerId in admin.api_versions()


def make_producer(bootstrap: str, **overrides: Any) -> KafkaProducer:
    """A durable producer: acks=all, bounded retries, a small linger, idempotent when possible.

    Idempotence stops broker-side retries from duplicating records. It is probed rather than
    assumed so a broker without InitProducerId degrades to at-least-once instead of failing on
    the first send; pass ``enable_idempotence`` to skip the probe. An ``acks`` override other
    than "all" turns it off, since idempotence requires acks=all.
    """
    config = {**PRODUCER_DEFAULTS, **overrides}
    if "enable_idempotence" not in config:
        wanted = config["acks"] in ("all", -1)
        config["enable_idempotence"] = wanted and broker_supports_idempotence(bootstrap)
        if wanted and not config["enable_idempotence"]:
            logger.warning(
                "kafka broker %s lacks InitProducerId; producer is at-least-once", bootstrap
            )
    producer = KafkaProducer(bootstrap_servers=bootstrap, **config)
    logger.info(
        "kafka producer ready bootstrap=%s idempotent=%s acks=%s",
        bootstrap,
        config["enable_idempotence"],
        config["acks"],
    )
    return producer


def make_consumer(
    bootstrap: str,
    group_id: str,
    topics: Sequence[str],
    *,
    max_poll_records: int = DEFAULT_MAX_POLL_RECORDS,
    **overrides: Any,
) -> KafkaConsumer:
    """A group consumer that commits only what the caller has processed.

    Auto-commit is off so an offset is committed after the side effect (an index write), never
    before. A 6 s session keeps rebalances quick; a group join takes about half of it. Always
    ``close()`` the consumer so the group rebalances at once instead of after a timeout.
    """
    config: dict[str, Any] = {
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": SESSION_TIMEOUT_MS,
        "heartbeat_interval_ms": HEARTBEAT_INTERVAL_MS,
        "max_poll_records": max_poll_records,
        **overrides,
    }
    return KafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=group_id, **config)


def ensure_topics(
    bootstrap: str, topics: Mapping[str, int], replication_factor: int = -1
) -> list[str]:
    """Create the missing topics with the given partition counts; return the ones created.

    Safe to call from every service at startup: existing topics are left alone (a partition
    count that differs from the request is logged, never changed), and a concurrent creator
    winning the race (TopicAlreadyExists) counts as success. ``replication_factor=-1`` defers
    to the broker default, which is right for both a 1-node dev broker and a real cluster.
    """
    with _admin(bootstrap) as admin:
        existing = set(admin.list_topics())
        _warn_partition_mismatch(admin, {t: n for t, n in topics.items() if t in existing})
        missing = {t: n for t, n in topics.items() if t not in existing}
        if not missing:
            return []
        result = admin.create_topics(
            {
                t: {"num_partitions": n, "replication_factor": replication_factor}
                for t, n in missing.items()
            },
            raise_errors=False,
            wait_for_metadata=True,
        )
    created = []
    for topic in result["topics"]:
        error = for_code(topic["error_code"])
        if topic["error_code"] == 0:
            created.append(topic["name"])
        elif error is not TopicAlreadyExistsError:
            raise error(f"creating topic {topic['name']!r}: {topic['error_message']}")
    logger.info("kafka topics created bootstrap=%s topics=%s", bootstrap, created)
    return created


def _warn_partition_mismatch(admin: KafkaAdminClient, wanted: Mapping[str, int]) -> None:
    if not wanted:
        return
    for described in admin.describe_topics(list(wanted)):
        have, want = len(described["partitions"]), wanted[described["name"]]
        if have != want:
            logger.warning(
                "kafka topic %s has %d partitions, %d requested; left unchanged",
                described["name"],
                have,
                want,
            )


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """High watermark (offset of the next record) of every partition of ``topic``.

    Offsets come from a fetch response, not from ListOffsets(LATEST) alone: the bundled Tansu
    answers ListOffsets with the *base offset of the last batch + 1*, which undercounts when
    the last batch holds several records. ListOffsets is still asked first so the fetch starts
    one record before the end and moves almost no data (on Kafka it is already exact).
    """
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=10,
        max_partition_fetch_bytes=1024,
        client_id="chatda-offsets",
    )
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise UnknownTopicOrPartitionError(f"topic {topic!r} does not exist")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        listed: dict[TopicPartition, int] = consumer.end_offsets(tps)
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, max(listed[tp] - 1, 0))
        deadline = time.monotonic() + _HIGHWATER_TIMEOUT_S
        while any(consumer.highwater(tp) is None for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no fetch response for {topic!r} within the deadline")
            consumer.poll(timeout_ms=50, max_records=1, update_offsets=False)
        return {tp.partition: max(listed[tp], consumer.highwater(tp)) for tp in tps}
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group_id: str, topic: str) -> dict[int, int]:
    """The next offset ``group_id`` would consume on every partition of ``topic``.

    A partition the group never committed starts at its earliest offset, matching
    ``auto_offset_reset="earliest"``.
    """
    partitions = sorted(end_offsets(bootstrap, topic))
    tps = [TopicPartition(topic, p) for p in partitions]
    with _admin(bootstrap) as admin:
        committed = admin.list_group_offsets({group_id: tps}).get(group_id, {})
        positions = {
            tp.partition: meta.offset
            for tp, meta in committed.items()
            if meta is not None and meta.offset >= 0
        }
        uncommitted = [tp for tp in tps if tp.partition not in positions]
        if uncommitted:
            earliest = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in uncommitted})
            positions.update({tp.partition: ot.offset for tp, ot in earliest.items()})
    return positions


def committed_lag(bootstrap: str, group_id: str, topic: str) -> int:
    """Records of ``topic`` that ``group_id`` has not committed yet, over all partitions.

    Zero means everything produced so far is processed.
    """
    ends = end_offsets(bootstrap, topic)
    positions = committed_offsets(bootstrap, group_id, topic)
    return sum(max(end - positions.get(p, 0), 0) for p, end in ends.items())


def fetched_lag(consumer: KafkaConsumer) -> dict[tuple[str, int], int]:
    """Records past ``consumer``'s position on each partition it holds, by (topic, partition).

    From the last fetch's high watermark: no request to the broker, so a consume loop can ask
    after every poll, and exact even where Tansu's ListOffsets is not. A partition not fetched
    yet has no watermark and is left out.
    """
    lags: dict[tuple[str, int], int] = {}
    for tp in consumer.assignment():
        high = consumer.highwater(tp)
        if high is not None:
            lags[(tp.topic, tp.partition)] = max(high - consumer.position(tp), 0)
    return lags


def commit_batch(
    consumer: KafkaConsumer,
    records: Sequence[ConsumerRecord],
    label: str,
    timeout_ms: int = COMMIT_TIMEOUT_MS,
) -> bool:
    """Commit the offset after the last record of each partition in ``records``; False when
    the group refused it or the broker did not answer.

    A refusal (``CommitFailedError``) means the group rebalanced while the batch was being
    written: its records go to their new owner, which writes them again (both consumers' writes
    are idempotent). A broker that does not answer within ``timeout_ms`` leaves the offsets
    where they were: the next batch's commit covers these records too, and a restart before it
    replays them. Either is harmless, so a warning, not an exception that would end the
    consumer.
    """
    offsets: dict[TopicPartition, OffsetAndMetadata] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        if tp not in offsets or offsets[tp].offset <= record.offset:
            offsets[tp] = OffsetAndMetadata(record.offset + 1, "", -1)
    try:
        consumer.commit(offsets, timeout_ms=timeout_ms)
    except CommitFailedError as exc:
        logger.warning("%s commit rejected after a rebalance: %s", label, exc)
        return False
    except KafkaError as exc:
        logger.warning("%s commit not acknowledged, left to the next batch: %r", label, exc)
        return False
    return True


def seed_offsets(bootstrap: str, group_id: str, topic: str, offsets: Mapping[int, int]) -> None:
    """Commit ``offsets`` for ``group_id`` before any member joined it: where it will start.

    Done by a consumer outside the group protocol (manual assignment), which Kafka and Tansu
    both accept for a group without members.
    """
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
    )
    try:
        tps = {p: TopicPartition(topic, p) for p in offsets}
        consumer.assign(list(tps.values()))
        consumer.commit({tps[p]: OffsetAndMetadata(o, "", -1) for p, o in offsets.items()})
    finally:
        consumer.close()


def keys_between(
    bootstrap: str, topic: str, start: Mapping[int, int], end: Mapping[int, int]
) -> set[bytes]:
    """Record keys of ``topic`` from ``start`` up to (not including) ``end``, per partition."""
    todo = {p: (s, end[p]) for p, s in start.items() if end.get(p, 0) > s}
    keys: set[bytes] = set()
    if not todo:
        return keys
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, client_id="chatda-keys"
    )
    try:
        tps = {p: TopicPartition(topic, p) for p in todo}
        consumer.assign(list(tps.values()))
        for p, (s, _) in todo.items():
            consumer.seek(tps[p], s)
        deadline = time.monotonic() + _HIGHWATER_TIMEOUT_S
        while todo:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading keys of {topic!r} did not finish in time")
            for tp, records in consumer.poll(timeout_ms=200).items():
                stop = todo.get(tp.partition, (0, 0))[1]
                keys.update(r.key for r in records if r.offset < stop and r.key is not None)
                if records and records[-1].offset + 1 >= stop:
                    todo.pop(tp.partition, None)
                    consumer.pause(tp)
                deadline = time.monotonic() + _HIGHWATER_TIMEOUT_S
    finally:
        consumer.close()
    return keys
