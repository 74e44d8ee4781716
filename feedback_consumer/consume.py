"""The consume loop: poll the events topic, store each batch, dead-letter what it could not
use, then commit its offsets.

Offsets are committed only after the batch is in SQL and the dead-letter topic acknowledged
its envelopes (``chatda.broker.dead_letter``), so a crash or an outage of either replays
records rather than losing them, and the store's event-id uniqueness makes the replay
harmless. An outage is raised: the process exits before the commit and its supervisor
(``chatda up``, the container's restart policy) starts it again from the last commit.
"""

from __future__ import annotations

import logging
import threading
from contextlib import closing

from chatda.broker.dead_letter import DeadLetters
from chatda.broker.kafka import ensure_topics, fetched_lag, make_consumer, make_producer
from chatda.feedback.persist import persist
from chatda.feedback.store import FeedbackStore
from feedback_consumer import metrics

log = logging.getLogger(__name__)

POLL_TIMEOUT_MS = 500


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
    ``partitions`` each: a broker that auto-creates topics would give them one.
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
            outcome = persist(store, records)
            if outcome.poison:
                dead_letters.send(outcome.poison)
            consumer.commit()
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
