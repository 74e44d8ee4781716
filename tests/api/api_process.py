"""``chatda serve`` as a real child process: its own logging set-up, uvicorn, a port."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from chatda.process import ManagedProcess, free_port

START_TIMEOUT_S = 180.0


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def api_process(
    env: Mapping[str, str], log_path: Path, entry: str = "cli.main"
) -> Iterator[tuple[str, ManagedProcess]]:
    """``python -m <entry> serve`` with ``env`` over the inherited environment; yields the base
    URL once /healthz answers, and the process (stopped on exit; the log at ``log_path`` stays).

    ``entry`` is the chatda command line or a test module that wraps it.
    """
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = ManagedProcess(
        "chatda-api",
        [sys.executable, "-m", entry, "serve", "--host", "127.0.0.1", "--port", str(port)],
        log_path=log_path,
    )
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        process.start(lambda: _healthy(base), START_TIMEOUT_S)
    try:
        yield base, process
    finally:
        process.stop()
