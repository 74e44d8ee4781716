"""Named, versioned models on disk: ``<models_dir>/<name>/<version>/`` plus a serving pointer.

Every version is a complete sentence-transformers folder with ``chatda_manifest.json`` written
inside it before the folder is renamed into place, so a half-written version is never visible.
The file ``<models_dir>/<name>/SERVING`` names the version the services load.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

MANIFEST = "chatda_manifest.json"
SERVING = "SERVING"


class Prompts(BaseModel):
    query: str = "query: "
    passage: str = "passage: "


class ModelManifest(BaseModel):
    """What a model is and where it came from: the contract between train/, indexer/ and query/."""

    name: str
    version: str
    dim: int
    max_seq_length: int
    prompts: Prompts = Field(default_factory=Prompts)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    source: dict[str, Any] = Field(default_factory=dict)
    parent: str | None = None
    training: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


class ModelVersion(BaseModel):
    manifest: ModelManifest
    path: Path
    serving: bool = False

    def summary(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "name": m.name,
            "version": m.version,
            "ref": m.ref,
            "path": str(self.path),
            "dim": m.dim,
            "max_seq_length": m.max_seq_length,
            "prompts": m.prompts.model_dump(),
            "serving": self.serving,
            "created_at": m.created_at.isoformat(),
            "parent": m.parent,
            "evaluation": m.evaluation,
        }


class ModelNotFound(LookupError):
    pass


def parse_ref(ref: str, default_name: str) -> tuple[str, str | None]:
    """``name@version``, ``name@`` (serving version), or a bare version of the default name."""
    if "@" in ref:
        name, version = ref.split("@", 1)
        return name or default_name, version or None
    return default_name, ref


class ModelRegistry:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, name: str) -> Path:
        return self.root / name

    def versions(self, name: str | None = None) -> list[ModelVersion]:
        names = [name] if name else sorted(p.name for p in self.root.glob("*") if p.is_dir())
        found: list[ModelVersion] = []
        for n in names:
            serving = self.serving_version(n)
            for vdir in sorted(self._dir(n).glob("*")):
                manifest = vdir / MANIFEST
                if vdir.name.startswith(".") or not manifest.is_file():
                    continue
                m = ModelManifest.model_validate_json(manifest.read_text())
                found.append(ModelVersion(manifest=m, path=vdir, serving=m.version == serving))
        found.sort(key=lambda v: (v.manifest.name, v.manifest.created_at))
        return found

    def get(self, name: str, version: str | None = None) -> ModelVersion:
        version = version or self.serving_version(name)
        if version is None:
            raise ModelNotFound(
                f"no serving version for model {name!r}; run `chatda model prepare`"
            )
        vdir = self._dir(name) / version
        manifest = vdir / MANIFEST
        if not manifest.is_file():
            raise ModelNotFound(f"model {name}@{version} not found in {self.root}")
        m = ModelManifest.model_validate_json(manifest.read_text())
        return ModelVersion(manifest=m, path=vdir, serving=version == self.serving_version(name))

    def exists(self, name: str, version: str) -> bool:
        return (self._dir(name) / version / MANIFEST).is_file()

    def serving_version(self, name: str) -> str | None:
        pointer = self._dir(name) / SERVING
        return pointer.read_text().strip() or None if pointer.is_file() else None

    def set_serving(self, name: str, version: str) -> None:
        if not self.exists(name, version):
            raise ModelNotFound(f"model {name}@{version} not found")
        _atomic_write(self._dir(name) / SERVING, version + "\n")

    @contextmanager
    def staging(self, manifest: ModelManifest) -> Iterator[Path]:
        """Yield an empty folder for a new version; it appears under its name only on success."""
        target = self._dir(manifest.name) / manifest.version
        if target.exists():
            raise FileExistsError(
                f"model {manifest.ref} already exists; versions are never overwritten"
            )
        tmp = self._dir(manifest.name) / f".staging-{manifest.version}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        try:
            yield tmp
            (tmp / MANIFEST).write_text(manifest.model_dump_json(indent=2))
            try:
                os.rename(tmp, target)
            except OSError as exc:
                if target.exists():
                    raise FileExistsError(
                        f"model {manifest.ref} was registered by another process meanwhile"
                    ) from exc
                raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def clean_staging(self, older_than_s: float = 3600) -> int:
        """Remove folders left by interrupted writes (a crash mid-conversion or mid-training).

        Only old ones: a young staging folder may belong to another process still writing.
        """
        cutoff = time.time() - older_than_s
        stale = [p for p in self.root.glob("*/.staging-*") if p.stat().st_mtime < cutoff]
        for path in stale:
            shutil.rmtree(path, ignore_errors=True)
        return len(stale)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(text)
    os.replace(tmp, path)


def manifest_json(versions: list[ModelVersion]) -> str:
    return json.dumps([v.summary() for v in versions], ensure_ascii=False, indent=2)
