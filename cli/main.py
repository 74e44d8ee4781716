"""The ``chatda`` command: one entry point for every process and job.

The top layer: it parses options and dispatches to the services (``query``, ``ingest``,
``indexer``, ``train``, ``feedback_consumer``), each of which owns its process start-up.
"""

from __future__ import annotations

import json

import typer

from chatda.logs import configure_logging
from chatda.settings import get_settings
from cli import (
    catalog_commands,
    index_commands,
    ingest_commands,
    jobs_commands,
    model_commands,
    train_commands,
)
from cli.eval_command import eval_command
from cli.up_command import up

app = typer.Typer(help="chatda 찾다 — Korean-first natural-language search.", no_args_is_help=True)
app.add_typer(model_commands.app, name="model")
app.add_typer(ingest_commands.app)
app.add_typer(catalog_commands.app, name="catalog")
app.add_typer(train_commands.app, name="train")
app.command("eval")(eval_command)
app.command("up")(up)
app.add_typer(jobs_commands.app, name="jobs")
app.add_typer(index_commands.app, name="index")
app.command("scheduler")(jobs_commands.scheduler)


@app.command("feedback-consumer")
def feedback_consumer() -> None:
    """Persist search events from Kafka into the SQL store (until SIGTERM)."""
    from feedback_consumer.main import main as run_consumer

    run_consumer()


@app.callback()
def _setup() -> None:
    settings = get_settings()
    configure_logging(settings)
    if not settings.data_dir.exists():
        # the default is relative (./.chatda): run from another folder, a command would
        # otherwise quietly import into, or export from, a new empty store
        typer.echo(
            f"· no data dir at {settings.data_dir.resolve()} yet: a command that stores data "
            "creates it there (CHATDA_DATA_DIR names it; make uses the checkout's .chatda)",
            err=True,
        )


@app.command()
def config() -> None:
    """Print the effective settings (secrets masked)."""
    typer.echo(json.dumps(get_settings().masked(), ensure_ascii=False, indent=2, default=str))


@app.command()
def serve(
    host: str | None = typer.Option(None, help="default: CHATDA_API_HOST"),
    port: int | None = typer.Option(None, help="default: CHATDA_API_PORT"),
) -> None:
    """Run the search API (query/)."""
    from query.main import main as run_api

    run_api(host, port)


if __name__ == "__main__":
    app()
