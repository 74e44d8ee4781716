"""The dead-letter topic: records that can never be indexed, kept whole with the reason.

The envelope carries the original key and value bytes (base64, since they may not even be
UTF-8) and the record's source topic, partition and offset, so an operator can fix the
publisher and replay exactly those records. It is keyed like the original, keeping one
article's failures in order on one partition.

Delivery is at-least-once: a batch retried after a Milvus outage sends its poison records
again. The source coordinates identify duplicates.
"""

from __future__ import annotations

import base64
import json
import os
import socket
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord

from chatda.articles.publisher import ACK_TIMEOUT_S
from ingest.decode import PoisonRecord

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def envelope(record: ConsumerRecord, error: PoisonRecord) -> dict[str, Any]:
    """The JSON document written to the dead-letter topic for one poison record."""
    return {
        "error": {"reason": error.reason, "message": error.detail},
        "source": {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "timestamp_ms": record.timestamp,
        },
        "key_b64": _b64(record.key),
        "value_b64": _b64(record.value),
        "failed_at": datetime.now(UTC).isoformat(),
        "worker": WORKER_ID,
    }


class DeadLetters:
    """Sends envelopes to ``topic`` and waits for their acknowledgement."""

    def __init__(self, producer: KafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    def send(self, failures: Sequence[tuple[ConsumerRecord, PoisonRecord]]) -> None:
        """Publish every failure; returns only once all are acknowledged (KafkaError if not).

        The worker commits the source offsets right after, so an unacknowledged envelope
        must stop the commit rather than lose the record.
        """
        futures = [
            self.producer.send(
                self.topic,
                key=record.key,
                value=json.dumps(envelope(record, error), ensure_ascii=False).encode("utf-8"),
            )
            for record, error in failures
        ]
        for future in futures:
            future.get(timeout=ACK_TIMEOUT_S)
