"""The consume loop: poll the events topic, store each batch, dead-letter what it could not
use, then commit its offsets.

Offsets are committed only after the batch is in SQL and the dead-letter topic acknowledged
its envelopes (``chatda.broker.dead_letter``), so a crash replays records rather than losing
them, and the store's event-id uniqueness makes the replay harmless.

An outage of either (the SQL store away or locked, the broker not acknowledging dead letters)
is not the records' fault and does not end the process, which its supervisor would only restart
into the same outage: the batch is retried with backoff while the consumer stays in its group
(``chatda.broker.retry``: partitions paused, poll kept running), each retry counted in
``chatda_feedback_retries_total{cause}`` and logged as a warning. Nothing is committed meanwhile.
If a rebalance moves the partitions during the outage, the batch is dropped and their new owner
replays it from the last commit. An event the store refuses for its data is no outage:
``store_events`` returns it as a poison record, dead-lettered once rather than retried forever.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from contextlib import closing

from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from sqlalchemy.exc import DBAPIError

from chatda.broker.dead_letter import DeadLetters
from chatda.broker.kafka import (
    commit_batch,
    ensure_topics,
    fetched_lag,
    make_consumer,
    make_producer,
)
from chatda.broker.retry import retry_in_group
from chatda.feedback.persist import Persisted, decode_batch, store_events
from chatda.feedback.store import FeedbackStore
from chatda.redaction import mask_url_passwords
from feedback_consumer import metrics

log = logging.getLogger(__name__)

POLL_TIMEOUT_MS = 500
# What reaches the loop from the driver is an outage: store_events has already turned the errors
# an event's data causes (DataError, IntegrityError) into poison records.
OUTAGES = (DBAPIError, KafkaError)


class _Batch:
    """One polled batch: stored once, then its dead letters sent until all are acknowledged.

    Its records are decoded once (a bad record's warning is logged once, not at every retry).
    A retry after the store succeeded only sends the dead letters still missing (DeadLetters
    remembers the acknowledged ones): storing again would add nothing, and would report the
    events as not new.
    """

    def __init__(
        self, store: FeedbackStore, dead_letters: DeadLetters, records: Sequence[ConsumerRecord]
    ) -> None:
        self.store = store
        self.dead_letters = dead_letters
        self.decoded = decode_batch(records)
        self._persisted: Persisted | None = None

    def write(self, retrying: bool) -> Persisted:
        if self._persisted is None:
            self._persisted = store_events(self.store, *self.decoded)
        if self._persisted.poison:
            self.dead_letters.send(self._persisted.poison)
        return self._persisted


def run(
    bootstrap: str,
    topic: str,
    group_id: str,
    store: FeedbackStore,
    stop: threading.Event,
    *,
    dead_letter_topic: str,
    partitions: int,
    max_poll_records: int = 500,
) -> None:
    """Consume until ``stop`` is set; commit each batch after it is stored and dead-lettered.

    The events topic and the dead-letter topic are created first if missing, with
    ``partitions`` each: a broker that auto-creates topics would give them one. A batch an
    outage holds back when ``stop`` is set is left uncommitted, for the next start to replay.
    """
    ensure_topics(bootstrap, {topic: partitions, dead_letter_topic: partitions})
    with (
        closing(make_producer(bootstrap)) as producer,
        closing(
            make_consumer(bootstrap, group_id, [topic], max_poll_records=max_poll_records)
        ) as consumer,
    ):
        dead_letters = DeadLetters(producer, dead_letter_topic)
        while not stop.is_set():
            polled = consumer.poll(timeout_ms=POLL_TIMEOUT_MS)
            records = [record for batch in polled.values() for record in batch]
            metrics.observe_lag(fetched_lag(consumer))
            if not records:
                continue
            try:
                outcome = retry_in_group(
                    consumer,
                    records,
                    _Batch(store, dead_letters, records).write,
                    stop,
                    outages=OUTAGES,
                    on_retry=_count_retry,
                    label="feedback",
                )
                if outcome is None:
                    continue
                commit_batch(consumer, records, "feedback")
            finally:
                dead_letters.settle()
            metrics.observe_batch(
                len(records), outcome.stored, [error.reason for _, error in outcome.poison]
            )
            log.info(
                "feedback: %d records, %d new events stored, %d dead-lettered",
                len(records),
                outcome.stored,
                len(outcome.poison),
            )


def _count_retry(exc: Exception, delay: float) -> None:
    cause = "kafka" if isinstance(exc, KafkaError) else "sql"
    metrics.observe_retry(cause)
    log.warning(
        "feedback batch held back by a %s outage, retrying in %.1fs: %s",
        cause,
        delay,
        _describe(exc),
    )


def _describe(exc: Exception) -> str:
    """The error without what it may carry that a log must not: a driver error's statement and
    the row's values (SQLAlchemy appends both), a password in a URL."""
    error = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return mask_url_passwords(f"{type(error).__name__}: {error}")
