"""Job run history in the SQL store: every run, scheduled or by hand, leaves one row."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select, update

from chatda.db.tables import job_runs

STALE_AFTER = timedelta(hours=6)


class JobAlreadyRunning(RuntimeError):
    pass


def record_run(engine: Engine, job: str, trigger: str, fn: Callable[[], str]) -> dict[str, Any]:
    """Run ``fn`` and keep its outcome; a failure is stored (and re-raised) rather than lost.

    A job never overlaps itself, across processes too (the scheduler and a run by hand): a
    'running' row younger than STALE_AFTER makes a second start refuse.
    """
    now = datetime.now(UTC)
    with engine.begin() as conn:
        running = conn.execute(
            select(job_runs.c.id, job_runs.c.started_at).where(
                job_runs.c.job == job, job_runs.c.status == "running"
            )
        ).all()
        for row in running:
            started = row.started_at.replace(tzinfo=row.started_at.tzinfo or UTC)
            if now - started < STALE_AFTER:
                raise JobAlreadyRunning(f"job {job} is already running (run {row.id})")
            conn.execute(
                update(job_runs)
                .where(job_runs.c.id == row.id)
                .values(status="abandoned", finished_at=now)
            )
        inserted = conn.execute(
            insert(job_runs).values(
                job=job, trigger=trigger, started_at=datetime.now(UTC), status="running", detail=""
            )
        )
        run_id = inserted.inserted_primary_key[0]  # type: ignore[index]
    status, detail = "ok", ""
    try:
        detail = fn()
    except Exception as exc:
        status, detail = "error", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        with engine.begin() as conn:
            conn.execute(
                update(job_runs)
                .where(job_runs.c.id == run_id)
                .values(finished_at=datetime.now(UTC), status=status, detail=detail[:4000])
            )
    return {"job": job, "status": status, "detail": detail}


def recent_runs(engine: Engine, job: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    query = select(job_runs).order_by(job_runs.c.id.desc()).limit(limit)
    if job:
        query = query.where(job_runs.c.job == job)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]
