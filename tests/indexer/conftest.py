"""The environment a job runs in: settings from CHATDA_* variables, and its SQL store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine

from chatda.db.engine import make_engine, upgrade
from chatda.settings import get_settings


@contextmanager
def job_store(monkeypatch: pytest.MonkeyPatch, data_dir: Path, **env: str) -> Iterator[Engine]:
    """Set ``CHATDA_DATA_DIR`` and ``CHATDA_<KEY>`` for each ``env`` item, as `chatda jobs run`
    would see them, and yield the migrated SQL store of that data dir."""
    monkeypatch.setenv("CHATDA_DATA_DIR", str(data_dir))
    for key, value in env.items():
        monkeypatch.setenv(f"CHATDA_{key.upper()}", value)
    get_settings.cache_clear()
    engine = make_engine(get_settings().sql_url)
    upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()
        get_settings.cache_clear()
