"""Start a server (``chatda serve``, or another for comparison) as a separate process for a
benchmark, wait until it answers, stop it afterwards."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def api_server(
    env: dict[str, str], timeout_s: float = 120, checkout: str | None = None
) -> Iterator[str]:
    """``checkout``: serve the code of another tree (e.g. a ``git worktree`` of an older
    commit) with this environment, for before/after runs against one stack."""
    port = free_port()
    full_env = {**os.environ, "CHATDA_LOG_LEVEL": "WARNING", **env}
    if checkout:
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [checkout, env.get("PYTHONPATH")]))
    # the CLI left the library in issue #24: an older tree has it at chatda/cli
    old_layout = checkout is not None and not (Path(checkout) / "cli" / "main.py").exists()
    module = "chatda.cli.main" if old_layout else "cli.main"
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "serve", "--port", str(port)],
        env=full_env,
        cwd=checkout,
    )
    base = f"http://127.0.0.1:{port}"
    with serving(proc, f"{base}/healthz", timeout_s, "API"):
        yield base


@contextmanager
def serving(proc: subprocess.Popen, health_url: str, timeout_s: float, what: str) -> Iterator[None]:
    """Wait until the server ``proc`` answers ``health_url`` with 200; stop it on leaving
    (terminate, then kill after 20 s), whether the wait or the benchmark failed."""
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited early with {proc.returncode}")
            try:
                if httpx.get(health_url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not become healthy in {timeout_s:.0f} s")
            time.sleep(0.3)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
