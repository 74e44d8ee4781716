"""``Publisher``: the one way chatda code puts articles on Kafka (API, CLI, benchmarks, tests).

Every send is acknowledged by all in-sync replicas (``acks=all`` via ``make_producer``) before
it is reported as published. With an ``Outbox`` (the API, ``chatda publish`` and the demo loader
get one through ``from_settings``), each message is first recorded in the SQL store, so a 202
means the article will be searchable even if the broker later loses the record: the reconciler
(``indexer.outbox_job``) re-sends what Milvus has not confirmed. A send that fails takes its
outbox rows back, so a refused publish leaves nothing to re-send. Failures surface as
``BrokerUnavailable`` with a message meant for the caller, never as a kafka-python exception.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import NamedTuple

from kafka import KafkaProducer
from kafka.errors import KafkaError
from sqlalchemy.exc import SQLAlchemyError

from chatda.articles.message import ArticleMessage
from chatda.articles.outbox import Outbox
from chatda.articles.topics import ensure_article_topics
from chatda.broker.kafka import ACK_TIMEOUT_S, make_producer
from chatda.process import port_accepts
from chatda.settings import Settings

logger = logging.getLogger(__name__)


class BrokerUnavailable(RuntimeError):
    """Articles cannot be published now: no broker configured, none reachable, a send not
    acknowledged in time, or the outbox's SQL store failed (the API answers 503 for all)."""


class Delivery(NamedTuple):
    """Where an acknowledged record landed."""

    partition: int
    offset: int


def broker_reachable(bootstrap: str) -> bool:
    """True when any bootstrap server accepts TCP connections.

    kafka-python blocks for 30 s before giving up on an unreachable bootstrap; checking the
    socket first lets an API request fail in well under a second instead.
    """
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        if host and port.isdigit() and port_accepts(host.strip("[]"), int(port)):
            return True
    return False


class Publisher:
    """Publishes ``ArticleMessage``s to the articles topic, keyed by ``post_id``.

    Creating one creates the topic when it is missing (with ``partitions`` partitions) and
    connects a producer; use it as a context manager or call ``close()``. ``outbox``: where
    every message is recorded before it is sent (see the module docstring).
    """

    def __init__(
        self, bootstrap: str | None, topic: str, partitions: int, outbox: Outbox | None = None
    ) -> None:
        self.outbox = outbox
        if not bootstrap:
            raise BrokerUnavailable("no Kafka broker configured (set CHATDA_KAFKA_BOOTSTRAP)")
        if not broker_reachable(bootstrap):
            raise BrokerUnavailable(f"Kafka broker {bootstrap} is not reachable")
        self.topic = topic
        self._bootstrap = bootstrap
        self._partitions = partitions
        self._lock = threading.Lock()
        try:
            ensure_article_topics(bootstrap, [topic], partitions)
            self._producer: KafkaProducer | None = make_producer(bootstrap)
        except KafkaError as exc:
            raise BrokerUnavailable(f"Kafka broker {bootstrap} failed: {exc}") from exc

    @classmethod
    def from_settings(cls, settings: Settings, topic: str | None = None) -> Publisher:
        """A publisher to ``topic`` (default the articles topic), with the SQL store's outbox
        when that is the articles topic: the reconciler confirms rows against the serving
        alias, which only the articles topic feeds."""
        topic = topic or settings.articles_topic
        publisher = cls(settings.kafka_bootstrap, topic, settings.article_partitions)
        if topic == settings.articles_topic:  # after the broker checks: a 503 costs no store
            publisher.outbox = Outbox.from_settings(settings)
        return publisher

    def publish(self, message: ArticleMessage) -> Delivery:
        """Send one message and wait for its acknowledgement."""
        (delivery,) = self.publish_many([message])
        return delivery

    def publish_many(self, messages: Iterable[ArticleMessage]) -> list[Delivery]:
        """Record in the outbox, send all, then wait for every acknowledgement; results in
        input order. A failed send withdraws what this call recorded."""
        batch = list(messages)
        if self.outbox is None:
            return self.send_records([(m.key, m.to_wire()) for m in batch])
        try:
            receipt = self.outbox.record(batch)
        except SQLAlchemyError as exc:
            raise BrokerUnavailable(f"the outbox could not record: {type(exc).__name__}") from exc
        try:
            return self.send_records([(m.key, m.to_wire()) for m in batch])
        except BaseException:
            try:
                self.outbox.withdraw(receipt)
            except SQLAlchemyError:  # the row stays and is re-sent later: a copy, not a loss
                logger.warning("outbox: could not withdraw a failed send", exc_info=True)
            raise

    def send_records(self, records: Sequence[tuple[bytes, bytes]]) -> list[Delivery]:
        """Send ``(key, value)`` records as they are and wait for every acknowledgement.

        The outbox's re-sends use this directly: the record was validated when it was
        accepted and is already in the outbox. Sending everything before waiting lets the
        producer batch records per partition, which is what makes bulk loads fast.
        """
        producer = self._current_producer()
        try:
            futures = [producer.send(self.topic, key=k, value=v) for k, v in records]
            producer.flush(timeout=ACK_TIMEOUT_S)
            metadata = [future.get(timeout=ACK_TIMEOUT_S) for future in futures]
        except KafkaError as exc:
            self._discard(producer)
            raise BrokerUnavailable(f"publishing to {self.topic} failed: {exc}") from exc
        return [Delivery(m.partition, m.offset) for m in metadata]

    def _current_producer(self) -> KafkaProducer:
        with self._lock:
            if self._producer is None:
                try:  # a restarted in-memory broker has also forgotten the topic
                    ensure_article_topics(self._bootstrap, [self.topic], self._partitions)
                    self._producer = make_producer(self._bootstrap)
                except KafkaError as exc:
                    raise BrokerUnavailable(
                        f"Kafka broker {self._bootstrap} failed: {exc}"
                    ) from exc
            return self._producer

    def _discard(self, producer: KafkaProducer) -> None:
        """Drop a producer after a failed send; the next send connects a new one.

        kafka-python's idempotent producer can stay failed for good: a restarted broker that
        forgot its producer id answers every InitProducerId with an error, so without this
        a long-lived publisher (the API's) would answer 503 until the process restarts.
        """
        with self._lock:
            if self._producer is producer:
                self._producer = None
        with contextlib.suppress(KafkaError):
            producer.close(timeout=0)

    def delete(self, post_id: str, updated_at: datetime) -> Delivery:
        """Publish the deletion of ``post_id`` as of ``updated_at`` (older versions lose)."""
        return self.publish(ArticleMessage(post_id=post_id, op="delete", updated_at=updated_at))

    def flush(self) -> None:
        if self._producer is not None:
            self._producer.flush(timeout=ACK_TIMEOUT_S)

    def close(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout=ACK_TIMEOUT_S)
        if self.outbox is not None:
            self.outbox.close()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
