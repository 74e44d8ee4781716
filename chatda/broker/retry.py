"""Retrying a polled batch while its consumer stays in the group.

An infrastructure failure (the store a consumer writes to, or the broker it sends to, being
away) is not the records' fault: a consumer that raised would exit, be restarted by its
supervisor, replay the batch from the last commit and fail again, a crash loop for as long as
the outage lasts. ``retry_in_group`` retries the batch in-process with exponential backoff
instead, and commits nothing meanwhile: the caller commits once it returns the attempt's result.

While backing off, the partitions held are paused and ``poll`` keeps running, so the consumer
stays in its group (no ``max.poll.interval`` eviction) without fetching more. If a rebalance
changes the assignment meanwhile, the batch is dropped and every partition still held is rewound
to its first record of the batch: the new owner of a moved partition redoes it from the last
commit, and nothing held is skipped.

Used by the ingest worker (Milvus, Kafka) and the feedback consumer (SQL, Kafka); each says
which errors are outages, how to attempt the batch and what to count and log per retry.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from chatda.backoff import Backoff

logger = logging.getLogger(__name__)

T = TypeVar("T")
_WAIT_POLL_MS = 200


def retry_in_group(
    consumer: KafkaConsumer,
    records: Sequence[ConsumerRecord],
    attempt: Callable[[bool], T],
    stop: threading.Event,
    *,
    outages: tuple[type[Exception], ...],
    on_retry: Callable[[Exception, float], None],
    label: str,
    backoff: Backoff = Backoff(),
) -> T | None:
    """``attempt(retrying)``'s result once it succeeds; None when the batch was abandoned.

    ``attempt`` is told whether it is a retry (a store may need reloading after an outage); it
    must not return None. An exception of ``outages`` is an outage: ``on_retry(error, delay)``
    is called (the caller's metric and log), then the batch is attempted again after ``delay``
    seconds in the group. Any other exception propagates. The batch is abandoned, uncommitted,
    when ``stop`` is set or a rebalance moved partitions during a wait; ``label`` names the
    consumer in the log line of the latter.
    """
    owned = set(consumer.assignment())
    rewind = _first_offsets(records)
    failures = 0
    while True:
        try:
            return attempt(failures > 0)
        except outages as exc:
            failures += 1
            delay = backoff.delay(failures)
            on_retry(exc, delay)
        if stop.is_set():
            return None
        consumer.pause(*owned)
        moved = _wait_in_group(consumer, owned, rewind, delay, stop)
        consumer.resume(*(owned & set(consumer.assignment())))
        if moved:
            for tp, offset in rewind.items():
                if tp in consumer.assignment():
                    consumer.seek(tp, offset)
            logger.warning("%s group rebalanced during retry; batch dropped and rewound", label)
            return None
        if stop.is_set():
            return None


def _first_offsets(records: Sequence[ConsumerRecord]) -> dict[TopicPartition, int]:
    """The offset of each partition's first record in ``records``: where a rewind goes."""
    first: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        first[tp] = min(first.get(tp, record.offset), record.offset)
    return first


def _wait_in_group(
    consumer: KafkaConsumer,
    owned: set[TopicPartition],
    rewind: dict[TopicPartition, int],
    seconds: float,
    stop: threading.Event,
) -> bool:
    """Poll the paused consumer for ``seconds``; True as soon as a rebalance shows.

    A rebalance shows as a changed assignment, or as records coming back from this paused
    poll (a partition newly assigned is not paused); their offsets join ``rewind`` so they are
    fetched again, never skipped. A partition kept through a rebalance keeps its position and
    pause: the batch is still this consumer's to commit.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stop.is_set():
        returned = consumer.poll(timeout_ms=_WAIT_POLL_MS)
        for tp, batch in returned.items():
            rewind[tp] = min(rewind.get(tp, batch[0].offset), batch[0].offset)
        if returned or set(consumer.assignment()) != owned:
            return True
    return False
