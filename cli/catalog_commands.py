"""``chatda catalog …``: import and export the intent catalog file."""

from __future__ import annotations

from pathlib import Path

import typer

from chatda.catalog.errors import CatalogError
from chatda.catalog.file_format import dump_catalog, read_catalog
from chatda.catalog.store import CatalogStore
from chatda.db.engine import make_engine, upgrade
from chatda.settings import get_settings

app = typer.Typer(help="Intent catalog: import, export.", no_args_is_help=True)


def _store() -> CatalogStore:
    engine = make_engine(get_settings().sql_url)
    upgrade(engine)
    return CatalogStore(engine)


@app.command("import")
def import_catalog(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="catalog YAML/JSON"),
    mode: str = typer.Option("replace", help="replace: file becomes the catalog; merge: upsert"),
) -> None:
    """Validate the whole file, then write it in one transaction (nothing on any error)."""
    if mode not in ("replace", "merge"):
        raise typer.BadParameter("mode must be 'replace' or 'merge'")
    try:
        count = _store().import_intents(read_catalog(path), mode)  # type: ignore[arg-type]
    except CatalogError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"imported {count} intents from {path} ({mode})")


@app.command("export")
def export_catalog(
    path: Path | None = typer.Argument(None, help="write here instead of standard output"),
) -> None:
    text = dump_catalog(_store().list())
    if path is None:
        typer.echo(text, nl=False)
    else:
        path.write_text(text, encoding="utf-8")
        typer.echo(f"exported to {path}")
