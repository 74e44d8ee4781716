"""Dead-letter topics: records a consumer can never use, with the reason and their bytes.

A consumer that meets a record it cannot decode or store raises ``PoisonRecord`` for it and
hands it to ``DeadLetters`` instead of dropping it; once the envelopes are acknowledged, the
batch's offsets can be committed (the ingest worker's ``articles-dlq``, the feedback
consumer's ``search-events-dlq``).

The envelope carries the original key and value (base64, since they may not even be UTF-8),
their sizes and sha256, and the record's source topic, partition and offset, so an operator can
fix the publisher and replay exactly those records. It is keyed like the original, keeping the
failures of one key (an article, a search) in order on one partition.

An envelope always fits the producer's ``max_request_size`` (read from the producer itself, so
it follows ``chatda.broker.kafka`` and any override): a value too large to carry whole (a 5 MB
record would make a 7 MB envelope) is cut to a prefix and marked ``value_truncated``; its size
and sha256 still describe the whole record, and the source coordinates point at it for replay.
The key is cut the same way only when the value alone cannot make room.

Delivery is at-least-once: a batch retried after an outage sends again only the envelopes not
acknowledged yet, and the source coordinates identify any duplicate. A send refused for good
(a non-retriable error such as a broker whose message limit is below the producer's) is not an
outage: the envelope is sent again without the record's bytes, so one record can never hold
the batch back; only if that is refused too (an ACL, a missing topic) is the batch retried.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import os
import socket
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata
from kafka.record.default_records import DefaultRecordBatchBuilder

from chatda.broker.kafka import ACK_TIMEOUT_S

logger = logging.getLogger(__name__)

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"
# The reason text is for a person; a validation summary of a record with thousands of bad
# fields would otherwise crowd out the record itself.
MAX_MESSAGE_CHARS = 2000

Source = tuple[str, int, int]


class PoisonRecord(Exception):
    """A record that no retry can use; it goes to the dead-letter topic.

    ``reason`` is a short, stable label for metrics and the envelope (each consumer documents
    its own: ``json``, ``schema``, ``store``…); ``detail`` says what was wrong, for a person.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _bytes_fields(name: str, data: bytes | None, keep: int) -> dict[str, Any]:
    """``<name>_b64`` of the first ``keep`` bytes, and the size and sha256 of all of them."""
    if data is None:
        return {f"{name}_b64": None}
    return {
        f"{name}_b64": base64.b64encode(data[:keep]).decode("ascii"),
        f"{name}_size": len(data),
        f"{name}_sha256": hashlib.sha256(data).hexdigest(),
        f"{name}_truncated": keep < len(data),
    }


def _message(detail: str) -> str:
    if len(detail) <= MAX_MESSAGE_CHARS:
        return detail
    return f"{detail[:MAX_MESSAGE_CHARS]}… ({len(detail)} characters)"


def envelope(
    record: ConsumerRecord,
    error: PoisonRecord,
    *,
    keep_key: int | None = None,
    keep_value: int | None = None,
    refused: str | None = None,
) -> dict[str, Any]:
    """The JSON document written to the dead-letter topic for one poison record.

    ``keep_key`` / ``keep_value`` bound how many leading bytes are carried (all by default);
    ``refused`` says why an earlier, fuller envelope of this record was not accepted.
    """
    key, value = record.key, record.value
    doc: dict[str, Any] = {
        "error": {"reason": error.reason, "message": _message(error.detail)},
        "source": {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "timestamp_ms": record.timestamp,
        },
        **_bytes_fields("key", key, len(key or b"") if keep_key is None else keep_key),
        **_bytes_fields("value", value, len(value or b"") if keep_value is None else keep_value),
        "failed_at": datetime.now(UTC).isoformat(),
        "worker": WORKER_ID,
    }
    if refused is not None:
        doc["error"]["refused"] = _message(refused)
    return doc


