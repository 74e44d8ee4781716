"""Job run history in the SQL store: every run, scheduled or by hand, leaves one row."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select, update

from chatda.db.tables import job_runs
from chatda.db.timestamps import as_utc

log = logging.getLogger(__name__)

HEARTBEAT_S = 5.0
STALE_AFTER = timedelta(seconds=6 * HEARTBEAT_S)


class JobAlreadyRunning(RuntimeError):
    pass


def record_run(engine: Engine, job: str, trigger: str, fn: Callable[[], str]) -> dict[str, Any]:
    """Run ``fn`` and keep its outcome; a failure is stored (and re-raised) rather than lost.

    A job never overlaps itself, across processes too (the scheduler and a run by hand): a
    'running' row that beat within STALE_AFTER makes a second start refuse. The run beats
    every HEARTBEAT_S from a thread, so a run that was killed (SIGKILL, a lost host) stops
    blocking its job within seconds, while a long one (a re-index) keeps it for as long as
    it lives.
    """
    now = datetime.now(UTC)
    with engine.begin() as conn:
        running = conn.execute(
            select(job_runs.c.id, job_runs.c.started_at, job_runs.c.heartbeat_at).where(
                job_runs.c.job == job, job_runs.c.status == "running"
            )
        ).all()
        for row in running:
            beat = row.heartbeat_at or row.started_at
            if now - as_utc(beat) < STALE_AFTER:
                raise JobAlreadyRunning(f"job {job} is already running (run {row.id})")
            conn.execute(
                update(job_runs)
                .where(job_runs.c.id == row.id)
                .values(status="abandoned", finished_at=now)
            )
        started = datetime.now(UTC)
        inserted = conn.execute(
            insert(job_runs).values(
                job=job,
                trigger=trigger,
                started_at=started,
                heartbeat_at=started,
                status="running",
                detail="",
            )
        )
        run_id = inserted.inserted_primary_key[0]  # type: ignore[index]
    status, detail = "ok", ""
    done = threading.Event()
    beating = threading.Thread(
        target=_beat, args=(engine, run_id, done), name=f"job-{job}-heartbeat", daemon=True
    )
    beating.start()
    try:
        detail = fn()
    except Exception as exc:
        status, detail = "error", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        done.set()
        beating.join()
        with engine.begin() as conn:
            conn.execute(
                update(job_runs)
                .where(job_runs.c.id == run_id)
                .values(finished_at=datetime.now(UTC), status=status, detail=detail[:4000])
            )
    return {"job": job, "status": status, "detail": detail}


def _beat(engine: Engine, run_id: int, done: threading.Event) -> None:
    while not done.wait(HEARTBEAT_S):
        try:
            with engine.begin() as conn:
                conn.execute(
                    update(job_runs)
                    .where(job_runs.c.id == run_id)
                    .values(heartbeat_at=datetime.now(UTC))
                )
        except Exception:  # one missed beat is harmless; the next one may get through
            log.warning("job run %s: heartbeat failed", run_id, exc_info=True)


def recent_runs(engine: Engine, job: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    query = select(job_runs).order_by(job_runs.c.id.desc()).limit(limit)
    if job:
        query = query.where(job_runs.c.job == job)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]
