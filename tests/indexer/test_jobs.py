"""Scheduled jobs: run history, no overlap across processes, persistence, feedback aggregation."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine, insert, select

from chatda.db.tables import item_stats, job_runs, search_events
from indexer import history
from indexer.history import STALE_AFTER, JobAlreadyRunning, recent_runs, record_run
from indexer.scheduler import build_scheduler, parse_schedule, run_named_job
from tests.indexer.conftest import job_store


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    with job_store(monkeypatch, tmp_path, jobs='{"aggregate-feedback": "interval:1"}') as engine:
        yield engine


def test_runs_are_recorded_with_outcome(engine) -> None:
    record_run(engine, "demo", "manual", lambda: "fine")
    with pytest.raises(ZeroDivisionError):
        record_run(engine, "demo", "manual", lambda: str(1 / 0))
    runs = recent_runs(engine, "demo")
    assert [r["status"] for r in runs] == ["error", "ok"]
    assert "ZeroDivisionError" in runs[0]["detail"] and runs[1]["detail"] == "fine"


def test_a_job_never_overlaps_itself(engine) -> None:
    release = threading.Event()
    started = threading.Event()

    def slow() -> str:
        started.set()
        release.wait(10)
        return "done"

    worker = threading.Thread(target=record_run, args=(engine, "slow", "schedule", slow))
    worker.start()
    started.wait(5)
    with pytest.raises(JobAlreadyRunning):
        record_run(engine, "slow", "manual", lambda: "second")
    release.set()
    worker.join()
    assert record_run(engine, "slow", "manual", lambda: "after")["status"] == "ok"


def test_a_killed_run_stops_blocking_once_its_heartbeat_is_stale(engine) -> None:
    """A run SIGKILLed mid-way leaves a 'running' row; it blocks only while its beat is fresh."""
    now = datetime.now(UTC)
    killed = {"job": "build", "trigger": "schedule", "status": "running", "detail": ""}
    with engine.begin() as conn:
        conn.execute(
            insert(job_runs),
            [
                killed | {"started_at": now - timedelta(hours=2), "heartbeat_at": now},
                killed | {"job": "old", "started_at": now, "heartbeat_at": now - STALE_AFTER},
            ],
        )
    with pytest.raises(JobAlreadyRunning):
        record_run(engine, "build", "manual", lambda: "blocked")
    assert record_run(engine, "old", "manual", lambda: "fine")["status"] == "ok"
    assert [r["status"] for r in recent_runs(engine, "old")] == ["ok", "abandoned"]


def test_a_long_run_keeps_beating(engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history, "HEARTBEAT_S", 0.05)
    beats: list[datetime] = []

    def long_job() -> str:
        for _ in range(3):
            time.sleep(0.3)
            (run,) = [r for r in recent_runs(engine, "long") if r["status"] == "running"]
            beats.append(run["heartbeat_at"])
        return "done"

    record_run(engine, "long", "manual", long_job)
    assert beats[0] < beats[1] < beats[2]


def test_feedback_aggregation_computes_click_through(engine) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "event_id": "e1",
            "type": "impression",
            "query_id": "q1",
            "known_query": True,
            "shown": [{"id": "a-1", "position": 1}, {"id": "a-2", "position": 2}],
            "received_at": now,
        },
        {
            "event_id": "e2",
            "type": "impression",
            "query_id": "q2",
            "known_query": True,
            "shown": [{"id": "a-1", "position": 1}],
            "received_at": now,
        },
        {
            "event_id": "e3",
            "type": "click",
            "query_id": "q1",
            "known_query": True,
            "clicked_id": "a-1",
            "position": 1,
            "received_at": now,
        },
    ]
    blank = {"query": None, "shown": None, "clicked_id": None, "position": None, "dwell_ms": None}
    with engine.begin() as conn:
        conn.execute(insert(search_events), [blank | row for row in rows])
    result = run_named_job("aggregate-feedback", trigger="manual")
    assert result["status"] == "ok"
    with engine.connect() as conn:
        stats = {r.item_id: r for r in conn.execute(select(item_stats))}
    assert stats["a-1"].impressions == 2 and stats["a-1"].clicks == 1
    assert stats["a-1"].ctr == pytest.approx(0.5)
    assert stats["a-2"].clicks == 0


def test_scheduler_persists_jobs_and_fires_them(engine) -> None:
    sched = build_scheduler(BackgroundScheduler())
    sched.start()
    try:
        deadline = time.monotonic() + 20
        while not recent_runs(engine, "aggregate-feedback"):
            assert time.monotonic() < deadline, "the interval job never ran"
            time.sleep(0.2)
    finally:
        sched.shutdown()
    restarted = build_scheduler(BackgroundScheduler())
    restarted.start(paused=True)
    try:
        job = restarted.get_job("aggregate-feedback")
        assert job is not None and job.max_instances == 1
    finally:
        restarted.shutdown()
    assert recent_runs(engine, "aggregate-feedback")[0]["trigger"] == "schedule"


@pytest.mark.parametrize("spec", ["interval:60", "cron:0 3 * * *", "off"])
def test_schedule_specs(spec) -> None:
    trigger = parse_schedule(spec)
    assert (trigger is None) == (spec == "off")


def test_bad_schedule_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="interval:SECONDS"):
        parse_schedule("every day")