def fitted(
    record: ConsumerRecord,
    error: PoisonRecord,
    max_bytes: int,
    *,
    keep_value: int | None = None,
    refused: str | None = None,
) -> tuple[bytes | None, bytes]:
    """``(key, value)`` of the envelope record, at most ``max_bytes`` as the producer counts.

    The size is measured with kafka-python's own estimate (the one its ``send`` checks), so
    the bound is exact rather than a guess at the overhead. The value is cut first, then the
    key; each cut removes at least the excess, in whole 3-byte base64 groups, so the prefix
    decodes to exactly the leading bytes of the record.
    """
    keep_key = len(record.key or b"")
    keep_value = len(record.value or b"") if keep_value is None else keep_value
    while True:
        doc = envelope(record, error, keep_key=keep_key, keep_value=keep_value, refused=refused)
        key = None if record.key is None else record.key[:keep_key]
        # ASCII JSON: encodable whatever the reason text holds, and its size is its length.
        value = json.dumps(doc).encode("ascii")
        excess = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, []) - max_bytes
        if excess <= 0:
            return key, value
        if keep_value > 0:  # 3 value bytes are 4 base64 characters
            keep_value = max(0, (keep_value - math.ceil(excess * 3 / 4)) // 3 * 3)
        elif keep_key > 0:  # 3 key bytes are 3 in the record key plus 4 in base64
            keep_key = max(0, (keep_key - math.ceil(excess * 3 / 7)) // 3 * 3)
        else:
            raise ValueError(f"max_request_size {max_bytes} cannot hold even an empty envelope")


def _source(record: ConsumerRecord) -> Source:
    return record.topic, record.partition, record.offset


class DeadLetters:
    """Sends envelopes to ``topic`` and waits for their acknowledgement.

    Remembers which source records have an acknowledged envelope until ``settle()``, so a
    batch retried after an outage does not write the same envelopes again.
    """

    def __init__(self, producer: KafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic
        self.max_bytes: int = producer.config["max_request_size"]
        self._acknowledged: set[Source] = set()

    def send(self, failures: Sequence[tuple[ConsumerRecord, PoisonRecord]]) -> None:
        """Publish every failure not acknowledged yet; returns once all are (KafkaError if not).

        The consumer commits the source offsets right after, so an unacknowledged envelope
        must stop the commit rather than lose the record. A retriable error (the broker is
        away, a leader moved, a timeout) is raised once every envelope already handed to the
        producer has been waited for, so the retry sends only what is still missing.
        """
        sent: list[tuple[ConsumerRecord, PoisonRecord, FutureRecordMetadata | KafkaError]] = []
        for record, error in failures:
            if _source(record) in self._acknowledged:
                continue
            attempt = self._produce(*fitted(record, error, self.max_bytes))
            sent.append((record, error, attempt))
            if isinstance(attempt, KafkaError) and attempt.retriable:
                break  # no broker to take them (each send would block): the retry sends the rest
        outage: KafkaError | None = None
        for record, error, attempt in sent:
            try:
                self._confirm(record, error, attempt)
            except KafkaError as exc:
                outage = outage or exc
                continue
            self._acknowledged.add(_source(record))
        if outage is not None:
            raise outage

    def settle(self) -> None:
        """Forget the acknowledged envelopes: their batch is committed or given up."""
        self._acknowledged.clear()

    def _confirm(
        self,
        record: ConsumerRecord,
        error: PoisonRecord,
        attempt: FutureRecordMetadata | KafkaError,
    ) -> None:
        """Wait for one envelope; a refusal for good is answered with the envelope without
        the record's bytes, the part a size or format limit can refuse."""
        try:
            self._wait(attempt)
        except KafkaError as refusal:
            if refusal.retriable:
                raise
            logger.warning(
                "dead letter for %s:%d@%d refused (%s); sending it without the record's bytes",
                record.topic,
                record.partition,
                record.offset,
                refusal,
            )
            key, value = fitted(record, error, self.max_bytes, keep_value=0, refused=str(refusal))
            self._wait(self._produce(key, value))

    def _produce(self, key: bytes | None, value: bytes) -> FutureRecordMetadata | KafkaError:
        """The send's future, or the error ``send`` raised at once (it checks sizes itself)."""
        try:
            return self.producer.send(self.topic, key=key, value=value)
        except KafkaError as exc:
            return exc

    @staticmethod
    def _wait(attempt: FutureRecordMetadata | KafkaError) -> None:
        if isinstance(attempt, KafkaError):
            raise attempt
        attempt.get(timeout=ACK_TIMEOUT_S)
