"""Prometheus metrics of the feedback consumer (``CHATDA_FEEDBACK_METRICS_PORT``).

Consumed against stored tells replays and dropped records apart from new events: a replay
after a crash consumes records the store already holds, a bad producer's records are consumed
and dropped. Lag says whether the consumer keeps up with the API's search events; the
popularity and click-through jobs read what it stored.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import Counter, Gauge

CONSUMED = Counter("chatda_feedback_records_total", "Event records consumed from the events topic")
STORED = Counter(
    "chatda_feedback_events_stored_total",
    "Events new to the SQL store (a replayed, unparsable or refused record stores none)",
)
LAG = Gauge(
    "chatda_feedback_consumer_lag", "Event records on this consumer's partitions not yet consumed"
)


def observe_batch(consumed: int, stored: int) -> None:
    CONSUMED.inc(consumed)
    STORED.inc(stored)


def observe_lag(per_partition: Mapping[tuple[str, int], int]) -> None:
    LAG.set(sum(per_partition.values()))
