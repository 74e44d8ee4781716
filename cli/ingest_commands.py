"""``chatda publish``, ``chatda ingest`` and ``chatda articles …``: the article pipeline's CLI.

Registered on the main app without a group name, so ``publish`` and ``ingest`` are top-level
commands, next to ``serve``.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from chatda.settings import get_settings

app = typer.Typer()
articles_app = typer.Typer(help="The article message contract and index progress.")
app.add_typer(articles_app, name="articles")

_PUBLISH_BATCH = 500


@app.command()
def publish(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSON Lines of articles"),
    topic: str | None = typer.Option(None, help="default: CHATDA_ARTICLES_TOPIC"),
) -> None:
    """Bulk-publish a JSON Lines file; invalid lines are reported by number and skipped."""
    from pydantic import ValidationError
    from tqdm import tqdm

    from chatda.articles.message import ArticleMessage
    from chatda.articles.publisher import BrokerUnavailable, Publisher
    from chatda.input_errors import error_summary

    settings = get_settings()
    context = {"max_text_chars": settings.max_text_chars}
    with path.open("rb") as handle:
        total = sum(1 for _ in handle)
    published = invalid = 0
    try:
        with (
            Publisher.from_settings(settings, topic) as publisher,
            path.open("rb") as lines,  # bytes: pydantic reports invalid UTF-8 per line
            tqdm(total=total, unit="line", desc=f"publishing to {publisher.topic}") as bar,
        ):
            pending: list[ArticleMessage] = []
            for number, line in enumerate(lines, start=1):
                bar.update(1)
                if not line.strip():
                    continue
                try:
                    pending.append(ArticleMessage.model_validate_json(line, context=context))
                except ValidationError as exc:
                    invalid += 1
                    tqdm.write(f"line {number}: {error_summary(exc)}")
                if len(pending) >= _PUBLISH_BATCH:
                    published += len(publisher.publish_many(pending))
                    pending.clear()
            published += len(publisher.publish_many(pending))
    except BrokerUnavailable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"published {published} articles; {invalid} invalid lines skipped")
    if invalid:
        raise typer.Exit(1)


@app.command()
def ingest(
    topic: str | None = typer.Option(None, help="default: CHATDA_ARTICLES_TOPIC"),
    group: str | None = typer.Option(None, help="default: CHATDA_INGEST_GROUP_ID"),
    alias: str | None = typer.Option(None, help="default: CHATDA_ARTICLES_ALIAS"),
    dead_letter_topic: str | None = typer.Option(None, help="default: CHATDA_DEAD_LETTER_TOPIC"),
    batch_size: int | None = typer.Option(None, help="default: CHATDA_INGEST_BATCH_SIZE"),
    chunk_max_tokens: int | None = typer.Option(None, help="default: CHATDA_CHUNK_MAX_TOKENS"),
    metrics_port: int | None = typer.Option(None, help="serve Prometheus metrics on this port"),
    no_dead_letters: bool = typer.Option(
        False, "--no-dead-letters", help="count poison records only (a re-index replay)"
    ),
) -> None:
    """Run an ingest worker until SIGTERM/SIGINT (then finish the batch, commit, exit 0)."""
    from ingest.main import main as run_worker

    run_worker(
        topic=topic,
        group=group,
        alias=alias,
        dead_letter_topic=dead_letter_topic,
        batch_size=batch_size,
        chunk_max_tokens=chunk_max_tokens,
        metrics_port=metrics_port,
        dead_letters=not no_dead_letters,
    )


@articles_app.command()
def schema(
    write: bool = typer.Option(False, "--write", help="rewrite chatda/schemas/article.schema.json"),
) -> None:
    """Print the JSON Schema of an article message (or regenerate the committed file)."""
    from chatda.articles.schema import render_schema, schema_path

    if write:
        schema_path().write_text(render_schema(), encoding="utf-8")
        typer.echo(f"wrote {schema_path()}")
    else:
        typer.echo(render_schema(), nl=False)


@articles_app.command()
def wait(
    timeout: float = typer.Option(300.0, help="seconds before giving up"),
    topic: str | None = typer.Option(None, help="default: CHATDA_ARTICLES_TOPIC"),
    group: str | None = typer.Option(None, help="default: CHATDA_INGEST_GROUP_ID"),
) -> None:
    """Block until every published article is searchable (the serving collection's group
    has no lag)."""
    from chatda.articles.progress import wait_until_indexed
    from chatda.storage.milvus_client import connect

    settings = get_settings()
    if not settings.kafka_bootstrap:
        typer.echo("error: no Kafka broker configured (set CHATDA_KAFKA_BOOTSTRAP)", err=True)
        raise typer.Exit(2)
    client = connect(settings.milvus_uri, settings.data_dir)
    try:
        wait_until_indexed(
            settings.kafka_bootstrap,
            client,
            group or settings.ingest_group_id,
            settings.articles_alias,
            topic or settings.articles_topic,
            timeout,
        )
    except TimeoutError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        client.close()
    typer.echo(json.dumps({"indexed": True}))
