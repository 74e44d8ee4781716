"""Prometheus metrics of the feedback consumer (``CHATDA_FEEDBACK_METRICS_PORT``).

Consumed against stored tells replays and dead letters apart from new events: a replay after a
crash consumes records the store already holds, a bad producer's records are consumed and
dead-lettered (counted by reason). Retries count the attempts an outage failed, while the
consumer waits in its group for the store or the broker to come back. Lag says whether the
consumer keeps up with the API's search events; the popularity and click-through jobs read
what it stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import Counter, Gauge

CONSUMED = Counter("chatda_feedback_records_total", "Event records consumed from the events topic")
STORED = Counter(
    "chatda_feedback_events_stored_total",
    "Events new to the SQL store (a replayed or dead-lettered record stores none)",
)
DEAD_LETTERS = Counter(
    "chatda_feedback_dead_letters_total",
    "Event records sent to the events dead-letter topic",
    ["reason"],  # json | schema | store
)
RETRIES = Counter(
    "chatda_feedback_retries_total",
    "Batch attempts failed by an outage (SQL store, or Kafka for the dead letters), then retried",
    ["cause"],  # sql | kafka
)
LAG = Gauge(
    "chatda_feedback_consumer_lag", "Event records on this consumer's partitions not yet consumed"
)


def observe_batch(consumed: int, stored: int, dead_letter_reasons: Iterable[str]) -> None:
    CONSUMED.inc(consumed)
    STORED.inc(stored)
    for reason in dead_letter_reasons:
        DEAD_LETTERS.labels(reason).inc()


def observe_retry(cause: str) -> None:
    RETRIES.labels(cause).inc()


def observe_lag(per_partition: Mapping[tuple[str, int], int]) -> None:
    LAG.set(sum(per_partition.values()))
