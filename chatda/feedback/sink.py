"""Where the API puts an accepted feedback event: Kafka when a broker is configured, else SQL.

Through Kafka the request path only waits for the broker's acknowledgement and the consumer
(``feedback_consumer``) writes SQL at its own pace. If the broker cannot take the event
in time it is written to SQL directly instead: feedback is never dropped for an outage, and a
late Kafka delivery of the same event is deduplicated by its event id.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Literal, Protocol

from kafka import KafkaProducer

from chatda.broker.kafka import ensure_topics, make_producer
from chatda.feedback.events import FeedbackRecord
from chatda.feedback.store import FeedbackStore

log = logging.getLogger(__name__)

Destination = Literal["kafka", "sql"]


class FeedbackSink(Protocol):
    async def send(self, record: FeedbackRecord) -> Destination: ...

    def close(self) -> None: ...


class SqlSink:
    def __init__(self, store: FeedbackStore) -> None:
        self.store = store

    async def send(self, record: FeedbackRecord) -> Destination:
        await asyncio.to_thread(self.store.save, [record])
        return "sql"

    def close(self) -> None:
        """Nothing to release: the engine belongs to the app."""


class KafkaSink:
    def __init__(
        self, producer: KafkaProducer, topic: str, fallback: SqlSink, timeout_s: float
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.fallback = fallback
        self.timeout_s = timeout_s

    def _send(self, record: FeedbackRecord) -> None:
        future = self.producer.send(
            self.topic,
            key=str(record.event.query_id).encode(),  # one query's events stay in order
            value=record.model_dump_json().encode(),
        )
        future.get(timeout=self.timeout_s)

    async def send(self, record: FeedbackRecord) -> Destination:
        try:
            await asyncio.to_thread(self._send, record)
        except Exception as exc:  # any broker trouble: keep the event, in SQL
            log.warning("feedback to kafka failed (%s); writing it to SQL", exc)
            return await self.fallback.send(record)
        return "kafka"

    def close(self) -> None:
        self.producer.close(timeout=self.timeout_s)


async def open_sink(
    bootstrap: str | None, topic: str, partitions: int, store: FeedbackStore, timeout_s: float
) -> FeedbackSink:
    """A Kafka sink when ``bootstrap`` is set and reachable now, else the SQL sink."""
    sql = SqlSink(store)
    if not bootstrap:
        return sql
    try:
        await asyncio.to_thread(ensure_topics, bootstrap, {topic: partitions})
        producer = await asyncio.to_thread(
            make_producer, bootstrap, max_block_ms=int(timeout_s * 1000)
        )
    except Exception as exc:
        log.warning(
            "kafka at %s unusable for feedback (%s); writing feedback to SQL", bootstrap, exc
        )
        return sql
    return KafkaSink(producer, topic, sql, timeout_s)
