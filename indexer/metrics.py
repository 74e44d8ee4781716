"""Prometheus metrics of the indexer's jobs, and the scheduler process's ``/metrics`` server.

The run history (``indexer.history``) says what each run did; these say it to an alert: a job
failing, a job that has not succeeded for longer than its schedule allows (the last success
timestamp), how long runs take. Runs by hand (``chatda jobs run``) count in their own
short-lived process, which nothing scrapes; the scheduler's runs are the ones that matter.
"""

from __future__ import annotations

import time

from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN, SchedulerEvent
from apscheduler.schedulers.base import BaseScheduler
from prometheus_client import Counter, Gauge, Histogram, start_http_server

RUNS = Counter(
    "chatda_job_runs_total",
    "Indexer job runs, by job and outcome (ok, error, skipped: another run held the job)",
    ["job", "status"],
)
RUN_SECONDS = Histogram(
    "chatda_job_run_seconds",
    "Wall time of one indexer job run, by job",
    ["job"],
    buckets=(0.05, 0.25, 1, 5, 15, 60, 300, 900, 1800, 3600, 4 * 3600),
)
LAST_SUCCESS = Gauge(
    "chatda_job_last_success_timestamp_seconds",
    "Unix time the job last finished without an error, by job (absent: not since start)",
    ["job"],
)


def observe_run(job: str, status: str, seconds: float) -> None:
    RUNS.labels(job=job, status=status).inc()
    RUN_SECONDS.labels(job=job).observe(seconds)
    if status == "ok":
        LAST_SUCCESS.labels(job=job).set(time.time())


def serve_metrics(scheduler: BaseScheduler, host: str, port: int) -> None:
    """Serve ``/metrics`` on ``host:port`` for as long as ``scheduler`` runs."""
    server, thread = start_http_server(port, addr=host)

    def stop(_: SchedulerEvent) -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    scheduler.add_listener(stop, EVENT_SCHEDULER_SHUTDOWN)
