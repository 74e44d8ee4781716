"""``Publisher``: the one way chatda code puts articles on Kafka (API, CLI, benchmarks, tests).

Every send is acknowledged by all in-sync replicas (``acks=all`` via ``make_producer``) before
it is reported as published, so a 202 from the API means the article is durably queued.
Failures surface as ``BrokerUnavailable`` with a message meant for the caller, never as a
kafka-python exception.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from types import TracebackType
from typing import NamedTuple

from kafka import KafkaProducer
from kafka.errors import KafkaError

from chatda.articles.message import ArticleMessage
from chatda.articles.topics import ensure_article_topics
from chatda.broker.kafka import PRODUCER_DEFAULTS, make_producer
from chatda.broker.process import port_accepts
from chatda.settings import Settings

logger = logging.getLogger(__name__)

# An ack can take as long as the producer's own delivery timeout, and no longer.
ACK_TIMEOUT_S = PRODUCER_DEFAULTS["delivery_timeout_ms"] / 1000


class BrokerUnavailable(RuntimeError):
    """No broker configured, none reachable, or a send was not acknowledged in time."""


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
    connects a producer; use it as a context manager or call ``close()``.
    """

    def __init__(self, bootstrap: str | None, topic: str, partitions: int) -> None:
        if not bootstrap:
            raise BrokerUnavailable("no Kafka broker configured (set CHATDA_KAFKA_BOOTSTRAP)")
        if not broker_reachable(bootstrap):
            raise BrokerUnavailable(f"Kafka broker {bootstrap} is not reachable")
        self.topic = topic
        try:
            ensure_article_topics(bootstrap, [topic], partitions)
            self._producer: KafkaProducer = make_producer(bootstrap)
        except KafkaError as exc:
            raise BrokerUnavailable(f"Kafka broker {bootstrap} failed: {exc}") from exc

    @classmethod
    def from_settings(cls, settings: Settings, topic: str | None = None) -> Publisher:
        return cls(
            settings.kafka_bootstrap, topic or settings.articles_topic, settings.article_partitions
        )

    def publish(self, message: ArticleMessage) -> Delivery:
        """Send one message and wait for its acknowledgement."""
        (delivery,) = self.publish_many([message])
        return delivery

    def publish_many(self, messages: Iterable[ArticleMessage]) -> list[Delivery]:
        """Send all messages, then wait for every acknowledgement; results in input order.

        Sending everything before waiting lets the producer batch records per partition,
        which is what makes bulk loads fast.
        """
        try:
            futures = [
                self._producer.send(self.topic, key=m.key, value=m.to_wire()) for m in messages
            ]
            self._producer.flush(timeout=ACK_TIMEOUT_S)
            metadata = [future.get(timeout=ACK_TIMEOUT_S) for future in futures]
        except KafkaError as exc:
            raise BrokerUnavailable(f"publishing to {self.topic} failed: {exc}") from exc
        return [Delivery(m.partition, m.offset) for m in metadata]

    def delete(self, post_id: str, updated_at: datetime) -> Delivery:
        """Publish the deletion of ``post_id`` as of ``updated_at`` (older versions lose)."""
        return self.publish(ArticleMessage(post_id=post_id, op="delete", updated_at=updated_at))

    def flush(self) -> None:
        self._producer.flush(timeout=ACK_TIMEOUT_S)

    def close(self) -> None:
        self._producer.close(timeout=ACK_TIMEOUT_S)

    def __enter__(self) -> Publisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
