"""The API freezes its start-up heap: the cycle collector never walks the libraries and the
model again, so its full collections stop pausing every request (BENCHMARKS § 8)."""

from __future__ import annotations

import gc
from pathlib import Path

from fastapi.testclient import TestClient

from chatda.settings import Settings
from query.app import create_app


def test_the_start_up_heap_is_frozen(models_dir: Path, tmp_path: Path) -> None:
    gc.unfreeze()
    settings = Settings(data_dir=tmp_path, models_dir_override=models_dir, device="cpu")
    try:
        with TestClient(create_app(settings)) as client:
            # the libraries, the model and the app: far more than what requests leave behind
            assert gc.get_freeze_count() > 100_000
            assert client.get("/healthz").status_code == 200
    finally:
        gc.unfreeze()
