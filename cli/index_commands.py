"""``chatda index status``: the article collections, the alias, models, rows and ingest lag."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from chatda.settings import Settings, get_settings

if TYPE_CHECKING:
    from pymilvus import MilvusClient

app = typer.Typer(
    help="The article index (Milvus collections behind the alias).", no_args_is_help=True
)


def _milvus(settings: Settings) -> MilvusClient:
    """The Milvus the stack uses: configured, or the running ``chatda up``'s (found through
    ``chatda.local_stack``). Never an embedded one opened here: it would be a second, empty
    database beside the stack's, and these commands would describe the wrong index."""
    from chatda.storage.milvus_client import connect

    if not settings.milvus_uri:
        typer.echo(
            f"error: no Milvus to inspect: CHATDA_MILVUS_URI is unset and no `chatda up` is "
            f"running over {settings.data_dir.resolve()}; start it, or set CHATDA_MILVUS_URI",
            err=True,
        )
        raise typer.Exit(2)
    return connect(settings.milvus_uri, settings.data_dir)


@app.command()
def status(as_json: bool = typer.Option(False, "--json")) -> None:
    """Collections with their model and row count, which one the alias serves, ingest lag."""
    from chatda.articles.progress import serving_lag
    from chatda.models.registry import ModelRegistry
    from indexer.index_status import index_status

    settings = get_settings()
    client = _milvus(settings)
    lag = None
    if settings.kafka_bootstrap:
        try:
            lag = serving_lag(
                settings.kafka_bootstrap,
                client,
                settings.ingest_group_id,
                settings.articles_alias,
                settings.articles_topic,
            )
        except Exception as exc:  # lag is informative; an unreachable broker must not hide the rest
            typer.echo(f"ingest lag unavailable: {exc}", err=True)
    report = index_status(client, ModelRegistry(settings.models_dir), settings.articles_alias, lag)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        return
    typer.echo(
        f"alias {report.alias} → {report.target or '(none)'}   ingest lag: "
        f"{'?' if report.ingest_lag is None else report.ingest_lag}"
    )
    for c in report.collections:
        mark = "*" if c.serving else " "
        typer.echo(f"{mark} {c.name:60} {c.model or '(unknown model)':28} {c.rows:>8} rows")


@app.command()
def reindex(
    model: str | None = typer.Option(
        None, help="NAME@VERSION or VERSION (default: the serving model)"
    ),
    force: bool = typer.Option(False, help="swap even if verification finds a problem"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Build a new collection with MODEL beside the live one, verify it, swap the alias."""
    from chatda.db.engine import make_engine, upgrade
    from chatda.models.registry import ModelNotFound
    from indexer.history import JobAlreadyRunning
    from indexer.reindex import ReindexError
    from indexer.reindex_job import run_guarded

    settings = get_settings()
    engine = make_engine(settings.sql_url)
    upgrade(engine)
    try:
        report = run_guarded(settings, engine, model, force)
    except (ReindexError, ModelNotFound, JobAlreadyRunning) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    finally:
        engine.dispose()
    assert report is not None
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        typer.echo(report.summary())


@app.command()
def rollback() -> None:
    """Point the alias back at the previous build of a registered model (API and workers follow)."""
    from chatda.models.registry import ModelRegistry
    from indexer.collections import IndexStateError
    from indexer.collections import rollback as roll_back

    settings = get_settings()
    client = _milvus(settings)
    try:
        before, after = roll_back(
            client, ModelRegistry(settings.models_dir), settings.articles_alias
        )
    except IndexStateError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"alias {settings.articles_alias}: {before} → {after}")


@app.command()
def gc(keep: int = typer.Option(2, help="previous builds kept for rollback")) -> None:
    """Drop builds older than the serving one, beyond the newest KEEP."""
    from indexer.collections import IndexStateError
    from indexer.collections import gc as collect

    settings = get_settings()
    client = _milvus(settings)
    try:
        dropped = collect(client, settings.articles_alias, keep)
    except IndexStateError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo("dropped: " + (", ".join(dropped) or "nothing"))
