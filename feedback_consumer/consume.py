"""The consume loop: poll the events topic, store each batch, then commit its offsets.

Offsets are committed only after the batch is in SQL, so a crash replays records rather than
losing them, and the store's event-id uniqueness makes the replay harmless.
"""

from __future__ import annotations

import logging
import threading

from chatda.broker.kafka import fetched_lag, make_consumer
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
    max_poll_records: int = 500,
) -> None:
    """Consume until ``stop`` is set; commit each batch after it is stored."""
    consumer = make_consumer(bootstrap, group_id, [topic], max_poll_records=max_poll_records)
    try:
        while not stop.is_set():
            polled = consumer.poll(timeout_ms=POLL_TIMEOUT_MS)
            values = [record.value for batch in polled.values() for record in batch]
            metrics.observe_lag(fetched_lag(consumer))
            if not values:
                continue
            stored = persist(store, values)
            consumer.commit()
            metrics.observe_batch(len(values), stored)
            log.info("feedback: %d records, %d new events stored", len(values), stored)
    finally:
        consumer.close()
