"""The metrics of the processes other than the API, as Prometheus scrapes them: the ingest
worker's lag per partition (on a real Tansu broker) and the scheduler's /metrics server with
its job runs, failures and last success (a real APScheduler over the SQL job store)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from kafka import TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from bench.server import free_port
from chatda.articles.topics import ensure_article_topics
from chatda.broker.kafka import make_consumer, make_producer
from indexer.history import recent_runs
from indexer.scheduler import build_scheduler, run_named_job
from ingest import metrics as ingest_metrics
from ingest.worker import _lag
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
        while polled == 0 or len(_lag(consumer)) < 2:  # joined, fetched from both partitions
            polled += sum(len(b) for b in consumer.poll(timeout_ms=500).values())
            assert time.monotonic() < deadline, "the consumer never fetched both partitions"
        lags = _lag(consumer)
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
    from prometheus_client import generate_latest

    return generate_latest().decode()


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
