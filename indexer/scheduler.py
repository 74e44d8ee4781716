"""``chatda scheduler``: APScheduler with its job store in the SQL store.

Schedules come from configuration (``CHATDA_JOBS``: name → "interval:SECONDS", "cron:MIN HOUR
DOM MON DOW" or "off"). The job store is persistent, so a restart keeps next-run times; jobs
never overlap themselves (max one instance here, and a run-history guard across processes).
"""

from __future__ import annotations

import logging
import time

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine

from chatda.db.engine import make_engine, upgrade
from chatda.settings import Settings, get_settings
from indexer.history import JobAlreadyRunning, record_run
from indexer.jobs import JOBS, Job
from indexer.metrics import observe_run, serve_metrics

log = logging.getLogger(__name__)
# APScheduler logs two lines per run; with a job every few seconds (reconcile-outbox) that
# floods the log, and every run that matters is in the run history (indexer/history.py).
# Failures are still logged, at ERROR.
logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)


def parse_schedule(spec: str) -> BaseTrigger | None:
    kind, _, value = spec.partition(":")
    if kind == "off":
        return None
    if kind == "interval":
        return IntervalTrigger(seconds=float(value))
    if kind == "cron":
        return CronTrigger.from_crontab(value)
    raise ValueError(f"bad schedule {spec!r}: use interval:SECONDS, cron:CRONTAB or off")


def run_named_job(name: str, trigger: str = "schedule") -> dict:
    """Entry point the persistent job store refers to (by import path), and `jobs run` calls.

    Every run is counted in ``indexer.metrics`` with its outcome, an exception as ``error``.
    """
    settings = get_settings()
    engine = make_engine(settings.sql_url)
    upgrade(engine)
    job = JOBS[name]
    started = time.monotonic()
    status = "error"
    try:
        if job.quiet and trigger == "schedule":
            result = _run_quietly(job, settings, engine, trigger)
        else:
            result = record_run(engine, name, trigger, lambda: job.run(settings, engine))
        status = result["status"]
        return result
    except JobAlreadyRunning as exc:
        log.warning("%s", exc)
        status = "skipped"
        return {"job": name, "status": status, "detail": str(exc)}
    finally:
        observe_run(name, status, time.monotonic() - started)
        engine.dispose()


def _run_quietly(job: Job, settings: Settings, engine: Engine, trigger: str) -> dict:
    """Run first, record after: only a run with a detail or an error reaches the history,
    through the same ``record_run`` as every other run (its row's start is the recording)."""
    error: Exception | None = None
    detail = ""
    try:
        detail = job.run(settings, engine)
    except Exception as exc:
        error = exc
    if error is None and not detail:
        return {"job": job.name, "status": "ok", "detail": ""}

    def outcome() -> str:
        if error is not None:
            raise error
        return detail

    return record_run(engine, job.name, trigger, outcome)


def build_scheduler(scheduler: BaseScheduler | None = None) -> BaseScheduler:
    """The scheduler with every configured job; with ``CHATDA_SCHEDULER_METRICS_PORT`` set it
    serves ``/metrics`` there (on ``CHATDA_METRICS_HOST``) from now until it shuts down."""
    settings = get_settings()
    engine = make_engine(settings.sql_url)
    upgrade(engine)
    scheduler = scheduler or BlockingScheduler()
    scheduler.configure(
        jobstores={"default": SQLAlchemyJobStore(engine=engine)},
        job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 300},
    )
    for name, spec in settings.jobs.items():
        if name not in JOBS:
            raise ValueError(f"unknown job {name!r} in CHATDA_JOBS; known: {sorted(JOBS)}")
        trigger = parse_schedule(spec)
        if trigger is None:
            continue
        scheduler.add_job(
            run_named_job, trigger, args=[name], id=name, name=name, replace_existing=True
        )
    if settings.scheduler_metrics_port:
        serve_metrics(scheduler, settings.metrics_host, settings.scheduler_metrics_port)
    return scheduler
