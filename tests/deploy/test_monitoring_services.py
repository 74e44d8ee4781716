"""The metrics of the processes other than the API, as Prometheus scrapes them: the ingest
worker's lag per partition and the feedback consumer's records, stored events and lag (on a
real Tansu broker), and the scheduler's /metrics server with its job runs, failures and last
success (a real APScheduler over the SQL job store)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from kafka import TopicPartition
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine

from bench.server import free_port
from chatda.articles.topics import ensure_article_topics
from chatda.broker.kafka import ensure_topics, fetched_lag, make_consumer, make_producer
from chatda.db.engine import upgrade
from chatda.feedback.events import Click, FeedbackRecord
from chatda.feedback.store import FeedbackStore
from feedback_consumer import metrics as feedback_metrics
from feedback_consumer.consume import run as consume_events
from indexer.history import recent_runs
from indexer.scheduler import build_scheduler, run_named_job
from ingest import metrics as ingest_metrics
from tests.indexer.conftest import job_store


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_ingest_lag_is_kept_per_partition(kafka_bootstrap: str) -> None:
    topic = f"lag-{uuid.uuid4().hex[:8]}"
    ensure_article_topics(kafka_bootstrap, [topic], 2)
    producer = make_producer(kafka_bootstrap)
    try:
        sent = [producer.send(topic, partition=i % 2, value=b"x") for i in range(30)]
        for future in sent:
            future.get(timeout=30)
    finally:
        producer.close()
    consumer = make_consumer(kafka_bootstrap, f"lag-{topic}", [topic], max_poll_records=4)
    try:
        deadline = time.monotonic() + 30
        polled = 0
        while polled == 0 or len(fetched_lag(consumer)) < 2:  # joined, fetched from both partitions
            polled += sum(len(b) for b in consumer.poll(timeout_ms=500).values())
            assert time.monotonic() < deadline, "the consumer never fetched both partitions"
        lags = fetched_lag(consumer)
        expected = {
            (topic, p): consumer.highwater(TopicPartition(topic, p))
            - consumer.position(TopicPartition(topic, p))
            for p in (0, 1)
        }
    finally:
        consumer.close()
    assert lags == expected and sum(lags.values()) == 30 - polled > 0

    ingest_metrics.observe_lag(lags)
    scraped = samples(_exposition())
    for (t, p), lag in lags.items():
        key = ("chatda_ingest_partition_lag", frozenset({"topic": t, "partition": str(p)}.items()))
        assert scraped[key] == lag
    assert scraped[("chatda_ingest_consumer_lag", frozenset())] == sum(lags.values())

    ingest_metrics.observe_lag({(topic, 1): 3})  # a rebalance took partition 0 away
    scraped = samples(_exposition())
    held = {
        dict(labels)["partition"]
        for (name, labels) in scraped
        if name == "chatda_ingest_partition_lag" and dict(labels).get("topic") == topic
    }
    assert held == {"1"}
    assert scraped[("chatda_ingest_consumer_lag", frozenset())] == 3


def _exposition() -> str:
    return generate_latest().decode()


def test_feedback_consumer_counts_records_stored_events_and_lag(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = f"events-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_bootstrap, {topic: 1})
    engine = create_engine(f"sqlite:///{tmp_path / 'feedback.db'}")
    upgrade(engine)
    event = FeedbackRecord(
        event_id=uuid.uuid4(),
        received_at=datetime.now(UTC),
        query="송금",
        known_query=True,
        event=Click(type="click", query_id=uuid.uuid4(), clicked_id="a", position=1),
    ).model_dump_json()
    values = [event.encode(), event.encode(), b"not json"]  # one event, its replay, poison
    producer = make_producer(kafka_bootstrap)
    try:
        for value in values:
            producer.send(topic, value=value).get(timeout=30)
    finally:
        producer.close()
    before = samples(_exposition())
    feedback_metrics.LAG.set(-1)  # so the loop's own figure shows
    stop = threading.Event()
    worker = threading.Thread(
        target=consume_events,
        args=(kafka_bootstrap, topic, f"fb-{topic}", FeedbackStore(engine), stop),
        kwargs={"dead_letter_topic": f"{topic}-dlq", "partitions": 1},
    )
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while samples(_exposition())[("chatda_feedback_records_total", frozenset())] < before[
            ("chatda_feedback_records_total", frozenset())
        ] + len(values):
            assert time.monotonic() < deadline, "the consumer never consumed the records"
            time.sleep(0.2)
    finally:
        stop.set()
        worker.join(timeout=30)
        engine.dispose()
    after = samples(_exposition())
    stored = ("chatda_feedback_events_stored_total", frozenset())
    assert after[stored] == before[stored] + 1
    json_letters = ("chatda_feedback_dead_letters_total", frozenset({("reason", "json")}))
    assert after[json_letters] == before.get(json_letters, 0) + 1
    assert after[("chatda_feedback_consumer_lag", frozenset())] == 0


@pytest.fixture
def scheduler_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    port = free_port()
    jobs = '{"aggregate-feedback": "interval:1", "refresh-suggestions": "off"}'
    with job_store(monkeypatch, tmp_path, jobs=jobs, scheduler_metrics_port=str(port)):
        yield port


def _scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200
    return samples(response.text)


def test_scheduler_serves_job_runs_failures_and_last_success(scheduler_port: int) -> None:
    sched = build_scheduler(BackgroundScheduler())
    ok = frozenset({"job": "aggregate-feedback", "status": "ok"}.items())
    job = frozenset({"job": "aggregate-feedback"}.items())
    before = _scrape(scheduler_port)
    sched.start()
    try:
        deadline = time.monotonic() + 20
        while _scrape(scheduler_port).get(("chatda_job_runs_total", ok), 0) <= before.get(
            ("chatda_job_runs_total", ok), 0
        ):
            assert time.monotonic() < deadline, "the scheduled run was never counted"
            time.sleep(0.2)
        scraped = _scrape(scheduler_port)
        assert recent_runs_of("aggregate-feedback")
        assert scraped[("chatda_job_last_success_timestamp_seconds", job)] > time.time() - 60
        assert scraped[("chatda_job_run_seconds_count", job)] >= 1

        failed = frozenset({"job": "reindex", "status": "error"}.items())
        failures = scraped.get(("chatda_job_runs_total", failed), 0)
        with pytest.raises(Exception):  # noqa: B017 (no broker nor Milvus: whatever it raises)
            run_named_job("reindex", trigger="manual")
        assert _scrape(scheduler_port)[("chatda_job_runs_total", failed)] == failures + 1
    finally:
        sched.shutdown()
    with pytest.raises(httpx.HTTPError):  # the server stops with the scheduler
        httpx.get(f"http://127.0.0.1:{scheduler_port}/metrics", timeout=2)


def recent_runs_of(job: str) -> list[dict]:
    from chatda.db.engine import make_engine
    from chatda.settings import get_settings

    engine = make_engine(get_settings().sql_url)
    try:
        return recent_runs(engine, job)
    finally:
        engine.dispose()
