"""``chatda scheduler`` and ``chatda jobs list|run``: the indexer's scheduled jobs."""

from __future__ import annotations

import json
from typing import Any

import typer

from chatda.settings import get_settings

app = typer.Typer(help="Indexer jobs: list, run by hand.", no_args_is_help=True)


@app.command("list")
def list_jobs(as_json: bool = typer.Option(False, "--json")) -> None:
    """Every job with its schedule and its recent runs."""
    from chatda.db.engine import make_engine, upgrade
    from indexer.history import recent_runs
    from indexer.jobs import JOBS

    settings = get_settings()
    engine = make_engine(settings.sql_url)
    upgrade(engine)
    rows: list[dict[str, Any]] = [
        {
            "name": job.name,
            "description": job.description,
            "schedule": settings.jobs.get(job.name, "off"),
            "runs": [
                {k: str(v) if k.endswith("_at") else v for k, v in run.items() if k != "id"}
                for run in recent_runs(engine, job.name, limit=5)
            ],
        }
        for job in JOBS.values()
    ]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        typer.echo(f"{row['name']:20} {row['schedule']:20} {row['description']}")
        for run in row["runs"]:
            typer.echo(
                f"    {run['started_at']}  {run['status']:9} {run['trigger']:9} {run['detail']}"
            )


@app.command("run")
def run_job(name: str) -> None:
    """Run one job now (it still never overlaps a scheduled run of itself)."""
    from indexer.jobs import JOBS
    from indexer.scheduler import run_named_job

    if name not in JOBS:
        raise typer.BadParameter(f"unknown job {name!r}; known: {', '.join(sorted(JOBS))}")
    result = run_named_job(name, trigger="manual")
    typer.echo(f"{name}: {result['status']} {result['detail']}")
    if result["status"] != "ok":
        raise typer.Exit(1)


def scheduler() -> None:
    """Run the indexer's scheduler until stopped (jobs from CHATDA_JOBS)."""
    from indexer.main import main as run_scheduler

    run_scheduler()
