"""Secrets never reach a log or a terminal (issue 23, item 5).

A real API process (``chatda serve``, its own logging set-up and uvicorn) gets a request whose
handler logs the Authorization header and then fails: the log holds one plain traceback, no
local variables, and neither token nor the Milvus URI's password, in text and JSON mode.
"""

from __future__ import annotations

import io
import json
import logging
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from chatda.logs import configure_logging
from chatda.settings import get_settings
from cli.main import app
from tests.api.api_process import api_process
from tests.api.failing_route_cli import FAILING_PATH, FAILURE

ADMIN_TOKEN = "adm-7f3c9e1b5d2a4e6f"
PUBLISHER_TOKEN = "pub-91d2e8c4b7a3f605"
MILVUS_PASSWORD = "milvus-pw-4e1d"
TRACEBACK = "Traceback (most recent call last)"


@pytest.fixture(scope="module", params=["text", "json"])
def failure_log(
    request: pytest.FixtureRequest,
    models_dir: Path,
    milvus_uri: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[str, str]:
    """(mode, the log of an API process that served one failing request)."""
    mode = request.param
    root = tmp_path_factory.mktemp(f"logs-{mode}")
    host_port = milvus_uri.removeprefix("http://")
    env = {
        "CHATDA_DATA_DIR": str(root / "data"),
        "CHATDA_MODELS_DIR": str(models_dir),
        "CHATDA_DEVICE": "cpu",
        "CHATDA_LOG_JSON": "true" if mode == "json" else "false",
        "CHATDA_LOG_LEVEL": "INFO",
        "CHATDA_ADMIN_TOKEN": ADMIN_TOKEN,
        "CHATDA_PUBLISHER_TOKEN": PUBLISHER_TOKEN,
        # milvus-lite ignores credentials; the API logs the URI it connects to
        "CHATDA_MILVUS_URI": f"http://root:{MILVUS_PASSWORD}@{host_port}",
    }
    log_path = root / "api.log"
    with api_process(env, log_path, entry="tests.api.failing_route_cli") as (base, _):
        response = httpx.get(
            base + FAILING_PATH, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
        )
        assert response.status_code == 500
    return mode, log_path.read_text(encoding="utf-8")


def _failure_record(mode: str, log: str) -> str:
    """The text of the one record that logged the failing request's exception."""
    if mode == "json":
        records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        failed = [r for r in records if FAILURE in r.get("exception", "")]
        assert len(failed) == 1 and failed[0]["logger"] == "uvicorn.error", log
        return str(failed[0]["exception"])
    start = log.index("Exception in ASGI application")
    end = log.find("\n20", start)  # the next line that starts with a timestamp
    return log[start:] if end == -1 else log[start:end]


def test_one_plain_traceback_without_locals(failure_log: tuple[str, str]) -> None:
    mode, log = failure_log
    assert log.count(f"RuntimeError: {FAILURE}") == 1, log  # logged once, by uvicorn
    record = _failure_record(mode, log)
    assert record.count(TRACEBACK) == 1, record
    assert "raise RuntimeError(FAILURE)" in record, record  # the frames are there
    assert "locals" not in log and "authorization =" not in log, log


def test_no_secret_in_the_log(failure_log: tuple[str, str]) -> None:
    _, log = failure_log
    for secret in (ADMIN_TOKEN, PUBLISHER_TOKEN, MILVUS_PASSWORD):
        assert secret not in log, secret
    # the redaction ran on lines that did carry them
    assert "handling Bearer ***" in log, log
    assert "root:***@" in log, log


def test_config_masks_url_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATDA_DATABASE_URL", "postgresql+psycopg://chatda:pg-s3cret@db/chatda")
    monkeypatch.setenv("CHATDA_MILVUS_URI", f"http://root:{MILVUS_PASSWORD}@milvus:19530")
    monkeypatch.setenv("CHATDA_PUBLISHER_TOKEN", PUBLISHER_TOKEN)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["config"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    for secret in ("pg-s3cret", MILVUS_PASSWORD, PUBLISHER_TOKEN):
        assert secret not in result.output
    shown = json.loads(result.output)
    assert shown["database_url"] == "postgresql+psycopg://chatda:***@db/chatda"
    assert shown["sql_url"] == shown["database_url"]
    assert shown["milvus_uri"] == "http://root:***@milvus:19530"
    assert shown["publisher_token"] == "***"


def test_logging_follows_stderr_after_an_in_process_command_closed_its_own(monkeypatch) -> None:
    """A CLI command run in-process (CliRunner) configured logging on the runner's stderr buffer
    and closed it: every later record in the test session failed with "--- Logging error ---
    ValueError: I/O operation on closed file"."""
    runner_stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", runner_stderr)
    configure_logging(get_settings())
    logging.getLogger("chatda.test").warning("during the command")
    assert "during the command" in runner_stderr.getvalue()
    runner_stderr.close()
    later = io.StringIO()
    monkeypatch.setattr(sys, "stderr", later)
    logging.getLogger("chatda.test").warning("after the command")
    assert "after the command" in later.getvalue()
    assert "Logging error" not in later.getvalue()
