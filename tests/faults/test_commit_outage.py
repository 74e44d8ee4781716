"""A batch's commit that the broker never answers is left to the next batch, not raised.

kafka-python's ``commit`` raises a timeout error when the coordinator is gone; raised, it ended
the ingest worker and the feedback consumer alike (their supervisor restarted them into the
same outage). Real Tansu, stopped between the poll and the commit.
"""

from __future__ import annotations

import logging
import time
import uuid

import pytest

from chatda.broker.kafka import commit_batch, ensure_topics, make_consumer, make_producer
from chatda.broker.tansu import TansuBroker


def test_a_commit_the_broker_does_not_answer_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    topic, group = f"commit-{uuid.uuid4().hex[:8]}", f"test-{uuid.uuid4().hex[:6]}"
    with TansuBroker() as broker:
        ensure_topics(broker.bootstrap, {topic: 1})
        producer = make_producer(broker.bootstrap)
        for value in (b"a", b"b"):
            producer.send(topic, value)
        producer.flush()
        producer.close()
        consumer = make_consumer(broker.bootstrap, group, [topic])
        records = []
        deadline = time.monotonic() + 30
        while len(records) < 2 and time.monotonic() < deadline:
            records += [r for batch in consumer.poll(timeout_ms=500).values() for r in batch]
        assert len(records) == 2
        broker.stop()
        with caplog.at_level(logging.WARNING, logger="chatda.broker.kafka"):
            assert commit_batch(consumer, records, "test", timeout_ms=2000) is False
        assert "test commit not acknowledged, left to the next batch" in caplog.text
        consumer.close(autocommit=False, timeout_ms=1000)
